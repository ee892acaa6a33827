import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type RedisServer,
  redisServerAvailable,
  startRedisServer,
} from '../../storage-adapters/test/helpers/redis-server.js';
import { type S3Server, startS3Server } from '../../storage-adapters/test/helpers/s3-server.js';
import { buildCli, killStragglers, runCli, startCli, tempDir } from './run-helpers.js';

// `pipewright run` writing to Redis / S3, then `pipewright runs` and `pipewright logs`
// reading it back, each as its own process — the way an operator uses them.

const available = redisServerAvailable();

const PIPELINE = `
name: stored
jobs:
  a:
    runs-on: local
    steps:
      - name: say
        run: |
          echo "one from a"
          echo "two from a"
  b:
    needs: a
    runs-on: local
    steps:
      - run: echo "from b" >&2
      - name: secret
        run: echo "token is $TOKEN"
        env:
          TOKEN: \${{ secrets.TOKEN }}
`;

const SECRET = 'hunter2-very-secret';
const tmp = tempDir('pw-stores-');
const S3_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' };

/** `run --logs` lines, i.e. the `job/step | text` lines of its stdout. */
const logLines = (stdout: string) => stdout.split('\n').filter((l) => / \| /.test(l) && !/^\[/.test(l));

describe.skipIf(!available)('stored runs through the CLI', () => {
  let redis: RedisServer;
  let s3: S3Server;
  beforeAll(async () => {
    buildCli();
    [redis, s3] = await Promise.all([startRedisServer(), startS3Server('pw-logs')]);
  }, 180_000);
  afterEach(() => killStragglers());
  afterAll(async () => {
    await Promise.all([redis?.stop(), s3?.stop()]);
    tmp.dispose();
  });

  it('run --store redis --log-store redis, then runs and logs read it back like run --logs', async () => {
    const file = tmp.file('stored.yml', PIPELINE);
    const store = `${redis.url}/0`;
    const logStore = `${redis.url}/1`;
    const started = Date.now();
    const r = await runCli(['run', file, '--store', store, '--log-store', logStore, '--logs', '--secret', 'TOKEN'], {
      env: { TOKEN: SECRET },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // The process exits promptly: store connections are closed, nothing holds the loop.
    expect(Date.now() - started).toBeLessThan(15_000);
    const runId = /\b([0-9a-z]{26})\s*$/m.exec(r.stdout)?.[1];
    expect(runId).toBeDefined();

    const list = await runCli(['runs', '--store', store, '--json']);
    expect(list.code).toBe(0);
    const doc = JSON.parse(list.stdout) as { runs: Array<Record<string, unknown>> };
    expect(doc.runs).toHaveLength(1);
    expect(doc.runs[0]).toMatchObject({ id: runId, pipeline: 'stored', status: 'succeeded' });
    for (const k of ['createdAt', 'startedAt', 'finishedAt']) {
      expect(doc.runs[0]?.[k]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }

    const table = await runCli(['runs', '--store', store]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+PIPELINE\s+STATUS\s+CREATED\s+STARTED\s+FINISHED/);
    expect(table.stdout).toContain(`${runId}  stored    succeeded`);
    const none = await runCli(['runs', '--store', store, '--status', 'failed', '--json']);
    expect(JSON.parse(none.stdout)).toEqual({ runs: [] });

    const logs = await runCli(['logs', runId as string, '--store', store, '--log-store', logStore]);
    expect(logs.code).toBe(0);
    expect(logs.stderr).toBe('');
    // Same lines, same order, same prefixes as the live `run --logs` output.
    expect(logs.stdout.trimEnd().split('\n')).toEqual(logLines(r.stdout));
    expect(logs.stdout).toContain('a/say | one from a\na/say | two from a\n');
    expect(logs.stdout).toContain('b/secret | token is ***');
    expect(logs.stdout).not.toContain(SECRET);

    const onlyB = await runCli(['logs', runId as string, '--store', store, '--log-store', logStore, '--job', 'b']);
    expect(onlyB.stdout.trimEnd().split('\n')).toEqual(logLines(r.stdout).filter((l) => l.startsWith('b/')));

    // The wrong log store: nothing to print, exit 0, and a word on stderr about why.
    const elsewhere = await runCli(['logs', runId as string, '--store', store, '--log-store', `${redis.url}/2`]);
    expect(elsewhere.code).toBe(0);
    expect(elsewhere.stdout).toBe('');
    expect(elsewhere.stderr).toMatch(/has no log lines in --log-store .*another store/);

    // A finished run's log ends, so --follow returns; --json is one object per line.
    const json = await runCli([
      'logs',
      runId as string,
      '--store',
      store,
      '--log-store',
      logStore,
      '--follow',
      '--json',
    ]);
    expect(json.code).toBe(0);
    const rows = json.stdout
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; job: string; stepName: string; text: string });
    expect(rows.map((x) => x.seq)).toEqual(rows.map((_, i) => i + 1));
    expect(rows[0]).toMatchObject({ job: 'a', stepName: 'say', text: 'one from a' });
  });

  it('logs --follow prints a running run live and ends with it', async () => {
    const file = tmp.file(
      'slow.yml',
      `
name: slow
jobs:
  a:
    runs-on: local
    steps:
      - name: tick
        run: for i in 1 2 3; do echo "tick $i"; sleep 0.4; done
`,
    );
    const store = `${redis.url}/2`;
    const logStore = `${redis.url}/3`;
    const run = startCli(['run', file, '--store', store, '--log-store', logStore]);
    await run.waitFor((o) => / a: started/.test(o));
    const list = await runCli(['runs', '--store', store, '--status', 'running', '--json']);
    const id = (JSON.parse(list.stdout) as { runs: Array<{ id: string }> }).runs[0]?.id;
    expect(id).toBeDefined();
    const follow = await runCli(['logs', id as string, '--store', store, '--log-store', logStore, '--follow']);
    expect((await run.done).code).toBe(0);
    expect(follow.code).toBe(0);
    expect(follow.stdout).toBe('a/tick | tick 1\na/tick | tick 2\na/tick | tick 3\n');
  });

  it('run --log-store s3:// against s3rver (endpoint from --s3-endpoint or $AWS_ENDPOINT_URL), logs reads it back', async () => {
    const file = tmp.file('stored.yml', PIPELINE);
    const store = `${redis.url}/4`;
    const logStore = 's3://pw-logs/ci/runs';
    const r = await runCli(
      [
        'run',
        file,
        '--store',
        store,
        '--log-store',
        logStore,
        '--s3-endpoint',
        s3.endpoint,
        '--logs',
        '--secret',
        'TOKEN',
      ],
      { env: { ...S3_ENV, TOKEN: SECRET } },
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const runId = /\b([0-9a-z]{26})\s*$/m.exec(r.stdout)?.[1] as string;
    const logs = await runCli(['logs', runId, '--store', store, '--log-store', logStore], {
      env: { ...S3_ENV, AWS_ENDPOINT_URL: s3.endpoint },
    });
    expect(logs.stderr).toBe('');
    expect(logs.code).toBe(0);
    expect(logs.stdout.trimEnd().split('\n')).toEqual(logLines(r.stdout));
    expect(logs.stdout).not.toContain(SECRET);
  });

  it('bad store URLs are usage errors (exit 2) saying what to write; an unreachable store is exit 3', async () => {
    const file = tmp.file('stored.yml', PIPELINE);
    const cases: Array<[string[], RegExp]> = [
      [['run', file, '--store', 'redis://:pw@127.0.0.1:6379/zero'], /database after the port must be a number/],
      [['run', file, '--log-store', 's3://Bad_Bucket/x'], /not a valid bucket name/],
      [['run', file, '--store', 's3://bucket/x'], /cannot hold run state; supported: memory, redis:\/\/HOST:PORT\/DB/],
      [['run', file, '--store', 'postgres://h/db'], /unknown scheme `postgres:`/],
      [['runs', '--store', 'redis://127.0.0.1:6379', '--limit', '0'], /--limit expects a positive integer/],
      [['runs', '--store', 'memory', '--status', 'done'], /--status `done` is not a run status/],
      [['logs', 'x', '--store', 'memory'], /required option '--log-store <url>'/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain(':pw@');
    }
    const unknownRun = await runCli(['logs', 'nope', '--store', `${redis.url}/0`, '--log-store', `${redis.url}/1`]);
    expect(unknownRun.code).toBe(2);
    expect(unknownRun.stderr).toMatch(/run `nope` is not in .*; list the stored runs with `pipewright runs --store/);
    // Credentials in a store URL never reach a message, also when the store rejects them.
    const withUser = `${redis.url.replace('redis://', 'redis://pwsecretuser:pwsecretpass@')}/0`;
    for (const args of [
      ['logs', 'nope', '--store', withUser, '--log-store', `${redis.url}/1`, '--json'],
      ['runs', '--store', withUser],
    ]) {
      const r = await runCli(args);
      expect(r.code).not.toBe(0);
      expect(r.stderr + r.stdout).not.toMatch(/pwsecretuser|pwsecretpass/);
    }
    // An $AWS_ENDPOINT_URL meant for other tools does not concern a Redis or memory store.
    const otherEndpoint = await runCli(['runs', '--store', `${redis.url}/0`, '--json'], {
      env: { AWS_ENDPOINT_URL: 'localhost:9000' },
    });
    expect(otherEndpoint.code).toBe(0);

    const down = await runCli(['runs', '--store', 'redis://127.0.0.1:1/0']);
    expect(down.code).toBe(3);
    expect(down.stderr).toMatch(/127\.0\.0\.1:1 is unreachable/);
    // An unreachable log store stops the run before it starts, not after its lines were dropped.
    const logsDown = await runCli(['run', file, '--log-store', 'redis://127.0.0.1:1/0', '--json']);
    expect(logsDown.code).toBe(3);
    expect(logsDown.stderr).toMatch(/--log-store `redis:\/\/127\.0\.0\.1:1\/0`: cannot open the store/);
    expect(JSON.parse(logsDown.stdout)).toMatchObject({ error: { code: 'STORE_UNAVAILABLE' } });
    expect(logsDown.stderr).not.toMatch(/succeeded/);
  });
});
