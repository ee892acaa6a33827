const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

/**
 * Parses a duration such as `90s`, `5m`, `1h30m` or `250ms` into milliseconds.
 * Returns undefined for anything else (including an empty string and negative values).
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === '') return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < s.length) {
    const at = PART.lastIndex;
    const m = PART.exec(s);
    if (!m || m.index !== at) return undefined;
    total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  }
  return Number.isFinite(total) ? Math.round(total) : undefined;
}

/**
 * An evaluated `timeout-minutes` expression in milliseconds: a positive number of minutes (a
 * numeric string too). Anything else throws, saying what the expression gave (a string
 * through `redact`, which masks secret values).
 */
export function timeoutMinutesMs(value: unknown, redact: (text: string) => string = (t) => t): number {
  const m =
    typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
  if (!Number.isFinite(m) || m <= 0) {
    // Masked before quoting: an escaped secret (a `"` or `\` in it) would no longer match its mask.
    const shown = typeof value === 'string' ? redact(value) : value;
    throw new Error(`evaluated to ${JSON.stringify(shown) ?? String(shown)}, not a positive number of minutes`);
  }
  return Math.round(m * 60_000);
}

/** Formats milliseconds as a short duration (`1h30m`, `90s` is shown as `1m30s`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  let rest = Math.round(ms / 1000);
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  const s = rest - m * 60;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}
