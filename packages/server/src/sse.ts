/** One Server-Sent Event. */
export interface SseEvent {
  /** `id:` line; clients send it back as `Last-Event-ID` to resume. */
  id?: string | number;
  /** `event:` line. @default 'message' */
  event?: string;
  /** The payload; multi-line data becomes several `data:` lines. */
  data: string;
  /** `retry:` reconnection delay in ms. */
  retry?: number;
}

/** Encodes one event in the `text/event-stream` format (ends with a blank line). */
export function encodeSseEvent(e: SseEvent): string {
  let out = '';
  if (e.id !== undefined) out += `id: ${String(e.id).replace(/[\r\n]/g, '')}\n`;
  if (e.event !== undefined) out += `event: ${e.event.replace(/[\r\n]/g, '')}\n`;
  if (e.retry !== undefined) out += `retry: ${Math.max(0, Math.floor(e.retry))}\n`;
  for (const line of e.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/** A heartbeat comment that keeps idle connections (and proxies) open. */
export function encodeSseComment(text = 'heartbeat'): string {
  return `: ${text.replace(/[\r\n]/g, ' ')}\n\n`;
}
