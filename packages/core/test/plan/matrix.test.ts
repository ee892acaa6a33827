import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PipewrightError } from '../../src/errors.js';
import { expandMatrix, MAX_MATRIX_COMBINATIONS, matrixInstanceLabel } from '../../src/plan/matrix.js';
import type { MatrixSpec } from '../../src/spec/types.js';

const m = (axes: MatrixSpec['axes'], extra: Partial<MatrixSpec> = {}): MatrixSpec => ({
  axes,
  include: [],
  exclude: [],
  ...extra,
});

function errorOf(fn: () => unknown): PipewrightError {
  try {
    fn();
  } catch (e) {
    if (e instanceof PipewrightError) return e;
    throw e;
  }
  throw new Error('expected a PipewrightError');
}

describe('expandMatrix: GitHub docs examples', () => {
  it('orders the cross product with the first axis outermost', () => {
    const out = expandMatrix(m({ version: [10, 12, 14], os: ['ubuntu-latest', 'windows-latest'] }));
    expect(out).toEqual([
      { version: 10, os: 'ubuntu-latest' },
      { version: 10, os: 'windows-latest' },
      { version: 12, os: 'ubuntu-latest' },
      { version: 12, os: 'windows-latest' },
      { version: 14, os: 'ubuntu-latest' },
      { version: 14, os: 'windows-latest' },
    ]);
    expect(Object.keys(out[0] ?? {})).toEqual(['version', 'os']);
  });

  it('fruit/animal include example yields the six documented combinations', () => {
    const out = expandMatrix(
      m(
        { fruit: ['apple', 'pear'], animal: ['cat', 'dog'] },
        {
          include: [
            { color: 'green' },
            { color: 'pink', animal: 'cat' },
            { fruit: 'apple', shape: 'circle' },
            { fruit: 'banana' },
            { fruit: 'banana', animal: 'cat' },
          ],
        },
      ),
    );
    expect(out).toEqual([
      { fruit: 'apple', animal: 'cat', color: 'pink', shape: 'circle' },
      { fruit: 'apple', animal: 'dog', color: 'green', shape: 'circle' },
      { fruit: 'pear', animal: 'cat', color: 'pink' },
      { fruit: 'pear', animal: 'dog', color: 'green' },
      { fruit: 'banana' },
      { fruit: 'banana', animal: 'cat' },
    ]);
  });

  it('expanding configurations: npm: 6 is added only to {os: windows-latest, node: 16}', () => {
    const out = expandMatrix(
      m(
        { os: ['windows-latest', 'ubuntu-latest'], node: [14, 16] },
        { include: [{ os: 'windows-latest', node: 16, npm: 6 }] },
      ),
    );
    expect(out).toEqual([
      { os: 'windows-latest', node: 14 },
      { os: 'windows-latest', node: 16, npm: 6 },
      { os: 'ubuntu-latest', node: 14 },
      { os: 'ubuntu-latest', node: 16 },
    ]);
  });

  it('adding configurations: an include matching no combination runs as a 10th job', () => {
    const out = expandMatrix(
      m(
        { os: ['macos-latest', 'windows-latest', 'ubuntu-latest'], version: [12, 14, 16] },
        { include: [{ os: 'windows-latest', version: 17 }] },
      ),
    );
    expect(out).toHaveLength(10);
    expect(out.at(-1)).toEqual({ os: 'windows-latest', version: 17 });
    expect(out.slice(0, 9).every((c) => Object.keys(c).length === 2)).toBe(true);
  });

  it('include-only matrix yields exactly the include entries', () => {
    const include = [
      { site: 'production', datacenter: 'site-a' },
      { site: 'staging', datacenter: 'site-b' },
    ];
    expect(expandMatrix(m({}, { include }))).toEqual(include);
  });

  it('exclude example: 12 combinations minus 3 partial matches leaves 9', () => {
    const out = expandMatrix(
      m(
        { os: ['macos-latest', 'windows-latest'], version: [12, 14, 16], environment: ['staging', 'production'] },
        {
          exclude: [
            { os: 'macos-latest', version: 12, environment: 'production' },
            { os: 'windows-latest', version: 16 },
          ],
        },
      ),
    );
    expect(out).toHaveLength(9);
    expect(out).not.toContainEqual({ os: 'macos-latest', version: 12, environment: 'production' });
    expect(out).toContainEqual({ os: 'macos-latest', version: 12, environment: 'staging' });
    expect(out.filter((c) => c.os === 'windows-latest' && c.version === 16)).toEqual([]);
  });

  it('fail-fast example: include with a new axis value becomes a 4th job', () => {
    const out = expandMatrix(
      m({ version: [6, 7, 8], experimental: [false] }, { include: [{ version: 9, experimental: true }] }),
    );
    expect(out).toEqual([
      { version: 6, experimental: false },
      { version: 7, experimental: false },
      { version: 8, experimental: false },
      { version: 9, experimental: true },
    ]);
  });

  it('include is applied after exclude, so it can add an excluded combination back', () => {
    const out = expandMatrix(
      m({ os: ['a', 'b'], node: [1, 2] }, { exclude: [{ os: 'b' }], include: [{ os: 'b', node: 2, tag: 'x' }] }),
    );
    expect(out).toEqual([
      { os: 'a', node: 1 },
      { os: 'a', node: 2 },
      { os: 'b', node: 2, tag: 'x' },
    ]);
  });
});

describe('expandMatrix: include details', () => {
  it('never overwrites an original value but lets later includes overwrite added ones', () => {
    const out = expandMatrix(m({ os: ['linux'] }, { include: [{ label: 'first' }, { label: 'second', os: 'linux' }] }));
    expect(out).toEqual([{ os: 'linux', label: 'second' }]);
  });

  it('does not apply an include to combinations added by an earlier include', () => {
    const out = expandMatrix(m({ os: ['linux'] }, { include: [{ os: 'mac' }, { os: 'mac', arch: 'arm64' }] }));
    expect(out).toEqual([{ os: 'linux' }, { os: 'mac' }, { os: 'mac', arch: 'arm64' }]);
  });

  it('puts axis keys first in an include that becomes its own combination', () => {
    const out = expandMatrix(m({ os: ['linux'], node: [20] }, { include: [{ extra: 1, node: 22, os: 'linux' }] }));
    expect(Object.keys(out[1] ?? {})).toEqual(['node', 'os', 'extra']);
  });

  it('compares like the expression `==`: strings ignore case, numbers and numeric strings are equal', () => {
    const out = expandMatrix(
      m({ os: ['Ubuntu-Latest'], node: [16] }, { include: [{ os: 'ubuntu-latest', node: '16', npm: 6 }] }),
    );
    expect(out).toEqual([{ os: 'Ubuntu-Latest', node: 16, npm: 6 }]);
  });

  it('when every combination is excluded, includes become combinations of their own', () => {
    const out = expandMatrix(m({ os: ['a'] }, { exclude: [{ os: 'a' }], include: [{ color: 'green' }] }));
    expect(out).toEqual([{ color: 'green' }]);
  });
});

describe('expandMatrix: object-valued axes', () => {
  const versions = [
    { ruby: '2.7.3', ghpages: 226 },
    { ruby: '2.7.4', ghpages: 228 },
  ];

  it('treats each object as one value of its axis', () => {
    const out = expandMatrix(m({ versions, node: [16, 18] }));
    expect(out).toEqual([
      { versions: versions[0], node: 16 },
      { versions: versions[0], node: 18 },
      { versions: versions[1], node: 16 },
      { versions: versions[1], node: 18 },
    ]);
  });

  it('excludes by deep comparison, and a partial nested object matches', () => {
    expect(
      expandMatrix(m({ versions, node: [16] }, { exclude: [{ versions: { ruby: '2.7.3', ghpages: 226 } }] })),
    ).toEqual([{ versions: versions[1], node: 16 }]);
    expect(expandMatrix(m({ versions, node: [16] }, { exclude: [{ versions: { ghpages: 228 } }] }))).toEqual([
      { versions: versions[0], node: 16 },
    ]);
    expect(expandMatrix(m({ versions, node: [16] }, { exclude: [{ versions: { ghpages: 999 } }] }))).toHaveLength(2);
  });

  it('matches an include against an object axis without replacing the original object', () => {
    const out = expandMatrix(m({ versions }, { include: [{ versions: { ruby: '2.7.4' }, deploy: true }] }));
    expect(out).toEqual([{ versions: versions[0] }, { versions: versions[1], deploy: true }]);
  });

  it('returns copies that share nothing with the input', () => {
    const out = expandMatrix(m({ versions }));
    (out[0]?.versions as { ruby: string }).ruby = 'changed';
    expect(versions[0]?.ruby).toBe('2.7.3');
  });
});

describe('expandMatrix: limits and bad input', () => {
  it('returns [] for an empty matrix', () => {
    expect(expandMatrix(m({}))).toEqual([]);
  });

  it('allows exactly 256 combinations and rejects 257', () => {
    const axis = (n: number) => Array.from({ length: n }, (_, i) => i);
    expect(expandMatrix(m({ a: axis(16), b: axis(16) }))).toHaveLength(MAX_MATRIX_COMBINATIONS);
    expect(errorOf(() => expandMatrix(m({ a: axis(16), b: axis(16) }, { include: [{ a: 99 }] }))).code).toBe(
      'PIPELINE_INVALID',
    );
    expect(errorOf(() => expandMatrix(m({ a: axis(257) }))).message).toMatch(/more than 256/);
  });

  it('accepts a larger cross product when excludes bring it under the limit', () => {
    const out = expandMatrix(m({ a: [1, 2], b: Array.from({ length: 200 }, (_, i) => i) }, { exclude: [{ a: 2 }] }));
    expect(out).toHaveLength(200);
  });

  it('rejects a huge cross product before enumerating it', () => {
    const axis = Array.from({ length: 100 }, (_, i) => i);
    const err = errorOf(() => expandMatrix(m({ a: axis, b: axis, c: axis, d: axis, e: axis })));
    expect(err.code).toBe('PIPELINE_INVALID');
    expect(err.message).toMatch(/10000000000 combinations/);
  });

  it('rejects unexpanded expressions with INVALID_ARGUMENT', () => {
    const expr = '${{ fromJSON(needs.setup.outputs.list) }}';
    expect(errorOf(() => expandMatrix(m({ os: expr }))).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => expandMatrix(m({ os: ['a'] }, { include: expr }))).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => expandMatrix(m({ os: ['a'] }, { exclude: expr }))).code).toBe('INVALID_ARGUMENT');
  });

  it.each([
    ['an empty axis', m({ os: [] }), /axis 'os' does not contain any values/],
    ['an exclude key that is not an axis', m({ os: ['a'] }, { exclude: [{ arch: 'x' }] }), /exclude\[0\] key 'arch'/],
    ['an empty exclude entry', m({ os: ['a'] }, { exclude: [{}] }), /exclude\[0\] is empty/],
    ['an empty include entry', m({ os: ['a'] }, { include: [{}] }), /include\[0\] is empty/],
    ['a non-mapping include entry', m({ os: ['a'] }, { include: ['x' as never] }), /include\[0\] must be a mapping/],
  ])('rejects %s with PIPELINE_INVALID', (_name, spec, message) => {
    const err = errorOf(() => expandMatrix(spec));
    expect(err.code).toBe('PIPELINE_INVALID');
    expect(err.message).toMatch(message);
  });

  it('property: without include/exclude, count is the product of axis lengths and all combinations differ', () => {
    const axes = fc.dictionary(
      fc.string({ minLength: 1, maxLength: 4 }).filter((k) => !/^\d+$/.test(k)),
      fc.uniqueArray(fc.oneof(fc.integer({ min: 0, max: 50 }), fc.string({ maxLength: 3 })), {
        minLength: 1,
        maxLength: 4,
        selector: (v) => `${typeof v}:${v}`,
      }),
      { minKeys: 1, maxKeys: 4 },
    );
    fc.assert(
      fc.property(axes, (ax) => {
        const out = expandMatrix(m(ax));
        const expected = Object.values(ax).reduce((n, values) => n * values.length, 1);
        expect(out).toHaveLength(expected);
        expect(new Set(out.map((c) => JSON.stringify(c))).size).toBe(expected);
        for (const c of out) expect(Object.keys(c)).toEqual(Object.keys(ax));
      }),
    );
  });
});

describe('matrixInstanceLabel', () => {
  it('joins values in key order', () => {
    expect(matrixInstanceLabel({ os: 'ubuntu-latest', node: 20 })).toBe('ubuntu-latest, 20');
  });

  it('shows objects and arrays as JSON and booleans as words', () => {
    expect(matrixInstanceLabel({ v: { ruby: '2.7.3', ghpages: 226 }, list: [1, 2], exp: false })).toBe(
      '{"ruby":"2.7.3","ghpages":226}, [1,2], false',
    );
  });

  it('skips null and empty strings, so an empty combination has an empty label', () => {
    expect(matrixInstanceLabel({ a: null, b: '', c: 'x' })).toBe('x');
    expect(matrixInstanceLabel({})).toBe('');
  });

  it('formats numbers as GitHub does', () => {
    expect(matrixInstanceLabel({ py: 3.1, n: -0 })).toBe('3.1, 0');
  });
});
