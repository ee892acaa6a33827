import type { JobRecord, LogLine, PipelineSpec, RunRecord, RunStatus } from '@pipewright/core';
import { isRunStatus, isTerminalRun, logLineWanted, RUN_STATUSES } from '@pipewright/core';
import pc from 'picocolors';
import { EXIT } from '../exit-codes.js';
import { type CommandEnvironment, processEnvironment } from '../run/environment.js';
import { asCliError, CliError, reportFailure } from '../run/errors.js';
import { stepLabel } from '../run/labels.js';
import { parsePositiveInt } from '../run/options.js';
import { colorEnabled } from '../run/progress.js';
import { displayUrl, type LogStoreHandle, openLogStore, openStateStore, type StateStoreHandle } from '../run/stores.js';

/** Process-level things `pipewright runs` and `pipewright logs` use; tests may replace them. */
export type StoredEnvironment = CommandEnvironment;

/** Raw `pipewright runs` options as commander hands them over. */
export interface RawRunsOptions {
  store?: string;
  s3Endpoint?: string;
  json?: boolean;
  status?: string[];
  limit?: string;
}

/** Raw `pipewright logs` options as commander hands them over. */
export interface RawLogsOptions {
  store?: string;
  logStore?: string;
  s3Endpoint?: string;
  follow?: boolean;
  job?: string;
  json?: boolean;
}

/** Parses `--status` values (repeatable, or comma-separated). */
export function parseStatuses(values: readonly string[]): RunStatus[] {
  const out: RunStatus[] = [];
  for (const v of values.flatMap((s) => s.split(','))) {
    const s = v.trim();
    if (s === '') continue;
    if (!isRunStatus(s)) {
      throw new CliError(`--status \`${s}\` is not a run status; use one of ${RUN_STATUSES.join(', ')}`);
    }
    if (!out.includes(s as RunStatus)) out.push(s as RunStatus);
  }
  return out;
}

/** Parses `--limit`: a positive integer. */
export function parseLimit(value: string | undefined, fallback = 20): number {
  return parsePositiveInt('--limit', value, fallback, 50);
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** One run as `pipewright runs --json` prints it (ISO-8601 times, like the RunReport). */
export interface RunSummary {
  id: string;
  pipeline: string;
  status: RunStatus;
  reason: string | null;
  createdAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

/** A stored run as {@link RunSummary}. */
export function summarize(run: RunRecord): RunSummary {
  return {
    id: run.id,
    pipeline: run.pipelineName,
    status: run.status,
    reason: run.reason ?? null,
    createdAt: iso(run.createdAt),
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
  };
}

/** Rows as cells padded to each column's widest cell (the last column unpadded). */
export function padColumns(rows: readonly (readonly string[])[]): string[][] {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...c].length);
    });
  }
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - [...c].length))));
}

/**
 * `pipewright runs --store URL`: lists stored runs, newest first. Resolves to the
 * exit code (0, 2 usage, 3 store unreachable).
 */
export async function runsCommand(
  raw: RawRunsOptions,
  envr: StoredEnvironment = processEnvironment(),
): Promise<number> {
  const json = raw.json === true;
  let state: StateStoreHandle | undefined;
  try {
    if (!raw.store)
      throw new CliError('--store URL is required: the store the runs were written to (e.g. redis://127.0.0.1:6379/0)');
    const status = parseStatuses(raw.status ?? []);
    const limit = parseLimit(raw.limit);
    state = await openStateStore(raw.store, { s3Endpoint: raw.s3Endpoint, env: envr.env });
    let runs: RunRecord[];
    try {
      runs = await state.store.listRuns({ ...(status.length ? { status } : {}), limit });
    } catch (err) {
      throw asCliError('--store', err);
    }
    const rows = runs.map(summarize);
    if (json) {
      envr.stdout.write(`${JSON.stringify({ runs: rows }, null, 2)}\n`);
      return EXIT.OK;
    }
    if (!rows.length) {
      envr.stderr.write(
        `no runs${status.length ? ` with status ${status.join(', ')}` : ''} in ${displayUrl(raw.store)}\n`,
      );
      return EXIT.OK;
    }
    const colors = pc.createColors(colorEnabled(envr.stdout.isTTY === true, envr.env));
    const paint = (cell: string) => {
      const s = cell.trim();
      const c =
        s === 'succeeded' ? colors.green : s === 'failed' ? colors.red : s === 'cancelled' ? colors.yellow : undefined;
      return c ? cell.replace(s, c(s)) : cell;
    };
    const cells = [
      ['ID', 'PIPELINE', 'STATUS', 'CREATED', 'STARTED', 'FINISHED'],
      ...rows.map((r) => [r.id, r.pipeline, r.status, r.createdAt ?? '-', r.startedAt ?? '-', r.finishedAt ?? '-']),
    ];
    // Colour after padding so escape codes do not skew the columns.
    const out = padColumns(cells).map((r, i) =>
      i === 0
        ? colors.dim(r.join('  '))
        : r
            .map((c, col) => (col === 2 ? paint(c) : c))
            .join('  ')
            .trimEnd(),
    );
    envr.stdout.write(`${out.join('\n')}\n`);
    return EXIT.OK;
  } catch (err) {
    return reportFailure('runs', envr, json, asCliError('--store', err));
  } finally {
    await state?.close().catch(() => undefined);
  }
}

/** A step's label for `job/step |` prefixes: its recorded name, else from the spec, else `step N`. */
export function stepLabelOf(spec: PipelineSpec, jobs: readonly JobRecord[], jobId: string, index: number): string {
  const job = jobs.find((j) => j.id === jobId);
  for (const a of [...(job?.attempts ?? [])].reverse()) {
    const s = a.steps.find((st) => st.index === index);
    if (s?.name) return s.name;
  }
  return stepLabel(spec, job?.job ?? jobId, index);
}

/**
 * `pipewright logs RUN_ID`: prints a stored run's log lines in order as
 * `job/step | line` (the same prefix as `run --logs`); `--follow` keeps printing
 * until the run's log ends. Resolves to the exit code (0; 2 usage or unknown run;
 * 3 store unreachable; 130 interrupted while following).
 */
export async function logsCommand(
  runId: string,
  raw: RawLogsOptions,
  envr: StoredEnvironment = processEnvironment(),
): Promise<number> {
  const json = raw.json === true;
  let state: StateStoreHandle | undefined;
  let logs: LogStoreHandle | undefined;
  let stopInterrupts = () => {};
  try {
    if (!raw.store)
      throw new CliError('--store URL is required: the store holding the run (e.g. redis://127.0.0.1:6379/0)');
    if (!raw.logStore) {
      throw new CliError(
        "--log-store URL is required: the store holding the run's logs (redis://... or s3://BUCKET/PREFIX)",
      );
    }
    const opts = { s3Endpoint: raw.s3Endpoint, env: envr.env };
    state = await openStateStore(raw.store, opts);
    logs = await openLogStore(raw.logStore, opts);
    let run: RunRecord | undefined;
    let jobs: JobRecord[];
    try {
      run = await state.store.getRun(runId);
      jobs = run ? await state.store.getJobs(runId) : [];
    } catch (err) {
      throw asCliError('--store', err);
    }
    if (!run) {
      throw new CliError(
        `run \`${runId}\` is not in ${displayUrl(raw.store)}; list the stored runs with \`pipewright runs --store ${displayUrl(raw.store)}\``,
        EXIT.INVALID,
        'RUN_NOT_FOUND',
      );
    }
    const job = raw.job;
    if (job !== undefined && !jobs.some((j) => j.id === job)) {
      throw new CliError(
        `--job \`${job}\`: run ${runId} has no such job; its jobs: ${jobs.map((j) => j.id).join(', ') || 'none'}`,
      );
    }
    const colors = pc.createColors(!json && colorEnabled(envr.stdout.isTTY === true, envr.env));
    const spec = run.spec;
    const filter = job === undefined ? {} : { job };
    const print = (lines: readonly LogLine[]) => {
      let out = '';
      for (const l of lines) {
        // The stores' own rule: a line of the run itself (a marker for dropped lines) concerns every job.
        if (!logLineWanted(l, filter)) continue;
        const stepName = l.step < 0 || l.jobId === '' ? undefined : stepLabelOf(spec, jobs, l.jobId, l.step);
        if (json) {
          const doc = {
            seq: l.seq,
            ts: new Date(l.ts).toISOString(),
            job: l.jobId,
            attempt: l.attempt,
            step: l.step,
            stepName: stepName ?? null,
            stream: l.stream,
            text: l.text,
          };
          out += `${JSON.stringify(doc)}\n`;
        } else {
          out += `${colors.dim(`${l.jobId || '(run)'}${stepName === undefined ? '' : `/${stepName}`} |`)} ${l.text}\n`;
        }
      }
      if (out) envr.stdout.write(out);
    };

    const logStore = logs.logs;
    const stateStore = state.store;
    // A finished run's log is complete; following it would wait for an end marker a
    // crashed engine may never have written.
    if (!raw.follow || isTerminalRun(run.status)) {
      const page = 5000;
      let after = 0;
      let printed = 0;
      for (;;) {
        let lines: LogLine[];
        try {
          lines = await logStore.read(runId, { after, limit: page, ...(job !== undefined ? { job } : {}) });
        } catch (err) {
          throw asCliError('--log-store', err);
        }
        print(lines);
        printed += lines.length;
        const last = lines[lines.length - 1];
        if (!last || lines.length < page) break;
        after = last.seq;
      }
      // Not an error (a run's steps may print nothing), but the likely cause deserves a word.
      if (printed === 0 && job === undefined && run.status !== 'queued') {
        envr.stderr.write(
          `pipewright logs: run ${runId} has no log lines in --log-store \`${displayUrl(raw.logStore)}\`; if its steps printed anything, the run wrote its log to another store\n`,
        );
      }
      return EXIT.OK;
    }

    const controller = new AbortController();
    let jobsReadAt = Date.now();
    let interrupted = false;
    stopInterrupts = envr.onInterrupt(() => {
      interrupted = true;
      controller.abort(new Error('interrupted'));
    });
    try {
      for await (const batch of logStore.follow(runId, { signal: controller.signal })) {
        // Steps that started after the jobs were read have no recorded name yet.
        const unnamed = batch.lines.some(
          (l) =>
            l.step >= 0 &&
            !jobs.some((j) => j.id === l.jobId && j.attempts.some((a) => a.steps.some((st) => st.index === l.step))),
        );
        if (unnamed && Date.now() - jobsReadAt > 1000) {
          jobsReadAt = Date.now();
          jobs = await stateStore.getJobs(runId).catch(() => jobs);
        }
        print(batch.lines);
      }
    } catch (err) {
      if (!interrupted) throw asCliError('--log-store', err);
    }
    return interrupted ? EXIT.CANCELLED : EXIT.OK;
  } catch (err) {
    return reportFailure('logs', envr, json, asCliError('--store', err));
  } finally {
    stopInterrupts();
    await Promise.allSettled([state?.close(), logs?.close()]);
  }
}
