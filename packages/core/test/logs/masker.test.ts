import { MASK, RunLogger, SecretMasker } from '@pipewright/core';
import { describe, expect, it } from 'vitest';
import { enc, TestLogStore } from './helpers.js';

const ctx = { jobId: 'build', attempt: 1, step: 0, stream: 'stdout' as const };

async function logLines(secrets: string[], chunks: Uint8Array[]): Promise<string[]> {
  const store = new TestLogStore();
  const logger = new RunLogger(store, 'run-1');
  for (const s of secrets) logger.addMask(s);
  const sink = logger.stream(ctx);
  for (const c of chunks) await sink.write(c);
  await logger.close();
  return store.texts();
}

describe('SecretMasker', () => {
  it('masks every occurrence, longest value first, with RegExp characters taken literally', () => {
    const m = new SecretMasker();
    m.add('pa$$(w.rd)*');
    m.add('abc');
    m.add('abcdef');
    expect(m.mask('x pa$$(w.rd)* y abcdef z abc abcabc')).toBe(`x ${MASK} y ${MASK} z ${MASK} ${MASK}${MASK}`);
    expect(m.mask('nothing here')).toBe('nothing here');
    expect(m.size).toBe(3);
  });

  it('masks each line of a multi-line value of 4+ characters, not shorter lines', () => {
    const m = new SecretMasker();
    expect(m.add('-----BEGIN KEY-----\r\nMIIEabcdef\nxyz\n-----END KEY-----')).toBe(true);
    expect(m.mask('-----BEGIN KEY-----')).toBe(MASK);
    expect(m.mask('line MIIEabcdef')).toBe(`line ${MASK}`);
    expect(m.mask('xyz')).toBe('xyz');
  });

  it('does not mask values shorter than minLength (default 3) and says so', () => {
    const m = new SecretMasker();
    expect(m.add('')).toBe(false);
    expect(m.add('ab')).toBe(false);
    expect(m.add('abc')).toBe(true);
    expect(m.mask('ab abc')).toBe(`ab ${MASK}`);
    const strict = new SecretMasker({ minLength: 1 });
    expect(strict.add('q')).toBe(true);
    expect(strict.mask('qq')).toBe(MASK + MASK);
  });

  it('maskPrefix never cuts between the two halves of an emoji', () => {
    const m = new SecretMasker();
    m.add('SECRET1');
    const text = `ok ${'😀'.repeat(10)}`;
    for (let extra = 0; extra < 4; extra++) {
      const [emit, rest] = m.maskPrefix(text + 'x'.repeat(extra));
      expect(emit + rest).toBe(text + 'x'.repeat(extra));
      expect(emit.isWellFormed() && rest.isWellFormed()).toBe(true);
    }
  });

  it('maskPrefix holds back a tail that could start a value', () => {
    const m = new SecretMasker();
    m.add('SECRET');
    // The last (longest - 1) = 5 characters may be the start of a value.
    expect(m.maskPrefix('aaaSEC')).toEqual(['a', 'aaSEC']);
    expect(m.maskPrefix('xSECRETyyyyyy')).toEqual([`x${MASK}y`, 'yyyyy']);
    // A match reaching into the held-back tail is emitted whole.
    expect(m.maskPrefix('xxSECRET')).toEqual([`xx${MASK}`, '']);
  });

  it('masks 100 registered values with one combined matcher', () => {
    const m = new SecretMasker();
    const values = Array.from({ length: 100 }, (_, i) => `secret-${i}-${'k'.repeat(i % 7)}${i}`);
    for (const v of values) m.add(v);
    const line = values.map((v, i) => `${i}:${v}`).join(' ');
    const masked = m.mask(line);
    for (const v of values) expect(masked).not.toContain(v);
    expect(masked.split(MASK)).toHaveLength(101);
  });

  it('clear() forgets every value', () => {
    const m = new SecretMasker();
    m.add('hunter2');
    m.clear();
    expect(m.mask('hunter2')).toBe('hunter2');
    expect(m.size).toBe(0);
  });
});

describe('masking in the pipeline', () => {
  it('masks a secret split across two chunks, at every split offset', async () => {
    const secret = 'tok_€ünïcødé_12345';
    const bytes = enc(`before ${secret} after\nnext ${secret}\n`);
    for (let i = 0; i <= bytes.length; i++) {
      const got = await logLines([secret], [bytes.subarray(0, i), bytes.subarray(i)]);
      expect(got, `split at byte ${i}`).toEqual([`before ${MASK} after`, `next ${MASK}`]);
    }
  });

  it('masks a multi-line secret printed as is (each line)', async () => {
    const key = 'line-one-of-key\nline-two-of-key\nend';
    const got = await logLines([key], [enc(`key:\n${key}\ndone\n`)]);
    expect(got).toEqual(['key:', MASK, MASK, 'end', 'done']);
  });

  it('masks 100 secrets across many chunks and leaks none', async () => {
    const secrets = Array.from({ length: 100 }, (_, i) => `S${i}_${(i * 7919).toString(36)}_value`);
    const text = secrets.map((s, i) => `line ${i} has ${s} and ${secrets[(i * 13) % 100]}`).join('\n');
    const bytes = enc(`${text}\n`);
    const chunks: Uint8Array[] = [];
    for (let o = 0; o < bytes.length; o += 37) chunks.push(bytes.subarray(o, o + 37));
    const got = await logLines(secrets, chunks);
    expect(got).toHaveLength(100);
    for (const line of got) {
      for (const s of secrets) expect(line).not.toContain(s);
      expect(line).toMatch(/^line \d+ has \*\*\* and \*\*\*$/);
    }
  });

  it('applies a secret registered mid-step from then on, including the line still being written', async () => {
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'run-1');
    const sink = logger.stream(ctx);
    await sink.write(enc('early hunter42\nhalf hunt'));
    logger.addMask('hunter42');
    await sink.write(enc('er42 done\nlater hunter42\n'));
    await logger.close();
    expect(store.texts()).toEqual(['early hunter42', `half ${MASK} done`, `later ${MASK}`]);
  });

  it('masks system lines too', async () => {
    const store = new TestLogStore();
    const logger = new RunLogger(store, 'run-1');
    logger.addMask('hunter42');
    logger.system({ jobId: 'build', attempt: 1, step: -1 }, 'resolved hunter42\r\nsecond');
    await logger.close();
    expect(store.lines().map((l) => [l.stream, l.step, l.text])).toEqual([
      ['system', -1, `resolved ${MASK}`],
      ['system', -1, 'second'],
    ]);
  });
});
