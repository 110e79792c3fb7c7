// How many pieces a request body may arrive in (docs/security.md, "Session 25 audit"). Node
// spends about a microsecond of JavaScript on every HTTP/1.1 chunk (one on_body call, one Buffer
// copy, one push) and about three on every HTTP/2 DATA frame, before any of the gateway's code, and
// whoever reads the body pays again: a body of one-byte chunks (6 bytes of wire each) cost ~1.4 s
// of CPU per MiB, and `max-body-size-bytes` (10 MiB) allowed ~15 s of CPU for one request. No
// consumer can make a chunk cheaper, so the count is bounded where Node hands the chunks over,
// once for every reader of the body (request buffering, agents, the streamed path).
import type { IncomingMessage } from 'node:http';
import { TokenBucket } from './token-bucket.ts';

/** Chunks any body may come in: a burst of small writes, a short stream of small messages. */
export const FREE_BODY_CHUNKS = 4096;
/** Beyond them, one chunk per this many bytes: a sender whose chunks average this much is never cut. */
export const BYTES_PER_BODY_CHUNK = 64;
/** And this many a second since the head arrived: a slow stream of small messages goes on for ever. */
export const BODY_CHUNKS_PER_SECOND = 100;

/** Pieces of every body that are its own: beyond them, small pieces draw on the connection's budget. */
export const OWN_BODY_CHUNKS = 64;
/** A connection's (HTTP/2 session's) budget of small pieces beyond its bodies' own: what one body could always use. */
export const CONNECTION_BODY_CHUNKS = 4096;
/** ... refilled this many a second: ten streams of tiny messages at a body's own rate. */
export const CONNECTION_BODY_CHUNKS_PER_SECOND = 1000;

/**
 * The small pieces one connection's bodies may still come in (docs/security.md, "Session 26
 * audit"). The per-body budget alone let an HTTP/2 session's 100 concurrent streams each use
 * their 4,096 free pieces, round after round on one session (~1 s of CPU a round, no bound per
 * session). A token bucket: a piece under BYTES_PER_BODY_CHUNK bytes takes what its size does not
 * explain (a one-byte piece ~1), a larger piece gives back what its size explains beyond one
 * (a sender averaging 64 bytes never runs dry); it holds at most CONNECTION_BODY_CHUNKS and
 * refills at CONNECTION_BODY_CHUNKS_PER_SECOND.
 */
export class ConnectionChunkBudget {
  private readonly bucket = new TokenBucket(CONNECTION_BODY_CHUNKS, CONNECTION_BODY_CHUNKS_PER_SECOND);

  /**
   * `client`: the client address's bucket (client-budgets.ts, session 27), charged the same: a
   * new connection's full bucket no longer means a full budget. None for trusted proxies.
   */
  constructor(private readonly client?: TokenBucket) {}

  /** Charges one piece of `bytes`; the budget it spent (the connection's first), or undefined while both last. */
  take(bytes: number): 'connection' | 'client' | undefined {
    const cost = 1 - bytes / BYTES_PER_BODY_CHUNK;
    if (!this.bucket.take(cost)) return 'connection';
    if (this.client && !this.client.take(cost)) return 'client';
    return undefined;
  }
}

const budgets = new WeakMap<object, ConnectionChunkBudget>();

/**
 * The budget of the connection `req` came on: its HTTP/2 session, or its HTTP/1.1 socket (kept
 * across its requests). `client` gives the client's bucket, asked once, when the budget is made.
 */
export function connectionChunkBudget(req: IncomingMessage, client?: () => TokenBucket | undefined): ConnectionChunkBudget {
  const owner: object = (req as unknown as { stream?: { session?: object } }).stream?.session ?? req.socket;
  let budget = budgets.get(owner);
  if (!budget) budgets.set(owner, (budget = new ConnectionChunkBudget(client?.())));
  return budget;
}

export type ChunkLimit = 'body' | 'connection' | 'client';

type Push = IncomingMessage['push'];

/**
 * Counts the chunks of `req`'s body as Node hands them to it (HTTP/1.1 `push` from the parser,
 * HTTP/2's compat layer `push` per DATA frame). Past the body's budget (FREE_BODY_CHUNKS, plus one
 * per BYTES_PER_BODY_CHUNK bytes, plus BODY_CHUNKS_PER_SECOND since now), or once its pieces
 * beyond OWN_BODY_CHUNKS have spent the connection's `budget` (or its client's), `onOver` is called once and no
 * further chunk is passed on: the caller closes the connection or resets the stream, which the
 * body's readers see as a client that left. The clock is read only once the byte share is spent.
 */
export function guardBodyChunks(req: IncomingMessage, budget: ConnectionChunkBudget, onOver: (limit: ChunkLimit) => void): void {
  const push: Push = req.push;
  const start = performance.now();
  let chunks = 0;
  let bytes = 0;
  let over = false;
  req.push = function guardedPush(this: IncomingMessage, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null) {
      if (over) return false;
      const size = (chunk as Buffer).length;
      chunks++;
      bytes += size;
      if (chunks > FREE_BODY_CHUNKS + bytes / BYTES_PER_BODY_CHUNK && chunks > FREE_BODY_CHUNKS + bytes / BYTES_PER_BODY_CHUNK + ((performance.now() - start) * BODY_CHUNKS_PER_SECOND) / 1000) {
        over = true;
        onOver('body');
        return false;
      }
      if (chunks > OWN_BODY_CHUNKS) {
        const spent = budget.take(size);
        if (spent) {
          over = true;
          onOver(spent);
          return false;
        }
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
