import { isAscii } from 'node:buffer';
import type { SecretMasker } from './masker.js';

/** Starts every piece of a cut line after the first, so a reader sees the line was split. */
export const LINE_CONTINUATION_MARKER = '[pipewright: line continued] ';

/** Options of {@link LineSplitter}. */
export interface LineSplitterOptions {
  /**
   * Longest line in UTF-8 bytes; a longer one is cut into pieces.
   * @default 65536
   */
  maxLineBytes?: number;
  /** Masks every line before it is handed out (consulted at that moment, so values added later apply from then on). */
  masker?: Pick<SecretMasker, 'mask' | 'maskPrefix'> | undefined;
}

const LF = 10;
const CR = 13;
const MARKER_BYTES = Buffer.byteLength(LINE_CONTINUATION_MARKER);

function asBuffer(chunk: Uint8Array): Buffer {
  return Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

/** Where to cut `buf` (longer than `max`) so that no UTF-8 character and no `\r\n` is split. */
function cutPoint(buf: Buffer, max: number): number {
  let cut = max;
  while (cut > 0 && ((buf[cut] ?? 0) & 0xc0) === 0x80) cut--;
  if (cut === 0) cut = max; // not UTF-8 anyway: cut where the limit says
  if (cut > 1 && buf[cut - 1] === CR) cut--;
  return cut;
}

/**
 * Splits one output stream (one step's stdout or stderr) into lines.
 *
 * Works on bytes: `\n` (0x0A) never occurs inside a multi-byte UTF-8 sequence, so
 * cutting the byte stream at `\n` and decoding whole lines means a character split
 * over two chunks is decoded once, intact. The complete lines of a chunk are decoded
 * and masked as one string (one native decode and one RegExp scan per chunk rather
 * than per line); secrets never contain `\n`, so masking a block of lines equals
 * masking each line. `\r\n` ends a line like `\n`. A line longer than `maxLineBytes`
 * is cut at a character boundary; every later piece starts with
 * {@link LINE_CONTINUATION_MARKER}. {@link end} flushes a final unterminated line.
 */
export class LineSplitter {
  readonly #onLine: (text: string, bytes?: number) => void;
  readonly #max: number;
  readonly #masker: Pick<SecretMasker, 'mask' | 'maskPrefix'> | undefined;
  /** Bytes of the current unterminated line (never more than `max` in total after a push). */
  #parts: Buffer[] = [];
  #partsLength = 0;
  /** The current line was cut: its pieces go through {@link #piece} until it ends. */
  #inLong = false;
  /** A piece of the current line was already handed out: the next one is a continuation. */
  #continued = false;
  /** Raw text held back from the last piece because a secret may straddle the cut. */
  #carry = '';

  /** Bytes of text a continuation piece may hold: the marker counts against `maxLineBytes`. */
  readonly #room: number;

  /** `onLine` gets each line, and its UTF-8 size when that is known for free (ASCII text). */
  constructor(onLine: (text: string, bytes?: number) => void, options: LineSplitterOptions = {}) {
    this.#onLine = onLine;
    this.#max = options.maxLineBytes ?? 64 * 1024;
    // A limit too small to hold the marker and some text keeps the marker on top (only tests go that low).
    this.#room = this.#max > 2 * MARKER_BYTES ? this.#max - MARKER_BYTES : this.#max;
    this.#masker = options.masker;
  }

  /** Bytes held for the current unterminated line. */
  get pendingBytes(): number {
    return this.#partsLength + this.#carry.length;
  }

  /** Feeds a chunk; calls `onLine` for every line it completes. */
  push(chunk: Uint8Array): void {
    const buf = asBuffer(chunk);
    let start = 0;
    if (this.#partsLength > 0 || this.#inLong) {
      const nl = buf.indexOf(LF);
      if (nl === -1) {
        this.#append(buf);
        return;
      }
      this.#parts.push(buf.subarray(0, nl));
      const line = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts);
      this.#parts = [];
      this.#partsLength = 0;
      if (this.#inLong || line.length > this.#max) this.#long(line, true);
      else this.#block(line, 0, line.length);
      start = nl + 1;
    }
    const last = buf.lastIndexOf(LF);
    if (last >= start) {
      this.#block(buf, start, last);
      start = last + 1;
    }
    if (start < buf.length) this.#append(buf.subarray(start));
  }

  /** Flushes the final unterminated line, if any. */
  end(): void {
    if (this.#partsLength === 0 && !this.#inLong) return;
    const line = Buffer.concat(this.#parts);
    this.#parts = [];
    this.#partsLength = 0;
    this.#long(line, true);
  }

  #append(bytes: Buffer): void {
    // Copy: the caller may reuse its chunk buffer after write() returns.
    this.#parts.push(Buffer.from(bytes));
    this.#partsLength += bytes.length;
    if (this.#partsLength > this.#max) {
      const rest = this.#long(Buffer.concat(this.#parts), false);
      this.#parts = rest.length > 0 ? [Buffer.from(rest)] : [];
      this.#partsLength = rest.length;
    }
  }

  /** Complete lines `buf[start, end)` separated by `\n`. */
  #block(buf: Buffer, start: number, end: number): void {
    let text = buf.toString('utf8', start, end);
    // ASCII lines weigh their length in UTF-8, also once masked (`***` is ASCII too): the
    // consumer is spared a byteLength per line.
    const ascii = isAscii(buf.subarray(start, end));
    if (this.#masker !== undefined) text = this.#masker.mask(text);
    const onLine = this.#onLine;
    const quickMax = this.#max / 3; // a UTF-16 code unit is at most 3 UTF-8 bytes
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      let line = nl === -1 ? text.slice(from) : text.slice(from, nl);
      if (line.charCodeAt(line.length - 1) === CR) line = line.slice(0, -1);
      if (line.length > quickMax && Buffer.byteLength(line) > this.#max) this.#emit(line, false);
      else onLine(line, ascii ? line.length : undefined);
      if (nl === -1) return;
      from = nl + 1;
    }
  }

  /**
   * Hands out masked text as one line, or, when it is longer than `maxLineBytes` (a whole line,
   * or a piece that a held-back secret prefix made longer), as pieces that each fit, the marker
   * included.
   */
  #emit(text: string, continued: boolean): void {
    const marker = continued ? LINE_CONTINUATION_MARKER : '';
    const limit = continued ? this.#room : this.#max;
    if (text.length * 3 <= limit || Buffer.byteLength(text) <= limit) {
      this.#onLine(marker + text);
      return;
    }
    let buf = Buffer.from(text);
    let first = !continued;
    while (buf.length > 0) {
      const room = first ? this.#max : this.#room;
      const cut = buf.length > room ? cutPoint(buf, room) : buf.length;
      const piece = buf.toString('utf8', 0, cut);
      this.#onLine(first ? piece : LINE_CONTINUATION_MARKER + piece);
      first = false;
      buf = buf.subarray(cut);
    }
  }

  /** Cuts raw (unmasked) bytes of a long line into pieces; returns the unemitted rest unless `final`. */
  #long(buf: Buffer, final: boolean): Buffer {
    for (;;) {
      // The first piece may fill the limit; later ones leave room for the marker.
      const room = this.#continued ? this.#room : this.#max;
      if (buf.length <= room) break;
      const cut = cutPoint(buf, room);
      this.#piece(buf.toString('utf8', 0, cut), false);
      buf = buf.subarray(cut);
    }
    if (!final) return buf;
    this.#piece(buf.toString('utf8'), true);
    return buf.subarray(0, 0);
  }

  #piece(raw: string, final: boolean): void {
    let text = this.#carry + raw;
    let out: string;
    if (final) {
      if (text.charCodeAt(text.length - 1) === CR) text = text.slice(0, -1);
      out = this.#masker === undefined ? text : this.#masker.mask(text);
      this.#carry = '';
    } else if (this.#masker === undefined) {
      out = text;
    } else {
      [out, this.#carry] = this.#masker.maskPrefix(text);
    }
    const continued = this.#continued;
    this.#inLong = !final;
    this.#continued = !final && (continued || out !== '');
    // Nothing to show: all held back, or the empty tail of a line cut right before its end.
    if (out === '' && (continued || !final)) return;
    this.#emit(out, continued);
  }
}
