/** Stream a log line came from. `system` lines are written by pipewright itself. */
export type LogStream = 'stdout' | 'stderr' | 'system';

/** One masked log line. */
export interface LogLine {
  /** Per-run sequence number: gap-free and increasing from 1. */
  seq: number;
  /** Epoch ms when the line was completed. */
  ts: number;
  runId: string;
  /**
   * The job instance; `''` for a line of the run itself (a store's marker for dropped lines),
   * which a reader filtering by job or step still gets.
   */
  jobId: string;
  attempt: number;
  /** Step index (0-based); -1 for job-level lines. */
  step: number;
  stream: LogStream;
  text: string;
}

/** A batch of consecutive lines of one run. */
export interface LogBatch {
  runId: string;
  lines: LogLine[];
}

/** Options of {@link LogStore.read}. */
export interface LogReadOptions {
  /** Only lines with `seq > after`. @default 0 */
  after?: number;
  /** At most this many lines. */
  limit?: number;
  /** Only lines of this job instance. */
  job?: string;
  /** Only lines of this step index. */
  step?: number;
}

/** Options of {@link LogStore.follow}. */
export interface LogFollowOptions {
  after?: number;
  signal?: AbortSignal;
}

/** Where log lines live. */
export interface LogStore {
  /** Appends a batch; batches of one run arrive in `seq` order. */
  append(runId: string, batch: LogBatch): Promise<void>;
  /** Lines in `seq` order. */
  read(runId: string, options?: LogReadOptions): Promise<LogLine[]>;
  /**
   * Replays stored batches after `after`, then yields live ones without gaps or
   * duplicates; ends after {@link LogStore.end} was called for the run (or on abort).
   */
  follow(runId: string, options?: LogFollowOptions): AsyncIterable<LogBatch>;
  /** Marks a run's log complete: followers end once they have read everything. */
  end(runId: string): Promise<void>;
  /**
   * The `seq` of the run's last stored line (0 when it has none). An engine that takes a
   * run over goes on numbering from there, so its lines are not dropped as resends. Without
   * it the engine reads the whole log once to find out.
   */
  lastSeq?(runId: string): Promise<number>;
  close?(): Promise<void>;
}
