import { readFileSync } from 'node:fs';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AttemptOutcome,
  type AttemptSpec,
  Engine,
  type ExecContext,
  type ExecIO,
  type ExecRequest,
  type ExecResult,
  type Executor,
  interpolate,
  parseDuration,
  type RunHandle,
  type RunReport,
  runSteps,
  type StateStore,
  seededRandom,
} from '@pipewright/core';
import { FakeClock, FakeExecutor, type FakeStep } from '@pipewright/core/testing';
import { MemoryLogStore, MemoryStore } from '@pipewright/storage-adapters';
import { afterEach, describe, expect, it } from 'vitest';

/*
 * Runs every example of docs/semantics.md through the Engine on a fake clock and
 * checks the outcome table written under it, so the document cannot drift from
 * the code. The conventions (directives, the fake `run:` vocabulary, the table
 * columns) are described in the document's "How to read the examples" section.
 */

const DOC = join(dirname(fileURLToPath(import.meta.url)), '../../../../docs/semantics.md');
const SECRET_MARK = 's3cr3t';

interface Action {
  at: number;
  kind: 'submit' | 'cancel' | 'restart';
  label: string;
  yaml?: string;
  args: Record<string, string>;
}

interface Example {
  name: string;
  line: number;
  engine: Record<string, string>;
  actions: Action[];
  todo?: string;
  header: string[];
  rows: string[][];
}

/** Splits `k=v k2="a b" flag` into a record (`flag` -> `true`); bare words land in `_` in order. */
function tokens(text: string): Record<string, string> & { _: string } {
  const out: Record<string, string> = { _: '' };
  const bare: string[] = [];
  for (const m of text.matchAll(/([\w.-]+)=(?:"([^"]*)"|(\S+))|"([^"]*)"|(\S+)/g)) {
    if (m[1] !== undefined) out[m[1]] = m[2] ?? m[3] ?? '';
    else bare.push(m[4] ?? m[5] ?? '');
  }
  out._ = bare.join(' ');
  return out as Record<string, string> & { _: string };
}

function duration(text: string, where: string): number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t) * 1000;
  const ms = parseDuration(t);
  if (ms === undefined) throw new Error(`${where}: \`${t}\` is not a duration`);
  return ms;
}

function parseExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  const fence = /^```yaml\n(# example: [^\n]*\n[\s\S]*?)^```$/gm;
  for (const m of markdown.matchAll(fence)) {
    const body = m[1] as string;
    const line = markdown.slice(0, m.index).split('\n').length;
    const after = markdown.slice((m.index ?? 0) + m[0].length);
    const stop = after.search(/^```yaml\n# example:|^#{1,6} /m);
    const region = stop < 0 ? after : after.slice(0, stop);
    const tableLines = (region.match(/^\|.*\|\s*$/gm) ?? []).filter((l) => !/^\|[\s:|-]+\|\s*$/.test(l));
    const cells = (l: string) =>
      l
        .trim()
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim().replace(/^`(.*)`$/, '$1'));
    const [head, ...rows] = tableLines.map(cells);
    const ex: Example = {
      name: '',
      line,
      engine: {},
      actions: [],
      header: (head ?? []).map((h) => h.toLowerCase()),
      rows,
    };
    const docs = body.split(/^---\s*$/m);
    docs.forEach((doc, i) => {
      const submits: Action[] = [];
      for (const raw of doc.split('\n')) {
        const d = /^#\s*(example|engine|run|todo|at ([^:]+)):\s*(.*)$/.exec(raw.trim());
        if (!d) continue;
        const [, key, at, rest] = d as unknown as [string, string, string | undefined, string];
        const where = `docs/semantics.md:${line} (${raw.trim()})`;
        if (key === 'example') ex.name = rest.trim();
        else if (key === 'todo') ex.todo = rest.trim();
        else if (key === 'engine') Object.assign(ex.engine, tokens(rest));
        else if (key === 'run') {
          const t = tokens(rest);
          submits.push({ at: t.at ? duration(t.at, where) : 0, kind: 'submit', label: t._ || 'run', args: t });
        } else if (at !== undefined) {
          const t = tokens(rest);
          const [verb, label, ...flags] = t._.split(' ');
          for (const f of flags) t[f] = 'true';
          if (verb !== 'cancel' && verb !== 'restart') throw new Error(`${where}: unknown action \`${verb}\``);
          ex.actions.push({ at: duration(at, where), kind: verb, label: label ?? 'run', args: t });
        }
      }
      if (submits.length === 0)
        submits.push({ at: 0, kind: 'submit', label: i === 0 ? 'run' : `run${i + 1}`, args: { _: '' } });
      for (const s of submits) ex.actions.push({ ...s, yaml: doc });
    });
    if (!ex.name) throw new Error(`docs/semantics.md:${line}: example without a name`);
    if (!ex.todo && ex.rows.length === 0)
      throw new Error(`docs/semantics.md:${line}: example \`${ex.name}\` has no outcome table`);
    examples.push(ex);
  }
  return examples;
}

// ---- the fake `run:` vocabulary ---------------------------------------------

interface Script {
  exitCode: number;
  durationMs: number;
  hang: boolean;
  infra?: string;
  stdout: string;
  outputs: Record<string, string>;
}

/** Interprets one `run:` text: `a | b | c` picks by how many times the step ran before. */
function script(run: string, nth: number): Script {
  const variants = run.split(/\s+\|\s+/);
  const text = (variants[Math.min(nth, variants.length - 1)] as string).trim();
  const s: Script = { exitCode: 0, durationMs: 0, hang: false, stdout: '', outputs: {} };
  const rules: Array<[RegExp, (m: RegExpExecArray) => void]> = [
    [/^exit (\d+)$/, (m) => (s.exitCode = Number(m[1]))],
    [/^sleep infinity$|^hang$/, () => (s.hang = true)],
    [/^sleep (\S+)$/, (m) => (s.durationMs += duration(m[1] as string, `run: ${run}`))],
    [/^infra (.*)$/, (m) => (s.infra = m[1] as string)],
    [
      /^echo ["']?([\w-]+)=(.*?)["']? >> "?\$(GITHUB|PIPEWRIGHT)_OUTPUT"?$/,
      (m) => (s.outputs[m[1] as string] = m[2] as string),
    ],
    [/^echo "?(.*?)"?$/, (m) => (s.stdout += `${m[1]}\n`)],
    [/^(true|ok|:)$/, () => undefined],
  ];
  for (const cmd of text.split(/\s*(?:;|&&|\n)\s*/).filter(Boolean)) {
    const hit = rules.find(([re]) => re.test(cmd));
    if (!hit) throw new Error(`the fake executor does not understand \`${cmd}\` (in \`run: ${run}\`)`);
    hit[1](hit[0].exec(cmd) as RegExpExecArray);
  }
  return s;
}

function expand(run: string, attempt: AttemptSpec): string {
  return run.includes('${{') ? interpolate(run, attempt.contexts as never) : run;
}

/** Counts how many times each step of each job ran, so `a | b` can pick by run number. */
class Counter {
  private readonly seen = new Map<string, number>();
  next(a: AttemptSpec, index: number): number {
    const k = `${a.runId}/${a.jobId}/${index}`;
    const n = this.seen.get(k) ?? 0;
    this.seen.set(k, n + 1);
    return n;
  }
}

function fakeSteps(a: AttemptSpec, counter: Counter): FakeStep[] {
  return a.job.steps.map((step, i) => {
    const s = script(expand(step.run ?? 'true', a), counter.next(a, i));
    const f: FakeStep = {};
    if (s.exitCode) f.exitCode = s.exitCode;
    if (s.durationMs) f.durationMs = s.durationMs;
    if (s.hang) f.hang = true;
    if (s.infra !== undefined) f.infra = s.infra;
    if (s.stdout) f.output = s.stdout;
    if (Object.keys(s.outputs).length) f.outputs = s.outputs;
    return f;
  });
}

/**
 * `executor=steps`: the real shared step loop (`runSteps`) over a scripted
 * workspace, for the rules that live in steps (step timeouts, step
 * `continue-on-error`, step `if:`, `$GITHUB_OUTPUT` and job `outputs:`).
 */
class StepLoopExecutor implements Executor {
  readonly name = 'process';
  private readonly dirs = new Set<string>();
  constructor(
    private readonly clock: FakeClock,
    private readonly counter: Counter,
  ) {}

  async runJob(attempt: AttemptSpec, ctx: ExecContext): Promise<AttemptOutcome> {
    const dir = await mkdtemp(join(tmpdir(), 'pw-semantics-'));
    this.dirs.add(dir);
    let stepIndex = 0;
    const workspace = {
      hostDir: dir,
      workerId: 'worker-1',
      toWorkspacePath: (p: string) => p,
      exec: (req: ExecRequest, io: ExecIO) => {
        // The step loop runs steps in order; its step files are named by index.
        const idx = Number(/step-(\d+)/.exec(req.env.GITHUB_OUTPUT ?? '')?.[1] ?? stepIndex);
        stepIndex = idx + 1;
        return this.exec(script(req.script, this.counter.next(attempt, idx)), req, io);
      },
      dispose: async () => {
        await rm(dir, { recursive: true, force: true });
        this.dirs.delete(dir);
      },
    };
    try {
      return await runSteps(attempt, workspace, ctx, {
        random: seededRandom(7),
        sleep: (ms, signal) => this.sleep(ms, signal),
      });
    } finally {
      await workspace.dispose();
    }
  }

  private async exec(s: Script, req: ExecRequest, io: ExecIO): Promise<ExecResult> {
    if (s.infra !== undefined) throw new Error(s.infra);
    if (s.stdout) await io.stdout(new TextEncoder().encode(s.stdout));
    for (const [k, v] of Object.entries(s.outputs)) await appendFile(req.env.GITHUB_OUTPUT as string, `${k}=${v}\n`);
    if (s.hang) {
      await new Promise<void>((resolve) => {
        if (req.signal.aborted) resolve();
        else req.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      return { exitCode: null, signal: 'SIGTERM' };
    }
    if (s.durationMs) {
      await this.sleep(s.durationMs, req.signal);
      if (req.signal.aborted) return { exitCode: null, signal: 'SIGTERM' };
    }
    return { exitCode: s.exitCode, signal: null };
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const t = this.clock.setTimeout(() => resolve(), ms);
      signal.addEventListener(
        'abort',
        () => {
          this.clock.clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });
  }

  async cleanup(): Promise<void> {
    await Promise.all([...this.dirs].map((d) => rm(d, { recursive: true, force: true })));
  }
}

// ---- playing an example -----------------------------------------------------

interface Played {
  t0: number;
  reports: Map<string, RunReport>;
  created: Map<string, boolean>;
  ids: Map<string, string>;
  secretsOf: (runId: string, jobId: string) => string[] | undefined;
  logText: (runId: string, jobId: string) => Promise<string>;
  storeJson: () => Promise<string>;
  /** The report of a finished run rebuilt from the store (`getRun` once the run has left memory). */
  storedReport: (runId: string) => Promise<RunReport | undefined>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** Lets a "crashed" engine hang on every store call, as a dead process would. */
function crashable(store: StateStore): { store: StateStore; crash(): void } {
  let crashed = false;
  const proxy = new Proxy(store, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) =>
        crashed ? new Promise(() => {}) : (v as (...a: unknown[]) => unknown).apply(target, args);
    },
  });
  return { store: proxy, crash: () => (crashed = true) };
}

async function play(ex: Example): Promise<Played> {
  let clock = new FakeClock();
  const t0 = clock.now();
  const store = new MemoryStore({ now: () => clock.now() });
  const logs = new MemoryLogStore();
  const counter = new Counter();
  const e = ex.engine;
  const secretNames = e.secrets ? e.secrets.split(',') : undefined;
  const calls: Array<{ runId: string; jobId: string; secrets: Record<string, string> }> = [];

  /** Records each attempt's run, job and the secrets it was given. */
  const recorded = <X extends Executor>(x: X): X => {
    const orig = x.runJob.bind(x);
    x.runJob = (a, ctx) => {
      calls.push({ runId: a.runId, jobId: a.jobId, secrets: { ...ctx.secrets } });
      return orig(a, ctx);
    };
    return x;
  };
  const makeEngine = (c: FakeClock) => {
    let executor: Executor & { cleanup?: () => Promise<void> };
    if (e.executor === 'steps') {
      const x = recorded(new StepLoopExecutor(c, counter));
      executor = x;
      cleanups.push(() => x.cleanup());
    } else {
      executor = recorded(
        new FakeExecutor({
          clock: c,
          name: 'process',
          ...(e.capacity ? { capacity: Number(e.capacity) } : {}),
          ...(e.workers ? { workers: e.workers.split(',') } : {}),
          script: (a) => fakeSteps(a, counter),
        }),
      );
    }
    const crash = crashable(store);
    const engine = new Engine({
      store: crash.store,
      logs,
      executors: [executor],
      clock: c,
      random: seededRandom(42),
      concurrency: e.concurrency ? Number(e.concurrency) : 4,
      ...(e.lease ? { leaseTtlMs: duration(e.lease, ex.name) } : {}),
      ...(e['queue-timeout'] ? { queueTimeoutMs: duration(e['queue-timeout'], ex.name) } : {}),
      ...(secretNames
        ? {
            secrets: {
              resolve: async (names: string[]) =>
                Object.fromEntries(names.filter((n) => secretNames.includes(n)).map((n) => [n, `${SECRET_MARK}-${n}`])),
            },
          }
        : {}),
    });
    return { engine, crash: crash.crash };
  };

  let current = makeEngine(clock);
  const handles = new Map<string, RunHandle>();
  const ids = new Map<string, string>();
  const created = new Map<string, boolean>();
  const reports = new Map<string, RunReport>();
  const watch = (label: string, id: string) => {
    void current.engine.wait(id).then((r) => reports.set(label, r));
  };

  const actions = [...ex.actions].sort((a, b) => a.at - b.at);
  for (const act of actions) {
    const due = t0 + act.at;
    if (due > clock.now()) await clock.advance(due - clock.now());
    if (act.kind === 'submit') {
      const inputs = Object.fromEntries(
        Object.entries(act.args)
          .filter(([k]) => k.startsWith('input.'))
          .map(([k, v]) => [k.slice(6), v]),
      );
      const h = await current.engine.submit(act.yaml as string, {
        inputs,
        ...(act.args.priority ? { priority: Number(act.args.priority) } : {}),
        ...(act.args.key ? { idempotencyKey: act.args.key } : {}),
      });
      handles.set(act.label, h);
      ids.set(act.label, h.id);
      created.set(act.label, h.created);
      watch(act.label, h.id);
    } else if (act.kind === 'cancel') {
      const id = ids.get(act.label);
      if (!id) throw new Error(`${ex.name}: cancel of unknown run \`${act.label}\``);
      const opts = {
        ...(act.args.reason ? { reason: act.args.reason } : {}),
        ...(act.args.by ? { by: act.args.by } : {}),
        ...(act.args.force ? { force: true } : {}),
      };
      await current.engine.cancel(act.args.job ? { runId: id, job: act.args.job } : id, opts);
    } else {
      // The engine process dies: it stops answering and renewing its leases. A new
      // engine on the same store recovers the runs once their leases expire.
      current.crash();
      clock = new FakeClock(clock.now());
      current = makeEngine(clock);
      const open = new Map([...ids].filter(([label]) => !reports.has(label)).map(([l, id]) => [id, l]));
      for (let i = 0; i < 600 && open.size; i++) {
        for (const id of await current.engine.recover()) {
          watch(open.get(id) as string, id);
          open.delete(id);
        }
        if (open.size) await clock.advance(1000);
      }
    }
  }
  const labels = [...new Set(ids.keys())];
  const done = await clock.runUntil(() => labels.every((l) => reports.has(l)), { step: 1000, maxMs: 48 * 3_600_000 });
  if (!done) throw new Error(`${ex.name}: runs ${labels.filter((l) => !reports.has(l)).join(', ')} did not finish`);
  const engine = current.engine;
  cleanups.push(() => engine.close());
  return {
    t0,
    reports,
    created,
    ids,
    secretsOf: (runId, jobId) => {
      const c = calls.find((x) => x.runId === runId && x.jobId === jobId);
      return c ? Object.keys(c.secrets).sort() : undefined;
    },
    logText: async (runId, jobId) =>
      (await logs.read(runId, { limit: 100_000 }))
        .filter((l) => l.jobId === jobId)
        .map((l) => l.text)
        .join('\n'),
    storeJson: async () => {
      // The spec is what the user wrote; an example may print a secret's value literally.
      const runs = (await store.listRuns()).map(({ spec: _spec, ...r }) => r);
      const jobs = await Promise.all(runs.map((r) => store.getJobs(r.id)));
      return JSON.stringify([runs, jobs]);
    },
    storedReport: (runId) => engine.getRun(runId),
  };
}

// ---- checking the outcome table ---------------------------------------------

const list = (cell: string) =>
  cell === ''
    ? []
    : cell
        .split(/\s*,\s*/)
        .map((s) => s.trim())
        .filter(Boolean);

async function check(ex: Example, p: Played): Promise<void> {
  const col = (name: string) => ex.header.indexOf(name);
  const jobCol = col('job');
  if (jobCol < 0) throw new Error(`${ex.name}: the outcome table needs a \`job\` column`);
  const runCol = col('run');
  const rel = (iso: string | null) => (iso === null ? null : Date.parse(iso) - p.t0);
  const listedJobs = new Map<string, Set<string>>();
  for (const row of ex.rows) {
    const get = (name: string) => {
      const i = col(name);
      return i < 0 ? undefined : (row[i] ?? '');
    };
    const label = runCol >= 0 ? (row[runCol] as string) : 'run';
    const report = p.reports.get(label);
    if (!report) throw new Error(`${ex.name}: no run labelled \`${label}\``);
    const jobId = row[jobCol] as string;
    const at = `${ex.name} / ${label} / ${jobId}`;
    if (jobId === '(run)') {
      const r = report.run;
      const status = get('status');
      if (status !== undefined) expect(r.status, `${at}: status`).toBe(status);
      const reason = get('reason');
      if (reason !== undefined) expect(r.reason ?? '', `${at}: reason`).toBe(reason);
      // Job-oriented columns are checked on the run row only when filled in.
      const started = get('started');
      if (started) expect(rel(r.startedAt), `${at}: started`).toBe(duration(started, at));
      const finished = get('finished');
      if (finished) expect(rel(r.finishedAt), `${at}: finished`).toBe(duration(finished, at));
      const message = get('message');
      if (message)
        expect(r.message ?? '', `${at}: message`).toContain(message.replace(/\{(\w+)\}/g, (_, l) => p.ids.get(l) ?? l));
      const same = get('same as');
      if (same) expect(p.ids.get(label), `${at}: same run as ${same}`).toBe(p.ids.get(same));
      const createdCell = get('created');
      if (createdCell) expect(p.created.get(label) ? 'yes' : 'no', `${at}: created`).toBe(createdCell);
      const cancel = get('cancel');
      if (cancel !== undefined) {
        if (cancel === '') expect(r.cancel, `${at}: cancel`).toBeNull();
        else {
          const t = tokens(cancel);
          if (t.by !== undefined) expect(r.cancel?.by, `${at}: cancel.by`).toBe(t.by);
          if (t.force !== undefined) expect(String(r.cancel?.force), `${at}: cancel.force`).toBe(t.force);
          if (t.reason !== undefined)
            expect(r.cancel?.reason, `${at}: cancel.reason`).toBe(
              t.reason.replace(/\{(\w+)\}/g, (_, l) => p.ids.get(l) ?? l),
            );
          if (t['superseded-by'] !== undefined)
            expect(r.cancel?.supersededBy, `${at}: cancel.supersededBy`).toBe(p.ids.get(t['superseded-by']));
        }
      }
      continue;
    }
    const set = listedJobs.get(label) ?? new Set();
    set.add(jobId);
    listedJobs.set(label, set);
    const j = report.jobs.find((x) => x.id === jobId);
    if (!j) throw new Error(`${at}: no such job in the report (jobs: ${report.jobs.map((x) => x.id).join(', ')})`);
    const status = get('status');
    if (status !== undefined) expect(j.status, `${at}: status`).toBe(status);
    const reason = get('reason');
    if (reason !== undefined) expect(j.reason ?? '', `${at}: reason`).toBe(reason);
    const attempts = get('attempts');
    if (attempts !== undefined)
      expect(
        j.attempts.map((a) => a.reason ?? a.status),
        `${at}: attempts`,
      ).toEqual(list(attempts));
    const started = get('started');
    if (started !== undefined)
      expect(
        j.attempts.map((a) => rel(a.startedAt)),
        `${at}: attempt start times`,
      ).toEqual(list(started).map((s) => duration(s, at)));
    const finished = get('finished');
    if (finished !== undefined)
      expect(rel(j.finishedAt), `${at}: finished`).toBe(finished === '' ? null : duration(finished, at));
    const workers = get('workers');
    if (workers !== undefined)
      expect(
        j.attempts.map((a) => a.workerId ?? '-'),
        `${at}: workers`,
      ).toEqual(list(workers));
    const exitCodes = get('exit codes');
    if (exitCodes !== undefined)
      expect(
        j.attempts.map((a) => (a.exitCode === null ? '-' : String(a.exitCode))),
        `${at}: exit codes`,
      ).toEqual(list(exitCodes));
    const outputs = get('outputs');
    if (outputs !== undefined) {
      const want = Object.fromEntries(
        outputs
          .split(/\s*;\s*/)
          .filter(Boolean)
          .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
      );
      expect(j.outputs, `${at}: outputs`).toEqual(want);
    }
    const message = get('message');
    if (message) expect(j.message ?? j.attempts.at(-1)?.message ?? '', `${at}: message`).toContain(message);
    const steps = get('steps');
    if (steps !== undefined)
      expect(
        j.steps.map((s) => `${s.outcome ?? s.status}/${s.conclusion ?? s.status}`),
        `${at}: steps (outcome/conclusion)`,
      ).toEqual(list(steps));
    const secrets = get('secrets');
    if (secrets !== undefined) expect(p.secretsOf(report.run.id, jobId) ?? [], `${at}: secrets`).toEqual(list(secrets));
    const log = get('log');
    if (log) expect(await p.logText(report.run.id, jobId), `${at}: log`).toContain(log);
  }
  // The table is the whole outcome: every job of every listed run has a row.
  for (const [label, jobs] of listedJobs) {
    const all = (p.reports.get(label) as RunReport).jobs.map((j) => j.id).sort();
    expect([...jobs].sort(), `${ex.name} / ${label}: jobs in the table`).toEqual(all);
  }
  // What the store holds tells the same story as wait(): same jobs, same records.
  for (const r of p.reports.values())
    expect(await p.storedReport(r.run.id), `${ex.name}: report rebuilt from the store`).toEqual(r);
  // No secret value ever reaches the store, a report or a log line.
  expect(await p.storeJson(), `${ex.name}: store`).not.toContain(SECRET_MARK);
  expect(JSON.stringify([...p.reports.values()]), `${ex.name}: reports`).not.toContain(SECRET_MARK);
  for (const r of p.reports.values())
    for (const j of r.jobs) expect(await p.logText(r.run.id, j.id), `${ex.name}: logs`).not.toContain(SECRET_MARK);
}

const examples = parseExamples(readFileSync(DOC, 'utf8'));

describe('docs/semantics.md examples', () => {
  it('has examples, each with a unique name', () => {
    expect(examples.length).toBeGreaterThan(20);
    expect(new Set(examples.map((e) => e.name)).size).toBe(examples.length);
  });

  for (const ex of examples) {
    if (ex.todo) {
      it.todo(`${ex.name} (docs/semantics.md:${ex.line}): ${ex.todo}`);
      continue;
    }
    it(`${ex.name} (docs/semantics.md:${ex.line})`, async () => {
      const played = await play(ex);
      await check(ex, played);
    });
  }
});
