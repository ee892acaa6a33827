// biome-ignore-all lint/suspicious/noTemplateCurlyInString: GitHub expressions are written as ${{ }} inside plain strings
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PipewrightError } from '../../src/errors.js';
import {
  checkExpressionSyntax,
  evaluateCondition,
  evaluateExpression,
  interpolate,
  referencedSecrets,
} from '../../src/expr/index.js';

describe('checkExpressionSyntax', () => {
  it('finds nothing wrong in valid values', () => {
    expect(checkExpressionSyntax('echo ${{ github.ref }} and ${{ matrix.os }}')).toEqual([]);
    expect(checkExpressionSyntax('plain text with no expression')).toEqual([]);
    expect(checkExpressionSyntax("github.ref == 'x' && always()", { allowBare: true })).toEqual([]);
    expect(checkExpressionSyntax('', { allowBare: true })).toEqual([]);
  });

  it('reports each bad expression with its offset into the text', () => {
    const text = 'a ${{ github.ref == }} b ${{ nope.x }} c ${{ foo() }}';
    const issues = checkExpressionSyntax(text);
    expect(issues).toHaveLength(3);
    expect(issues[0]!.message).toMatch(/Unexpected end of expression/);
    expect(issues[0]!.offset).toBe(19);
    expect(issues[1]!.message).toMatch(/Unrecognized named-value 'nope'/);
    expect(text.slice(issues[1]!.offset)).toMatch(/^nope\.x/);
    expect(issues[2]!.message).toMatch(/Unrecognized function 'foo'/);
    expect(text.slice(issues[2]!.offset)).toMatch(/^foo\(\)/);
  });

  it('reports an unterminated ${{ at its start', () => {
    const issues = checkExpressionSyntax('ok ${{ 1 }} then ${{ github.ref');
    expect(issues).toEqual([{ message: expect.stringMatching(/not closed/), offset: 17 }]);
  });

  it('checks a bare string as an expression only with allowBare', () => {
    expect(checkExpressionSyntax('github.ref ==')).toEqual([]);
    const issues = checkExpressionSyntax('github.ref == = 1', { allowBare: true });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.offset).toBe(14);
  });

  it('a bare if with ${{ }} inside is checked as a template', () => {
    expect(checkExpressionSyntax('${{ success( }}', { allowBare: true })).toHaveLength(1);
  });

  it('offsets of multi-line values count the line breaks', () => {
    const text = 'line one\n${{ github.ref ==\n  bogus }}';
    const [issue] = checkExpressionSyntax(text);
    expect(text.slice(issue!.offset)).toMatch(/^bogus/);
  });
});

describe('referencedSecrets', () => {
  it('finds secrets.NAME and secrets[...] references', () => {
    const text = [
      'run: echo ${{ secrets.API_TOKEN }}',
      "env: ${{ secrets['deploy-key'] }} ${{ secrets [ 'It''s' ] }}",
      "if: secrets.OTHER != '' && secrets.API_TOKEN",
    ].join('\n');
    expect(referencedSecrets(text)).toEqual(['API_TOKEN', 'deploy-key', "It's", 'OTHER']);
  });

  it('counts github.token as GITHUB_TOKEN (the same value on GitHub)', () => {
    expect(referencedSecrets('GH_TOKEN: ${{ github.token }} ${{ secrets.X }}')).toEqual(['GITHUB_TOKEN', 'X']);
    expect(referencedSecrets('${{ github.tokens }} ${{ inputs.github.token }}')).toEqual([]);
  });

  it('ignores names that only end in "secrets"', () => {
    expect(referencedSecrets('${{ mysecrets.X }} ${{ inputs.secrets.Y }}')).toEqual([]);
  });

  it('returns an empty list when there are none', () => {
    expect(referencedSecrets('echo hello')).toEqual([]);
  });
});

describe('properties', () => {
  const fragments = fc.constantFrom(
    '${{',
    '}}',
    "'",
    '(',
    ')',
    '[',
    ']',
    '.',
    '*',
    '==',
    '!=',
    '&&',
    '||',
    '!',
    '<=',
    ' ',
    '\n',
    'github',
    'needs',
    'secrets',
    'matrix.os',
    'success()',
    'always()',
    'contains',
    'format',
    'fromJSON',
    'toJSON',
    'hashFiles',
    ',',
    '1',
    '-0.5',
    'NaN',
    'null',
    'true',
    '{0}',
    '{{',
  );
  const exprLike = fc.oneof(
    fc.string(),
    fc.array(fragments, { maxLength: 20 }).map((a) => a.join('')),
  );
  const ctx = {
    github: { ref: 'refs/heads/main', event: { a: [1, { b: 'x' }] } },
    needs: { a: { result: 'success' } },
    matrix: { os: 'linux' },
    secrets: { S: 'value' },
  };

  it('checkExpressionSyntax never throws and offsets stay within the text', () => {
    fc.assert(
      fc.property(exprLike, fc.boolean(), (s, allowBare) => {
        for (const issue of checkExpressionSyntax(s, { allowBare })) {
          expect(typeof issue.message).toBe('string');
          expect(issue.offset).toBeGreaterThanOrEqual(0);
          expect(issue.offset).toBeLessThanOrEqual(s.length);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('evaluation only ever throws PipewrightError', () => {
    const status = { success: true, failure: false, cancelled: false };
    fc.assert(
      fc.property(exprLike, (s) => {
        for (const run of [
          () => evaluateExpression(s, ctx),
          () => evaluateCondition(s, ctx, status),
          () => interpolate(s, ctx),
        ]) {
          try {
            run();
          } catch (e) {
            expect(e).toBeInstanceOf(PipewrightError);
            expect((e as PipewrightError).code).toBe('EXPRESSION_INVALID');
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('a value accepted by checkExpressionSyntax does not fail with a syntax error at run time', () => {
    fc.assert(
      fc.property(exprLike, (s) => {
        fc.pre(checkExpressionSyntax(s).length === 0);
        try {
          interpolate(s, ctx);
        } catch (e) {
          expect((e as Error).message).not.toMatch(/^Invalid expression/);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
