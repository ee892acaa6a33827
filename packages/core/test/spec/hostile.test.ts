import { PipewrightError, parsePipeline, validatePipeline } from '@pipewright/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

/** Runs parsePipeline and returns the PipewrightError it throws, with how long it took. */
function rejects(text: string): { err: PipewrightError; ms: number } {
  const started = performance.now();
  try {
    parsePipeline(text, { file: 'hostile.yml' });
  } catch (err) {
    const ms = performance.now() - started;
    expect(err).toBeInstanceOf(PipewrightError);
    return { err: err as PipewrightError, ms };
  }
  throw new Error('expected parsePipeline to reject the document');
}

function firstMessage(err: PipewrightError): string {
  const ds = err.details.diagnostics as Array<{ message: string }>;
  return ds[0]?.message ?? '';
}

describe('hostile input ends quickly in a clear PIPELINE_INVALID', () => {
  it('a YAML alias bomb (billion laughs)', () => {
    const names = 'abcdefghij';
    let text = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    for (let i = 1; i < names.length; i++) {
      text += `${names[i]}: &${names[i]} [${Array(9)
        .fill(`*${names[i - 1]}`)
        .join(',')}]\n`;
    }
    text += 'jobs: {x: {steps: [{run: *j}]}}\n';
    const before = process.memoryUsage().heapUsed;
    const { err, ms } = rejects(text);
    expect(err.code).toBe('PIPELINE_INVALID');
    expect(firstMessage(err)).toMatch(/aliases expand too much/);
    expect(ms).toBeLessThan(5_000);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(200 * 1024 * 1024);
  });

  it('a 10 MB document', () => {
    const line = '      - run: echo a line of a very long pipeline\n';
    const text = `jobs:\n  a:\n    steps:\n${line.repeat(Math.ceil((10 * 1024 * 1024) / line.length))}`;
    const { err, ms } = rejects(text);
    expect(err.code).toBe('PIPELINE_INVALID');
    expect(firstMessage(err)).toMatch(/^pipeline is \d+ bytes; the limit is 4194304 bytes/);
    expect(ms).toBeLessThan(5_000);
  });

  it('10,000-deep nesting, in flow and block style', () => {
    const docs = [
      `jobs: ${'['.repeat(10_000)}${']'.repeat(10_000)}`,
      `jobs: ${'{a: '.repeat(10_000)}1${'}'.repeat(10_000)}`,
      `jobs:\n  a:\n    steps:\n      ${'- '.repeat(10_000)}x\n`,
      `${'? '.repeat(10_000)}x\n`,
    ];
    for (const text of docs) {
      const { err, ms } = rejects(text);
      expect(err.code).toBe('PIPELINE_INVALID');
      expect(firstMessage(err)).toBe('pipeline nests deeper than 64 levels of mappings and lists; flatten it');
      expect(ms).toBeLessThan(10_000);
    }
  });

  it('block nesting as deep as the size limit allows', () => {
    // Indentation makes block nesting quadratic in size; ~2,800 levels fit in 4 MiB.
    const text = Array.from({ length: 2800 }, (_, i) => `${' '.repeat(i)}k:`).join('\n');
    const { err, ms } = rejects(text);
    expect(err.code).toBe('PIPELINE_INVALID');
    expect(firstMessage(err)).toMatch(/nests deeper than 64 levels/);
    expect(ms).toBeLessThan(10_000);
  });

  it('100,000 unknown keys: a bounded list of errors', () => {
    const text = Array.from({ length: 100_000 }, (_, i) => `k${i}: 1`).join('\n');
    const started = performance.now();
    const { diagnostics } = validatePipeline(text);
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(diagnostics.length).toBeLessThanOrEqual(502);
    expect(diagnostics.at(-1)?.message).toMatch(/^\.\.\. and \d+ more errors not shown$/);
  });

  it('a document with many repeated keys stays linear', () => {
    const text = `jobs:\n  a: {steps: [{run: x}]}\n${'jobs: 1\n'.repeat(50_000)}`;
    const started = performance.now();
    const { diagnostics } = validatePipeline(text);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(diagnostics[0]?.message).toBe('duplicate key `jobs`: each key may appear once in a mapping');
    // Capped like the other checks, and the rest counted.
    expect(diagnostics).toHaveLength(501);
    expect(diagnostics.at(-1)?.message).toBe('... and 49500 more errors not shown');
  });

  it('YAML syntax errors are capped the same way, with the rest counted', () => {
    // 800 lines, one syntax error each (a plain scalar after a quoted one).
    const text = 'k: "a" b\n'.repeat(800);
    const { diagnostics } = validatePipeline(text);
    expect(diagnostics).toHaveLength(501);
    expect(diagnostics[0]?.message).toMatch(/^YAML syntax: /);
    expect(diagnostics.at(-1)?.message).toBe('... and 300 more errors not shown');
  });
});

const KEYS = [
  'name',
  'on',
  'env',
  'jobs',
  'needs',
  'steps',
  'run',
  'uses',
  'if',
  'with',
  'strategy',
  'matrix',
  'include',
  'exclude',
  'timeout',
  'timeout-minutes',
  'retry',
  'max-attempts',
  'backoff',
  'kill-grace',
  'container',
  'image',
  'runs-on',
  'concurrency',
  'group',
  'defaults',
  'outputs',
  'id',
  'parallel',
  'continue-on-error',
  'permissions',
  '__proto__',
  'constructor',
  'a',
  'b',
];

const leaf = fc.oneof(
  fc.string(),
  fc.constantFrom('${{ matrix.x }}', '${{', '}}', '${{ fromJSON(', '5m', '1h30m', '-1', 'a', 'b', '&x', '*x'),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
);
const pipelineish = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('list'), tie('map')),
  list: fc.array(tie('value'), { maxLength: 4 }),
  map: fc.dictionary(fc.oneof(fc.constantFrom(...KEYS), fc.string()), tie('value'), { maxKeys: 5 }),
})).map;

/** parsePipeline may succeed or throw a PIPELINE_INVALID/PIPELINE_CYCLE PipewrightError; nothing else. */
function parsesOrRejectsCleanly(text: string): void {
  try {
    parsePipeline(text);
  } catch (err) {
    if (!(err instanceof PipewrightError)) throw err;
    if (err.code === 'PIPELINE_CYCLE') return;
    expect(err.code).toBe('PIPELINE_INVALID');
  }
}

describe('property: random YAML-ish documents', () => {
  it('random strings never make the parser throw anything but PIPELINE_INVALID', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => parsesOrRejectsCleanly(text)),
      { numRuns: 500 },
    );
  });

  it('random YAML-ish text (indentation, indicators, anchors) too', () => {
    const token = fc.constantFrom(
      'jobs:',
      'steps:',
      '- ',
      'run: ',
      'needs: ',
      '  ',
      '\n',
      '[',
      ']',
      '{',
      '}',
      ', ',
      ': ',
      '&a ',
      '*a',
      '? ',
      '|',
      '>',
      '"',
      "'",
      '#',
      '---',
      '${{ ',
      ' }}',
      'x',
      '!!str ',
      '!!binary ',
      '<<: *a',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), (parts) => parsesOrRejectsCleanly(parts.join(''))),
      { numRuns: 500 },
    );
  });

  it('random nested objects with pipeline keys, serialized with yaml, too', () => {
    fc.assert(
      fc.property(
        pipelineish,
        fc.dictionary(fc.constantFrom('a', 'b', 'c'), pipelineish, { maxKeys: 3 }),
        (doc, jobs) => {
          parsesOrRejectsCleanly(stringify(doc));
          parsesOrRejectsCleanly(stringify({ ...doc, jobs }));
        },
      ),
      { numRuns: 500 },
    );
  });
});
