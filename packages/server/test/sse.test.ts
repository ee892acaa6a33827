import { encodeSseComment, encodeSseEvent } from '@pipewright/server';
import { describe, expect, it } from 'vitest';

describe('SSE encoding', () => {
  it('writes id, event and one data line per payload line', () => {
    expect(encodeSseEvent({ id: 7, event: 'log', data: 'a\nb\r\nc' })).toBe(
      'id: 7\nevent: log\ndata: a\ndata: b\ndata: c\n\n',
    );
  });
  it('cannot be broken by newlines in id or event', () => {
    expect(encodeSseEvent({ id: '1\n2', event: 'x\ny', data: '' })).toBe('id: 12\nevent: xy\ndata: \n\n');
  });
  it('writes heartbeat comments', () => {
    expect(encodeSseComment()).toBe(': heartbeat\n\n');
  });
});
