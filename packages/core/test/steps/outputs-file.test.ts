import { parseFileCommands } from '@pipewright/core';
import { describe, expect, it } from 'vitest';

describe('parseFileCommands', () => {
  it('parses key=value lines, splitting on the first =', () => {
    expect(parseFileCommands('a=1\nb=x=y\nempty=\n')).toEqual({ a: '1', b: 'x=y', empty: '' });
  });

  it('parses heredoc values across lines and lets later keys win', () => {
    const text = 'multi<<EOF\nline 1\n\nline 3\nEOF\nsingle=1\nsingle=2\n';
    expect(parseFileCommands(text)).toEqual({ multi: 'line 1\n\nline 3', single: '2' });
  });

  it('accepts CRLF line ends', () => {
    expect(parseFileCommands('a=1\r\nm<<END\r\nx\r\ny\r\nEND\r\n')).toEqual({ a: '1', m: 'x\ny' });
  });

  it('uses whichever of = and << comes first', () => {
    expect(parseFileCommands('a=b<<c\n')).toEqual({ a: 'b<<c' });
    expect(parseFileCommands('k<<D=\nv\nD=\n')).toEqual({ k: 'v' });
  });

  it('refuses `__proto__` as a name, which an object would silently drop', () => {
    expect(() => parseFileCommands('ok=1\n__proto__=x\n', '$GITHUB_ENV')).toThrow(
      /\$GITHUB_ENV line 2: `__proto__` cannot be a name; rename it/,
    );
    expect(() => parseFileCommands('__proto__<<EOF\nx\nEOF\n', '$GITHUB_OUTPUT')).toThrow(/line 1: `__proto__`/);
  });

  it('skips blank lines and handles an empty file', () => {
    expect(parseFileCommands('')).toEqual({});
    expect(parseFileCommands('\n\na=1\n\n')).toEqual({ a: '1' });
  });

  it('reports a heredoc whose delimiter never comes, with file and line', () => {
    expect(() => parseFileCommands('a=1\nbody<<EOF\nnever closed\n', '$GITHUB_OUTPUT')).toThrow(
      /\$GITHUB_OUTPUT line 2: the delimiter `EOF` of `body` is never closed/,
    );
  });

  it('rejects a line without = or <<, an empty name and an empty delimiter', () => {
    expect(() => parseFileCommands('just text')).toThrow(/line 1: expected `name=value`/);
    expect(() => parseFileCommands('=v')).toThrow(/name before/);
    expect(() => parseFileCommands('k<<\n')).toThrow(/needs a delimiter/);
  });
});
