import { SecretMasker, type SecretProvider } from '@pipewright/core';
import { CliError } from './errors.js';

/**
 * Secrets given with `--secret NAME`, read from the environment. The values are
 * taken out of `env` so steps receive them only through `${{ secrets.NAME }}`
 * (where the engine masks them), never by inheriting the CLI's environment.
 * Secret names are case-insensitive, as on GitHub: `--secret TOKEN` is `secrets.token` too.
 */
export class EnvSecrets implements SecretProvider {
  /** Values by the name given, upper-cased. */
  readonly #values = new Map<string, string>();
  readonly #names: string[] = [];
  readonly #unmaskable: string[] = [];
  /** Masks every `--secret` value in what the CLI itself prints (defence in depth). */
  readonly masker = new SecretMasker();

  /** Reads each name from `env`; a missing variable is a usage error naming it. */
  constructor(names: readonly string[], env: NodeJS.ProcessEnv = process.env) {
    const missing = names.filter((n) => env[n] === undefined);
    if (missing.length) {
      throw new CliError(
        `--secret ${missing.join(', ')}: environment variable${missing.length > 1 ? 's' : ''} ${missing.map((n) => `$${n}`).join(', ')} not set; export it before running (the value is read from the environment, never from the command line)`,
      );
    }
    for (const n of names) {
      const key = n.toUpperCase();
      const same = this.#names.find((m) => m.toUpperCase() === key);
      if (same !== undefined) {
        throw new CliError(
          `--secret ${same} and --secret ${n} name the same secret (secret names are case-insensitive, as on GitHub); give one of them`,
        );
      }
      const v = env[n] as string;
      this.#names.push(n);
      this.#values.set(key, v);
      // The masker says when a value is too short to mask (its `minLength`, 3 by default).
      if (!this.masker.add(v) && v !== '') this.#unmaskable.push(n);
      delete env[n];
    }
  }

  /** Names given with `--secret`. */
  get names(): string[] {
    return [...this.#names];
  }

  /** True when `name` (any case) was given with `--secret`. */
  has(name: string): boolean {
    return this.#values.has(name.toUpperCase());
  }

  /**
   * Names whose value is too short to mask (1-2 characters, the log pipeline's `minMaskLength`):
   * masking them would star out every such letter pair in every log, so they print as they are.
   */
  get unmaskable(): string[] {
    return [...this.#unmaskable];
  }

  /** Secrets the pipeline references but were not given resolve to '' (as GitHub does for unknown secrets). */
  async resolve(names: string[]): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const n of names) out[n] = this.#values.get(n.toUpperCase()) ?? '';
    return out;
  }

  /** Masks secret values in text the CLI prints. */
  redact(text: string): string {
    return this.masker.mask(text);
  }
}
