import { isTerminalJob, type JobStatus } from '@pipewright/core';
import type pc from 'picocolors';
import { clockTime, formatElapsed, truncate } from './format.js';

/** Where the CLI writes human-readable output; `write` masks secret values. */
export interface Output {
  write(text: string): void;
  /** True when escape codes may be used (a terminal). */
  readonly isTTY: boolean;
  /** Terminal width (80 when unknown). */
  columns(): number;
  /** Terminal height (24 when unknown). */
  rows(): number;
}

/** Job statuses shown by the CLI: the engine's (DESIGN §3). */
export type { JobStatus };

/** What the progress views know about one job instance. */
export interface JobRow {
  id: string;
  status: JobStatus;
  /** Current attempt number (0 before the first starts). */
  attempt: number;
  startedAt?: number;
  finishedAt?: number;
  reason?: string;
  /** Delay before the next attempt, while `retrying`. */
  retryInMs?: number;
}

/** Renders a run's progress; every method is called with already masked text. */
export interface ProgressView {
  /** A job's row changed (`event` says what happened). */
  update(row: JobRow, event: 'queued' | 'started' | 'retrying' | 'finished' | 'added', at: number): void;
  /** A step output line (`--logs`), already prefixed `job/step | `. */
  log(line: string): void;
  /** A message about the run itself (cancelling, warnings). */
  notice(text: string): void;
  /** Stops redrawing; the last frame stays on screen. */
  stop(): void;
}

/** Whether colour is on for an output: a terminal, unless `NO_COLOR`; `FORCE_COLOR` turns it on. */
export function colorEnabled(isTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== '') return true;
  return isTTY && env.TERM !== 'dumb';
}

type Colors = ReturnType<typeof pc.createColors>;

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

function describe(row: JobRow, now: number): string {
  const elapsed = row.startedAt === undefined ? '' : formatElapsed((row.finishedAt ?? now) - row.startedAt);
  switch (row.status) {
    case 'succeeded':
      return `succeeded in ${elapsed}`;
    case 'failed':
      return `failed${row.reason ? ` (${row.reason})` : ''}${elapsed ? ` after ${elapsed}` : ''}`;
    case 'cancelled':
      return `cancelled${elapsed ? ` after ${elapsed}` : ''}`;
    case 'skipped':
      return `skipped${row.reason ? ` (${row.reason === 'upstream' ? 'a need did not succeed' : 'if: was false'})` : ''}`;
    case 'retrying':
      return `retrying${row.retryInMs !== undefined ? ` in ${formatElapsed(row.retryInMs)}` : ''}`;
    default:
      return row.status;
  }
}

/** Prefixed plain lines, no escape codes: `[12:00:01] build: started`. For pipes, files and CI logs. */
export class PlainView implements ProgressView {
  constructor(
    private readonly out: Output,
    private readonly colors: Colors,
  ) {}

  update(row: JobRow, event: Parameters<ProgressView['update']>[1], at: number): void {
    let what: string;
    switch (event) {
      case 'started':
        what = row.attempt > 1 ? `started attempt ${row.attempt}` : 'started';
        break;
      case 'retrying':
        what = `attempt ${row.attempt} failed${row.reason ? ` (${row.reason})` : ''}; ${describe(row, at)}`;
        break;
      case 'finished':
        what = this.paint(row.status, describe(row, at));
        break;
      default:
        return;
    }
    this.out.write(`${this.colors.dim(`[${clockTime(at)}]`)} ${row.id}: ${what}\n`);
  }

  log(line: string): void {
    this.out.write(`${line}\n`);
  }

  notice(text: string): void {
    this.out.write(`${text}\n`);
  }

  stop(): void {}

  private paint(status: JobStatus, text: string): string {
    if (status === 'succeeded') return this.colors.green(text);
    if (status === 'failed') return this.colors.red(text);
    if (status === 'cancelled') return this.colors.yellow(text);
    return text;
  }
}

/**
 * The live view on a terminal: one line per job in DAG order with status,
 * attempt and elapsed time, redrawn in place; log lines and notices scroll
 * above it. Redraws are coalesced to at most one per `intervalMs`.
 */
export class LiveView implements ProgressView {
  private readonly rows: JobRow[] = [];
  private height = 0;
  private frame = 0;
  private timer: NodeJS.Timeout | undefined;
  private pendingAbove: string[] = [];
  private dirty = true;
  private stopped = false;

  constructor(
    private readonly out: Output,
    private readonly colors: Colors,
    initial: readonly JobRow[],
    private readonly intervalMs = 100,
    private readonly now: () => number = Date.now,
  ) {
    this.rows.push(...initial);
    this.out.write('\x1b[?25l');
    this.timer = setInterval(() => {
      this.frame++;
      // Elapsed times tick while anything runs.
      if (this.rows.some((r) => r.status === 'running')) this.dirty = true;
      this.flush();
    }, this.intervalMs);
    this.timer.unref();
    this.flush();
  }

  update(row: JobRow, event: Parameters<ProgressView['update']>[1]): void {
    if (event === 'added' && !this.rows.includes(row)) {
      // A dynamic matrix instance: keep it next to its siblings.
      const base = row.id.replace(/ \(.*\)$/, '');
      let at = -1;
      this.rows.forEach((r, i) => {
        if (r.id === base || r.id.startsWith(`${base} (`)) at = i;
      });
      this.rows.splice(at === -1 ? this.rows.length : at + 1, 0, row);
    }
    this.dirty = true;
  }

  log(line: string): void {
    this.pendingAbove.push(line);
  }

  notice(text: string): void {
    this.pendingAbove.push(text);
    this.flush();
  }

  stop(): void {
    if (this.stopped) return;
    this.dirty = true;
    this.flush();
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.out.write('\x1b[?25h');
  }

  private flush(): void {
    if (this.stopped || (!this.dirty && this.pendingAbove.length === 0)) return;
    let text = this.height > 0 ? `\x1b[${this.height}F\x1b[0J` : '';
    if (this.pendingAbove.length) {
      text += `${this.pendingAbove.join('\n')}\n`;
      this.pendingAbove = [];
    }
    const block = this.render();
    text += block.map((l) => `${l}\n`).join('');
    this.height = block.length;
    this.dirty = false;
    this.out.write(text);
  }

  private render(): string[] {
    const width = Math.max(20, this.out.columns() - 1);
    const maxLines = Math.max(3, this.out.rows() - 2);
    const now = this.now();
    let shown = this.rows;
    let rest = '';
    if (shown.length > maxLines) {
      // Too many to fit: the active and failed jobs first (still in DAG order), then a count.
      const active = this.rows.filter(
        (r) => r.status === 'running' || r.status === 'retrying' || r.status === 'failed',
      );
      shown = active.slice(0, maxLines - 1);
      const counts = new Map<string, number>();
      for (const r of this.rows) if (!shown.includes(r)) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
      rest = `… ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}`;
    }
    const idWidth = Math.min(40, Math.max(...shown.map((r) => [...r.id].length), 4));
    const lines = shown.map((r) => {
      const attempt = r.attempt > 1 ? `  attempt ${r.attempt}` : '';
      const elapsed =
        r.startedAt !== undefined && !isTerminalJob(r.status)
          ? `  ${formatElapsed((r.finishedAt ?? now) - r.startedAt)}`
          : '';
      const plain = `${truncate(r.id, idWidth).padEnd(idWidth)}  ${describe(r, now)}${attempt}${elapsed}`;
      return `${this.icon(r.status)} ${this.paint(r.status, truncate(plain, width - 2))}`;
    });
    if (rest) lines.push(this.colors.dim(truncate(rest, width)));
    return lines;
  }

  private icon(status: JobStatus): string {
    const c = this.colors;
    switch (status) {
      case 'succeeded':
        return c.green('✓');
      case 'failed':
        return c.red('✗');
      case 'cancelled':
        return c.yellow('⊘');
      case 'skipped':
        return c.dim('-');
      case 'running':
        return c.cyan(SPINNER[this.frame % SPINNER.length] as string);
      case 'retrying':
        return c.yellow('↻');
      case 'queued':
        return c.dim('○');
      default:
        return c.dim('·');
    }
  }

  private paint(status: JobStatus, text: string): string {
    if (status === 'failed') return this.colors.red(text);
    if (status === 'pending' || status === 'queued' || status === 'skipped') return this.colors.dim(text);
    return text;
  }
}

/** `--quiet`: no progress; notices still go out (they are warnings and the cancel prompt). */
export class QuietView implements ProgressView {
  constructor(private readonly out: Output) {}
  update(): void {}
  log(line: string): void {
    this.out.write(`${line}\n`);
  }
  notice(text: string): void {
    this.out.write(`${text}\n`);
  }
  stop(): void {}
}
