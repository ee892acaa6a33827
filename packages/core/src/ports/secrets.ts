/** Context passed to a secret provider: which run and job asks. */
export interface SecretContext {
  runId: string;
  jobId: string;
  attempt: number;
}

/** Resolves secret values just in time, when an attempt starts. */
export interface SecretProvider {
  resolve(names: string[], ctx: SecretContext): Promise<Record<string, string>>;
}
