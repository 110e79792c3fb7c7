// HTTP/1.1 pipelining depth (docs/security.md, "Session 24 audit"). Node's server hands every
// request it parses to the gateway at once, also those pipelined behind a response not yet written,
// and parses a whole read (64 KiB: ~1,800 short GETs) in one go: one connection could put 20,000
// requests in flight (83 MB of heap) from one 800 kB write, past `max-connections-per-client`.
// HTTP/2 bounds a session by SETTINGS_MAX_CONCURRENT_STREAMS; this bounds an HTTP/1.1 connection
// by as many requests waiting behind the one being answered, and cancels those still waiting when
// the connection closes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** As HTTP/2's default max-concurrent-streams: no client pipelines this deep (browsers do not pipeline). */
export const MAX_PIPELINED = 100;

const WAITING = Symbol('sentinel.pipelined');
type Counted = Socket & { [WAITING]?: Set<ServerResponse>; _httpMessage?: ServerResponse | null };

function answered(this: ServerResponse): void {
  (this.req.socket as Counted)[WAITING]?.delete(this);
}

/**
 * The connection closed: a response still queued behind another never gets a socket, so Node
 * never closes it and its request ran on (holding an upstream socket until the upstream answered
 * or request-secs ran out) after the client had gone. Closing it cancels the request as a client
 * that leaves does.
 */
function connectionClosed(this: Counted): void {
  const waiting = this[WAITING];
  if (!waiting) return;
  this[WAITING] = undefined;
  for (const res of waiting) if (!res.writableFinished) res.emit('close');
}

/**
 * Counts a request that waits behind another response on its HTTP/1.1 connection; false when the
 * connection already has MAX_PIPELINED such requests (the caller closes it: answers cannot be
 * given out of order). A request that is not pipelined costs one property read.
 */
export function admitPipelined(req: IncomingMessage, res: ServerResponse): boolean {
  // HTTP/2's req.socket is a proxy of the session's: not read for its requests
  if (req.httpVersionMajor !== 1) return true;
  const socket = req.socket as Counted;
  const current = socket._httpMessage;
  if (current === res || current === null || current === undefined) return true;
  let waiting = socket[WAITING];
  if (waiting === undefined) {
    if (socket.destroyed) return false;
    waiting = socket[WAITING] = new Set();
    socket.once('close', connectionClosed);
  }
  if (waiting.size >= MAX_PIPELINED) return false;
  waiting.add(res);
  res.once('close', answered);
  return true;
}
