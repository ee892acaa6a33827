/** Exit codes of the `pipewright` command (DESIGN §8). */
export const EXIT = {
  /** The run succeeded / the pipeline is valid. */
  OK: 0,
  /** The run failed. */
  FAILED: 1,
  /** Invalid pipeline or usage. */
  INVALID: 2,
  /** Infrastructure error (executor, store). */
  INFRA: 3,
  /** Cancelled (Ctrl-C). */
  CANCELLED: 130,
} as const;
