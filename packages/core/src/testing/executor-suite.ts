// biome-ignore-all lint/suspicious/noTemplateCurlyInString: the strings are GitHub ${{ }} expressions, not JS templates
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttemptSpec, Executor } from '../ports/executor.js';
import type { JobSpec, StepSpec } from '../spec/types.js';
import { cancelReason, timeoutReason } from '../steps/abort.js';
import { attemptSpec, collectingContext } from './attempt.js';

/** What a {@link describeExecutor} factory returns for one test. */
export interface ExecutorUnderTest {
  executor: Executor;
  /**
   * Job fields every attempt of the suite gets, e.g. `{ container: {...} }` for
   * an executor that runs steps in containers.
   */
  job?: Partial<JobSpec>;
  /** Releases what the factory started; runs after `executor.close()`. */
  cleanup?(): Promise<void>;
}

/** Options of {@link describeExecutor}. */
export interface ExecutorSuiteOptions {
  /** Skip the whole suite (e.g. the backing engine is absent); say why in `reason`. */
  skip?: boolean;
  /**
   * The slowest an abort may take, beyond the job's kill grace, before the
   * attempt must have ended. @default 10_000
   */
  abortSlackMs?: number;
}

/**
 * The conformance suite every {@link Executor} runs: steps share one workspace,
 * exit codes and failure reasons, `if: always()` after a failure,
 * `continue-on-error`, step outputs into job outputs, secrets in the step
 * environment, aborts by cancel and by timeout, and ordered output. Scripts are
 * POSIX `sh`, so an executor backed by a busybox container passes too.
 */
export function describeExecutor(
  name: string,
  factory: () => Promise<ExecutorUnderTest> | ExecutorUnderTest,
  options: ExecutorSuiteOptions = {},
): void {
  describe.skipIf(options.skip === true)(`Executor conformance: ${name}`, () => {
    let sut: ExecutorUnderTest;
    beforeEach(async () => {
      sut = await factory();
    });
    afterEach(async () => {
      await sut.executor.close?.();
      await sut.cleanup?.();
    });

    let seq = 0;
    const attempt = (steps: Partial<StepSpec>[], job: Partial<JobSpec> = {}): AttemptSpec => {
      seq++;
      return attemptSpec(
        steps,
        { id: 'conformance', ...sut.job, ...job },
        { runId: `conformance-${process.pid}-${seq}` },
      );
    };
    const context = collectingContext;

    it('has a name and a positive capacity when it declares one', () => {
      expect(typeof sut.executor.name).toBe('string');
      expect(sut.executor.name.length).toBeGreaterThan(0);
      if (sut.executor.capacity !== undefined) expect(sut.executor.capacity).toBeGreaterThan(0);
    });

    it('runs the steps in order in one workspace and routes stdout and stderr per step', async () => {
      const { ctx, text } = context();
      const out = await sut.executor.runJob(
        attempt([
          { name: 'write', run: 'echo shared > file.txt\necho first' },
          { name: 'read', run: 'cat file.txt\necho oops >&2' },
        ]),
        ctx,
      );
      expect(out.status).toBe('succeeded');
      expect(out.workerId.length).toBeGreaterThan(0);
      expect(text(0)).toBe('first\n');
      expect(text(1)).toBe('shared\n');
      expect(text(1, 'stderr')).toBe('oops\n');
      expect(out.steps.map((s) => [s.index, s.status, s.exitCode])).toEqual([
        [0, 'succeeded', 0],
        [1, 'succeeded', 0],
      ]);
      for (const s of out.steps) {
        expect(s.startedAt).toBeTypeOf('number');
        expect(s.finishedAt).toBeGreaterThanOrEqual(s.startedAt as number);
      }
    });

    it('fails the attempt on a non-zero exit, skips later steps and still runs if: always()', async () => {
      const { ctx, text } = context();
      const out = await sut.executor.runJob(
        attempt([{ run: 'echo before\nexit 3' }, { run: 'echo never' }, { if: 'always()', run: 'echo cleanup' }]),
        ctx,
      );
      expect(out).toMatchObject({ status: 'failed', reason: 'exit_code', exitCode: 3 });
      expect(out.steps.map((s) => s.status)).toEqual(['failed', 'skipped', 'succeeded']);
      expect(text(0)).toBe('before\n');
      expect(text(1)).toBe('');
      expect(text(2)).toBe('cleanup\n');
    });

    it('treats a failing continue-on-error step as a success of the attempt', async () => {
      const { ctx } = context();
      const out = await sut.executor.runJob(attempt([{ run: 'exit 5', continueOnError: true }, { run: 'true' }]), ctx);
      expect(out.status).toBe('succeeded');
      expect(out.steps[0]).toMatchObject({ outcome: 'failure', conclusion: 'success', exitCode: 5 });
      expect(out.steps[1]?.status).toBe('succeeded');
    });

    it('passes step outputs to later steps and into the job outputs', async () => {
      const { ctx, text } = context();
      const out = await sut.executor.runJob(
        attempt(
          [
            { id: 'gen', run: 'echo "version=1.2.3" >> "$GITHUB_OUTPUT"' },
            { run: 'echo "got ${{ steps.gen.outputs.version }}"' },
          ],
          { outputs: { version: '${{ steps.gen.outputs.version }}' } },
        ),
        ctx,
      );
      expect(out.status).toBe('succeeded');
      expect(text(1)).toBe('got 1.2.3\n');
      expect(out.outputs).toEqual({ version: '1.2.3' });
      expect(out.steps[0]?.outputs).toEqual({ version: '1.2.3' });
    });

    it('puts directories written to $GITHUB_PATH in front of PATH for later steps, and takes a step summary', async () => {
      const { ctx, text } = context();
      // The directories need not exist: only the order of PATH is checked. A tool in one of them
      // would be found; `sh` (from the PATH the step had before) still is.
      const out = await sut.executor.runJob(
        attempt([
          {
            // The summary file exists before the step writes (@actions/core checks) and reads back.
            run: 'test -f "$GITHUB_STEP_SUMMARY"; echo /opt/first >> "$GITHUB_PATH"; echo "## summary" >> "$GITHUB_STEP_SUMMARY"; cat "$GITHUB_STEP_SUMMARY"',
          },
          { run: 'printf "/opt/second\\n\\n/opt/third\\n" >> "$GITHUB_PATH"; echo "$PATH"' },
          { run: 'echo "$PATH"; command -v sh >/dev/null && echo has-sh' },
        ]),
        ctx,
      );
      expect(out.status).toBe('succeeded');
      expect(text(0)).toBe('## summary\n');
      // A step's own additions apply from the next step on; the latest comes first.
      expect(text(1)).toMatch(/^\/opt\/first:/);
      expect(text(1)).not.toContain('/opt/second');
      expect(text(2)).toMatch(/^\/opt\/third:\/opt\/second:\/opt\/first:[^\n]*\nhas-sh\n$/);
    });

    it('gives a step its layered env and the secrets it references', async () => {
      const { ctx, text } = context({ secrets: { TOKEN: 's3cr3t-value' } });
      const out = await sut.executor.runJob(
        attempt([{ run: 'echo "$JOBVAR|$STEPVAR|$TOK"', env: { STEPVAR: 'step', TOK: '${{ secrets.TOKEN }}' } }], {
          env: { JOBVAR: 'job', STEPVAR: 'job-loses' },
        }),
        ctx,
      );
      expect(out.status).toBe('succeeded');
      expect(text(0)).toBe('job|step|s3cr3t-value\n');
    });

    it('delivers 20,000 lines of output complete and in order', async () => {
      const { ctx, text } = context();
      const out = await sut.executor.runJob(
        attempt([{ run: 'i=0\nwhile [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done' }]),
        ctx,
      );
      expect(out.status).toBe('succeeded');
      const lines = text(0).split('\n');
      expect(lines.pop()).toBe('');
      expect(lines.length).toBe(20_000);
      expect(lines.every((l, i) => l === `line ${i}`)).toBe(true);
    });

    it('ends a running attempt as cancelled when its signal is aborted with a cancel', async () => {
      const ac = new AbortController();
      const { ctx } = context({
        signal: ac.signal,
        output: (_stream, _step, chunk) => {
          if (Buffer.from(chunk).toString().includes('started')) ac.abort(cancelReason('test cancel'));
        },
      });
      const began = Date.now();
      const out = await sut.executor.runJob(attempt([{ run: 'echo started\nsleep 30\necho late' }]), ctx);
      expect(out.status).toBe('cancelled');
      expect(Date.now() - began).toBeLessThan(1000 + (options.abortSlackMs ?? 10_000));
    });

    it('fails a running attempt with reason timeout when its signal is aborted with a timeout', async () => {
      const ac = new AbortController();
      const { ctx } = context({
        signal: ac.signal,
        output: (_stream, _step, chunk) => {
          if (Buffer.from(chunk).toString().includes('started')) ac.abort(timeoutReason('job timed out'));
        },
      });
      const out = await sut.executor.runJob(attempt([{ run: 'echo started\nsleep 30' }]), ctx);
      expect(out).toMatchObject({ status: 'failed', reason: 'timeout' });
    });

    it('fails a step that exceeds its own timeout with reason timeout', async () => {
      const { ctx } = context();
      const out = await sut.executor.runJob(attempt([{ run: 'sleep 30', timeoutMs: 500 }]), ctx);
      expect(out).toMatchObject({ status: 'failed', reason: 'timeout' });
      expect(out.steps[0]?.reason).toBe('timeout');
    });
  });
}
