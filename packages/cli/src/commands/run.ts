import {
  type Diagnostic,
  Engine,
  type Executor,
  formatDiagnostic,
  initialJobs,
  type LogBatch,
  type PipelineSpec,
  PipewrightError,
  type RunHandle,
  type RunReport,
  referencedSecrets,
  resolveInputs,
  topologicalOrder,
} from '@pipewright/core';
import pc from 'picocolors';
import { EXIT } from '../exit-codes.js';
import { type CommandEnvironment, processEnvironment } from '../run/environment.js';
import { asCliError, CliError, reportFailure } from '../run/errors.js';
import { createExecutor } from '../run/executors.js';
import { formatElapsed } from '../run/format.js';
import { localTrigger } from '../run/git-context.js';
import { stepLabel } from '../run/labels.js';
import { type RawRunOptions, type ResolvedRunOptions, resolveRunOptions } from '../run/options.js';
import {
  colorEnabled,
  type JobRow,
  type JobStatus,
  LiveView,
  type Output,
  PlainView,
  type ProgressView,
  QuietView,
} from '../run/progress.js';
import { EnvSecrets } from '../run/secrets.js';
import { createStores, type Stores } from '../run/stores.js';
import { loadPipeline } from './load.js';

/** Process-level things `pipewright run` uses; tests and embedders may replace them. */
export type RunEnvironment = CommandEnvironment;

function output(stream: NodeJS.WriteStream, redact: (s: string) => string): Output {
  return {
    write: (text) => {
      stream.write(redact(text));
    },
    isTTY: stream.isTTY === true,
    columns: () => stream.columns || 80,
    rows: () => stream.rows || 24,
  };
}

/**
 * `pipewright run FILE`: runs a pipeline to the end and resolves to the exit
 * code (0 succeeded, 1 failed, 2 invalid pipeline or usage, 3 infrastructure
 * error, 130 cancelled).
 */
export async function runCommand(
  file: string,
  raw: RawRunOptions,
  envr: RunEnvironment = processEnvironment(),
): Promise<number> {
  let redact = (s: string) => s;
  const stderr = output(envr.stderr, (s) => redact(s));
  const json = raw.json === true;
  // Masked like everything the run prints: a message may quote a secret's value.
  const fail = (err: CliError, diagnostics?: readonly Diagnostic[]): number =>
    reportFailure('run', { stdout: output(envr.stdout, (t) => redact(t)), stderr }, json, err, diagnostics);

  // Ctrl-C (or SIGTERM) is the command's from its first line: until the run exists it ends the
  // command (130, with its --json document) at the next step it waits on (reading the file,
  // stdin included; the stores connecting; Docker being pinged), and signals held since
  // start-up (holdInterrupts) arrive at once; once the run exists it cancels the run.
  let stores: Stores | undefined;
  let engine: Engine | undefined;
  let view: ProgressView | undefined;
  /** Colours the Ctrl-C notices once the output's colours are known. */
  let yellow = (text: string) => text;
  let handle: RunHandle | undefined;
  let interrupts = 0;
  let interruptedBy: 'SIGINT' | 'SIGTERM' = 'SIGINT';
  let onEarlyInterrupt: (() => void) | undefined;
  const interrupted = new Promise<never>((_, reject) => {
    onEarlyInterrupt = () => reject(new CliError('interrupted before the run started', EXIT.CANCELLED, 'CANCELLED'));
  });
  interrupted.catch(() => undefined);
  const cancelRun = (h: RunHandle, n: number) => {
    const how = interruptedBy === 'SIGTERM' ? 'terminated (SIGTERM)' : 'interrupted (Ctrl-C)';
    if (n === 1) {
      view?.notice(yellow('cancelling... press Ctrl-C again to force'));
      h.cancel({ reason: how, by: 'cli' }).catch(() => undefined);
    } else if (n === 2) {
      view?.notice(yellow('forcing: aborting cleanup jobs'));
      h.cancel({ reason: `${how}, forced`, by: 'cli', force: true }).catch(() => undefined);
    }
  };
  const stopInterrupts = envr.onInterrupt((signal) => {
    interrupts++;
    interruptedBy = signal;
    if (handle) cancelRun(handle, interrupts);
    else onEarlyInterrupt?.();
  });
  /** `step` unless Ctrl-C comes first; what it makes after all is disposed of, so nothing holds the process. */
  const unlessInterrupted = async <T>(
    step: Promise<T>,
    dispose: (made: T) => unknown = () => undefined,
  ): Promise<T> => {
    try {
      return await Promise.race([step, interrupted]);
    } catch (err) {
      step.then(dispose).catch(() => undefined);
      throw err;
    }
  };

  try {
    // A signal held since start-up has come already: nothing more is read or connected.
    if (interrupts > 0) await interrupted;
    let opts: ResolvedRunOptions;
    let secrets: EnvSecrets;
    try {
      opts = resolveRunOptions(raw);
      secrets = new EnvSecrets(opts.secrets, envr.env);
    } catch (err) {
      if (err instanceof CliError) return fail(err);
      throw err;
    }
    const masker = secrets;
    redact = (s) => masker.redact(s);

    // Human-readable output goes to stdout, or to stderr when stdout holds the JSON report.
    const human = json ? stderr : output(envr.stdout, redact);
    const colors = pc.createColors(colorEnabled(human.isTTY, envr.env));
    yellow = colors.yellow;

    const loaded = await unlessInterrupted(loadPipeline(file));
    const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
    for (const d of opts.quiet ? errors : loaded.diagnostics) stderr.write(`${formatDiagnostic(d)}\n`);
    if (errors.length || !loaded.spec) {
      const n = errors.length || 1;
      return fail(
        new CliError(`${file}: invalid pipeline (${n} error${n > 1 ? 's' : ''})`, EXIT.INVALID, 'PIPELINE_INVALID'),
        loaded.diagnostics,
      );
    }
    const spec = loaded.spec;

    try {
      checkRunnable(spec, opts);
    } catch (err) {
      if (err instanceof CliError) return fail(err);
      throw err;
    }
    const short = secrets.unmaskable;
    if (short.length) {
      stderr.write(
        `pipewright run: warning: --secret ${short.join(', ')}: shorter than 3 characters, so it is not masked in logs and output; use a longer secret\n`,
      );
    }
    const referenced = referencedSecrets(JSON.stringify(spec));
    // One name per secret (names are case-insensitive), as first written.
    const seen = new Set<string>();
    const notGiven = referenced.filter(
      (n) => !secrets.has(n) && !seen.has(n.toUpperCase()) && seen.add(n.toUpperCase()),
    );
    if (notGiven.length && !opts.quiet) {
      stderr.write(
        `pipewright run: warning: the pipeline uses ${notGiven.map((n) => `secrets.${n}`).join(', ')} but no --secret ${notGiven.join(' --secret ')} was given; ${notGiven.length > 1 ? 'they' : 'it'} will be empty\n`,
      );
    }

    const givenVars = new Set(Object.keys(opts.vars).map((n) => n.toUpperCase()));
    const missingVars = referencedVars(spec).filter((n) => !givenVars.has(n.toUpperCase()));
    if (missingVars.length && !opts.quiet) {
      stderr.write(
        `pipewright run: warning: the pipeline uses ${missingVars.map((n) => `vars.${n}`).join(', ')} but no --var ${missingVars.map((n) => `${n}=...`).join(' --var ')} was given; ${missingVars.length > 1 ? 'they' : 'it'} will be empty\n`,
      );
    }
    const elsewhere = otherOsJobs(spec);
    if (elsewhere.length && !opts.quiet) {
      stderr.write(
        `pipewright run: warning: runs-on of ${elsewhere.join(', ')} asks for another OS; pipewright runs every job on this host, so runner.os is Linux there\n`,
      );
    }

    const opening = createStores(opts.store, opts.logStore, { s3Endpoint: opts.s3Endpoint, env: envr.env });
    stores = await unlessInterrupted(opening, (s) => s.close());
    // `container:` jobs run in Docker whatever --executor says (DESIGN §2); the others run on
    // the executor it names. The engine's default route sends each job to its executor.
    const hasContainerJobs = Object.values(spec.jobs).some((j) => j.container);
    const kinds = hasContainerJobs && opts.executor !== 'docker' ? [opts.executor, 'docker' as const] : [opts.executor];
    const executors: Executor[] = [];
    try {
      // Docker is pinged (up to 5 s when it does not answer): Ctrl-C still ends the command meanwhile.
      for (const kind of kinds) {
        // Docker for `container:` jobs when --executor did not ask for it: say which jobs need it.
        const why =
          kind === 'docker' && opts.executor !== 'docker'
            ? `job ${Object.values(spec.jobs).find((j) => j.container)?.id ?? ''} runs in a container (\`container:\`)`
            : '--executor docker';
        executors.push(await unlessInterrupted(createExecutor(kind, why), (e) => e.close?.()));
      }
    } catch (err) {
      await Promise.all(executors.map((e) => e.close?.().catch(() => undefined)));
      throw err;
    }
    onEarlyInterrupt = undefined;
    engine = new Engine({
      store: stores.store,
      logs: stores.logs,
      executors,
      secrets,
      concurrency: opts.concurrency,
      // `run` runs its one file; taking over abandoned runs of a shared store is a service's job.
      recoverOnStart: false,
    });

    const rows = orderedRows(spec);
    const byId = new Map(rows.map((r) => [r.id, r]));
    view = opts.quiet
      ? new QuietView(human)
      : human.isTTY && envr.env.TERM !== 'dumb'
        ? new LiveView(human, colors, rows)
        : new PlainView(human, colors);
    const v = view;
    const rowOf = (jobId: string): JobRow => {
      let row = byId.get(jobId);
      if (!row) {
        row = { id: jobId, status: 'pending', attempt: 0 };
        byId.set(jobId, row);
        v.update(row, 'added', Date.now());
      }
      return row;
    };
    const engineErrors: Error[] = [];
    engine.on('job:queued', (e) => {
      const row = rowOf(e.jobId);
      row.status = 'queued';
      v.update(row, 'queued', Date.now());
    });
    engine.on('attempt:started', (e) => {
      const row = rowOf(e.jobId);
      const now = Date.now();
      row.status = 'running';
      row.attempt = e.attempt;
      row.startedAt ??= now;
      delete row.retryInMs;
      v.update(row, 'started', now);
    });
    engine.on('attempt:finished', (e) => {
      const row = rowOf(e.jobId);
      if (e.reason !== undefined) row.reason = e.reason;
    });
    engine.on('job:retrying', (e) => {
      const row = rowOf(e.jobId);
      row.status = 'retrying';
      row.retryInMs = e.delayMs;
      v.update(row, 'retrying', Date.now());
    });
    engine.on('job:finished', (e) => {
      const row = rowOf(e.jobId);
      row.status = e.status as JobStatus;
      row.finishedAt = Date.now();
      if (e.reason !== undefined) row.reason = e.reason;
      else delete row.reason;
      v.update(row, 'finished', row.finishedAt);
    });
    engine.on('run:cancelling', (e) => {
      if (e.cancel.by !== 'cli') v.notice(`run cancelling: ${e.cancel.reason} (by ${e.cancel.by})`);
    });
    engine.on('error', (err) => {
      engineErrors.push(err);
      stderr.write(`pipewright run: engine error: ${err.message}\n`);
    });
    if (opts.logs) {
      const stepNames = new Map<string, string>();
      engine.on('step:started', (e) => stepNames.set(`${e.jobId}\u0000${e.step}`, e.name));
      engine.on('log', (batch: LogBatch) => {
        for (const l of batch.lines) {
          const step =
            l.step < 0 ? '' : `/${stepNames.get(`${l.jobId}\u0000${l.step}`) ?? stepLabel(spec, l.jobId, l.step)}`;
          v.log(`${colors.dim(`${l.jobId}${step} |`)} ${l.text}`);
        }
      });
    }

    let submitted: RunHandle;
    try {
      submitted = await engine.submit(spec, {
        inputs: opts.inputs,
        vars: opts.vars,
        trigger: await localTrigger(currentDir(), envr.env),
        secrets: [...new Set([...referenced, ...secrets.names])],
      });
    } catch (err) {
      if (err instanceof PipewrightError && (err.code === 'INVALID_ARGUMENT' || err.code === 'PIPELINE_INVALID')) {
        throw new CliError(err.message);
      }
      throw err;
    }
    handle = submitted;
    // Interrupts that came while the run was being stored apply now.
    for (let n = 1; n <= Math.min(interrupts, 2); n++) cancelRun(submitted, n);

    // The engine holds the event loop while the run is active (a retry backoff included).
    const report = await submitted.wait();
    v.stop();
    stopInterrupts();
    printSummary(human, colors, report);
    if (json) envr.stdout.write(redact(`${JSON.stringify(report, null, 2)}\n`));
    return exitCodeFor(report, engineErrors.length > 0);
  } catch (err) {
    view?.stop();
    return fail(asCliError('infrastructure error', err));
  } finally {
    stopInterrupts();
    await engine?.close().catch(() => undefined);
    await stores?.close().catch(() => undefined);
  }
}

/**
 * Exit code of a finished run: 0 succeeded; 130 cancelled (1 when a run
 * timeout cancelled it); 3 when it failed because of the infrastructure (a job
 * failed with reason `infra` or `lost`, or the engine reported an error);
 * otherwise 1.
 */
export function exitCodeFor(report: RunReport, engineError = false): number {
  const { status, reason } = report.run;
  if (status === 'succeeded') return EXIT.OK;
  if (status === 'cancelled') return reason === 'timeout' ? EXIT.FAILED : EXIT.CANCELLED;
  const infra = report.jobs.some((j) => j.status === 'failed' && (j.reason === 'infra' || j.reason === 'lost'));
  if (infra || reason === 'infra' || reason === 'lost' || engineError) return EXIT.INFRA;
  return EXIT.FAILED;
}

/** Checks what the engine would only find out at run time, so it is a usage error (exit 2) up front. */
function checkRunnable(spec: PipelineSpec, opts: ResolvedRunOptions): void {
  const declared = Object.keys(spec.inputs);
  if (declared.length) {
    const unknown = Object.keys(opts.inputs).filter((k) => !declared.includes(k));
    if (unknown.length) {
      throw new CliError(
        `--input ${unknown.map((k) => `\`${k}\``).join(', ')}: the pipeline declares no such input; declared: ${declared.join(', ')}`,
      );
    }
  }
  try {
    resolveInputs(spec, opts.inputs);
  } catch (err) {
    if (err instanceof PipewrightError) throw new CliError(err.message);
    throw err;
  }
}

/** The current directory, or undefined when it is gone (deleted under the shell). */
function currentDir(): string | undefined {
  try {
    return process.cwd();
  } catch {
    return undefined;
  }
}

/** `vars.NAME` the pipeline's expressions read (`${{ }}` and `if:` conditions), each name once (any case). */
function referencedVars(spec: PipelineSpec): string[] {
  const seen = new Map<string, string>();
  const scan = (code: string) => {
    for (const m of code.matchAll(/(?<![\w.-])vars\s*\.\s*([A-Za-z_][\w-]*)/gi)) {
      const name = m[1] as string;
      if (!seen.has(name.toUpperCase())) seen.set(name.toUpperCase(), name);
    }
  };
  const walk = (v: unknown, key: string) => {
    if (typeof v === 'string') {
      if (key === 'if') scan(v);
      else for (const m of v.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) scan(m[1] as string);
    } else if (Array.isArray(v)) for (const x of v) walk(x, key);
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(spec, '');
  return [...seen.values()];
}

/**
 * Jobs whose `runs-on` names Windows or macOS (literally, or through the matrix values a
 * `runs-on: ${{ matrix.os }}` reads), with the first such label: they run on this host.
 */
function otherOsJobs(spec: PipelineSpec): string[] {
  if (process.platform === 'win32' || process.platform === 'darwin') return [];
  const out: string[] = [];
  for (const job of Object.values(spec.jobs)) {
    const labels = job.runsOn.join(' ');
    const text = labels.includes('${{') ? `${labels} ${JSON.stringify(job.strategy?.matrix ?? '')}` : labels;
    const m = /\b(?:windows|macos)[\w.-]*/i.exec(text);
    if (m) out.push(`${job.id} (${m[0]})`);
  }
  return out;
}

/** Every job instance of the plan, base jobs in DAG order, instances in matrix order. */
function orderedRows(spec: PipelineSpec): JobRow[] {
  const graph = new Map(Object.values(spec.jobs).map((j) => [j.id, j.needs] as const));
  const order = new Map(topologicalOrder(graph).map((id, i) => [id, i]));
  const jobs = initialJobs('plan', spec, 0);
  return jobs
    .map((j, i) => ({ j, i }))
    .sort((a, b) => (order.get(a.j.job) ?? 0) - (order.get(b.j.job) ?? 0) || a.i - b.i)
    .map(({ j }) => ({ id: j.id, status: 'pending' as const, attempt: 0 }));
}

function printSummary(out: Output, colors: ReturnType<typeof pc.createColors>, report: RunReport): void {
  const count = (s: string) => report.jobs.filter((j) => j.status === s).length;
  for (const j of report.jobs) {
    if (j.status !== 'failed') continue;
    const last = j.attempts[j.attempts.length - 1];
    const message = j.message ?? last?.message ?? '';
    const tries = j.attempts.length > 1 ? ` after ${j.attempts.length} attempts` : '';
    out.write(
      colors.red(`✗ ${j.id} failed${j.reason ? ` (${j.reason})` : ''}${tries}${message ? `: ${message}` : ''}\n`),
    );
  }
  const { status, startedAt, finishedAt, createdAt } = report.run;
  const began = Date.parse(startedAt ?? createdAt ?? '');
  const ended = Date.parse(finishedAt ?? '');
  const took = Number.isFinite(began) && Number.isFinite(ended) ? ended - began : 0;
  const parts = [`${count('succeeded')} succeeded`, `${count('failed')} failed`, `${count('skipped')} skipped`];
  if (count('cancelled')) parts.push(`${count('cancelled')} cancelled`);
  const paint = status === 'succeeded' ? colors.green : status === 'failed' ? colors.red : colors.yellow;
  const icon = status === 'succeeded' ? '✓' : status === 'failed' ? '✗' : '⊘';
  // A failed run's message repeats its first failed job's, printed above.
  const why = status === 'cancelled' && report.run.message ? ` (${report.run.message})` : '';
  out.write(
    `${paint(`${icon} run ${status} in ${formatElapsed(took)}`)}${why}: ${parts.join(', ')}  ${colors.dim(report.run.id)}\n`,
  );
}
