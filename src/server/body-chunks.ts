// How many pieces a request body may arrive in (docs/security.md, "Session 25 audit"). Node
// spends about a microsecond of JavaScript on every HTTP/1.1 chunk (one on_body call, one Buffer
// copy, one push) and about three on every HTTP/2 DATA frame, before any of the gateway's code, and
// whoever reads the body pays again: a body of one-byte chunks (6 bytes of wire each) cost ~1.4 s
// of CPU per MiB, and `max-body-size-bytes` (10 MiB) allowed ~15 s of CPU for one request. No
// consumer can make a chunk cheaper, so the count is bounded where Node hands the chunks over,
// once for every reader of the body (request buffering, agents, the streamed path).
import type { IncomingMessage } from 'node:http';

/** Chunks any body may come in: a burst of small writes, a short stream of small messages. */
export const FREE_BODY_CHUNKS = 4096;
/** Beyond them, one chunk per this many bytes: a sender whose chunks average this much is never cut. */
export const BYTES_PER_BODY_CHUNK = 64;
/** And this many a second since the head arrived: a slow stream of small messages goes on for ever. */
export const BODY_CHUNKS_PER_SECOND = 100;

type Push = IncomingMessage['push'];

/**
 * Counts the chunks of `req`'s body as Node hands them to it (HTTP/1.1 `push` from the parser,
 * HTTP/2's compat layer `push` per DATA frame). Past the budget (FREE_BODY_CHUNKS, plus one per
 * BYTES_PER_BODY_CHUNK bytes, plus BODY_CHUNKS_PER_SECOND since now) `onOver` is called once and
 * no further chunk is passed on: the caller closes the connection or resets the stream, which the
 * body's readers see as a client that left. The clock is read only once the byte share is spent.
 */
export function guardBodyChunks(req: IncomingMessage, onOver: () => void): void {
  const push: Push = req.push;
  const start = performance.now();
  let chunks = 0;
  let bytes = 0;
  let over = false;
  req.push = function guardedPush(this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null) {
      if (over) return false;
      chunks++;
      bytes += (chunk as Buffer).length;
      if (chunks > FREE_BODY_CHUNKS + bytes / BYTES_PER_BODY_CHUNK && chunks > FREE_BODY_CHUNKS + bytes / BYTES_PER_BODY_CHUNK + ((performance.now() - start) * BODY_CHUNKS_PER_SECOND) / 1000) {
        over = true;
        onOver();
        return false;
      }
    }
    return push.call(this, chunk, encoding);
  };
}

/** The request's body can come in chunks: HTTP/1.1 chunked coding, an HTTP/2 stream left open by its HEADERS. */
export function bodyInChunks(req: IncomingMessage): boolean {
  if (req.httpVersionMajor === 1) return req.headers['transfer-encoding'] !== undefined;
  return (req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false;
}
