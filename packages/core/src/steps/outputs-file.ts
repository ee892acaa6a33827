import { PipewrightError } from '../errors.js';

/**
 * Parses a GitHub file command (`$GITHUB_OUTPUT`, `$PIPEWRIGHT_OUTPUT`,
 * `$GITHUB_ENV`): `key=value` lines and `key<<DELIM` ... `DELIM` heredocs.
 * CRLF line ends are accepted. Later keys overwrite earlier ones.
 * @param fileLabel names the file in error messages, e.g. `$GITHUB_OUTPUT`.
 */
export function parseFileCommands(text: string, fileLabel = 'file command'): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  // A trailing newline yields one empty last element, which is not a line.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    const lineNo = i + 1;
    i++;
    if (line.trim() === '') continue;
    const eq = line.indexOf('=');
    const heredoc = line.indexOf('<<');
    if (eq >= 0 && (heredoc < 0 || eq < heredoc)) {
      const key = line.slice(0, eq);
      checkKey(key, fileLabel, lineNo);
      result[key] = line.slice(eq + 1);
      continue;
    }
    if (heredoc >= 0) {
      const key = line.slice(0, heredoc);
      const delimiter = line.slice(heredoc + 2);
      checkKey(key, fileLabel, lineNo);
      if (delimiter === '') {
        throw new PipewrightError(
          'INVALID_ARGUMENT',
          `${fileLabel} line ${lineNo}: \`${key}<<\` needs a delimiter, e.g. \`${key}<<EOF\``,
          { details: { line: lineNo } },
        );
      }
      const value: string[] = [];
      let closed = false;
      while (i < lines.length) {
        const l = lines[i] ?? '';
        i++;
        if (l === delimiter) {
          closed = true;
          break;
        }
        value.push(l);
      }
      if (!closed) {
        throw new PipewrightError(
          'INVALID_ARGUMENT',
          `${fileLabel} line ${lineNo}: the delimiter \`${delimiter}\` of \`${key}\` is never closed; end the value with a line containing only \`${delimiter}\``,
          { details: { line: lineNo, key } },
        );
      }
      result[key] = value.join('\n');
      continue;
    }
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `${fileLabel} line ${lineNo}: expected \`name=value\` or \`name<<DELIMITER\`, got a line without either`,
      { details: { line: lineNo } },
    );
  }
  return result;
}

function checkKey(key: string, fileLabel: string, lineNo: number): void {
  // Assigned to a plain object it would be lost (it sets the prototype), never stored: say so.
  if (key === '__proto__') {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `${fileLabel} line ${lineNo}: \`__proto__\` cannot be a name; rename it`,
      {
        details: { line: lineNo },
      },
    );
  }
  if (key.trim() === '') {
    throw new PipewrightError(
      'INVALID_ARGUMENT',
      `${fileLabel} line ${lineNo}: the name before \`=\` or \`<<\` is empty`,
      {
        details: { line: lineNo },
      },
    );
  }
}
