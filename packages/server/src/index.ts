// The public API of @pipewright/server (the HTTP server lands with the server issue).
export { encodeSseComment, encodeSseEvent, type SseEvent } from './sse.js';
