/** What a masked value is replaced with. */
export const MASK = '***';

/** Options of {@link SecretMasker}. */
export interface SecretMaskerOptions {
  /**
   * Values shorter than this are not masked.
   * @default 3
   */
  minLength?: number;
}

const escapeRegExp = (value: string) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Replaces every registered secret value by `***`. All values are matched by one
 * combined RegExp (alternation sorted longest-first), rebuilt lazily when the set
 * changes, so the cost per line does not grow with the number of secrets the way
 * one `replaceAll` per secret would.
 */
export class SecretMasker {
  readonly #minLength: number;
  readonly #values = new Set<string>();
  #pattern: RegExp | null = null;
  #dirty = false;
  #longest = 0;

  constructor(options: SecretMaskerOptions = {}) {
    this.#minLength = options.minLength ?? 3;
  }

  /** Number of distinct values masked. */
  get size(): number {
    return this.#values.size;
  }

  /** Length (UTF-16 code units) of the longest masked value; 0 without any. */
  get longest(): number {
    return this.#longest;
  }

  /**
   * Registers a value: the exact value, or for a multi-line value each of its lines
   * (masking works on lines, so a whole multi-line value can never occur in one).
   * Returns false when nothing of it will be masked because it is too short.
   */
  add(value: string): boolean {
    if (typeof value !== 'string' || value === '') return false;
    if (!/[\r\n]/.test(value)) return this.#addOne(value, this.#minLength);
    let any = false;
    for (const line of value.split(/\r\n|\r|\n/)) {
      if (this.#addOne(line, Math.max(4, this.#minLength))) any = true;
    }
    return any;
  }

  /** Forgets every value (when the run ends, so values live no longer than needed). */
  clear(): void {
    this.#values.clear();
    this.#pattern = null;
    this.#dirty = false;
    this.#longest = 0;
  }

  /** Masks every occurrence in `text` (one line or several joined by `\n`). */
  mask(text: string): string {
    const re = this.#regex();
    if (re === null) return text;
    // One scan; without a match V8 returns `text` itself, nothing allocated.
    return text.replace(re, MASK);
  }

  /**
   * Masks a piece of a line whose continuation has not arrived yet. Returns the
   * masked part that is safe to emit now and the raw rest (shorter than the longest
   * value) to prepend to the continuation, so a value cut at the piece boundary is
   * still masked.
   */
  maskPrefix(text: string): [emit: string, rest: string] {
    const re = this.#regex();
    if (re === null || this.#longest <= 1) return [this.mask(text), ''];
    let cut = Math.max(0, text.length - (this.#longest - 1));
    let out = '';
    let from = 0;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      // A match starting before `cut` lies wholly inside `text`; one starting later may continue in the next piece.
      if (m.index >= cut) break;
      out += text.slice(from, m.index) + MASK;
      from = m.index + m[0].length;
      if (from > cut) cut = from;
    }
    // Never between the two halves of a surrogate pair (an emoji): each piece must be valid text.
    const before = text.charCodeAt(cut - 1);
    if (cut > from && cut < text.length && before >= 0xd800 && before <= 0xdbff) cut--;
    return [out + text.slice(from, cut), text.slice(cut)];
  }

  #addOne(value: string, min: number): boolean {
    if (value.length < min) return false;
    if (!this.#values.has(value)) {
      this.#values.add(value);
      this.#dirty = true;
      if (value.length > this.#longest) this.#longest = value.length;
    }
    return true;
  }

  #regex(): RegExp | null {
    if (this.#dirty) {
      this.#dirty = false;
      const sorted = [...this.#values].sort((a, b) => b.length - a.length);
      this.#pattern = sorted.length === 0 ? null : new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
    }
    return this.#pattern;
  }
}
