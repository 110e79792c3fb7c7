// Reading a request body into memory: agent body inspection (plugins/agents) and the forwarder's
// request buffering (docs/security.md, "Request buffering") share this one reader.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { requestChunkRead, type RequestChunkRead } from './body-seams.ts';

export type ReadResult = { ok: true; body: Buffer } | { ok: false; reason: 'too_large' | 'aborted' | 'error'; received: number };

/**
 * Chunks below this size are gathered: kept as one copy per this many bytes, and handed to
 * `onChunk` as one chunk per socket read (or per this many bytes). A client that sends its body one
 * byte per HTTP/1.1 chunk or HTTP/2 DATA frame (a 64 KiB read holds ~10,000 of them) cost a Buffer
 * object (~150 bytes of heap) per byte of body and a stream-mode agent one event per byte
 * (docs/security.md, "Session 24 audit").
 */
export const SMALL_CHUNK = 1024;

/** Small chunks gathered into one Buffer (a single one is handed on as it is). */
export class Gather {
  parts: Buffer[] = [];
  bytes = 0;
  add(chunk: Buffer): void {
    this.parts.push(chunk);
    this.bytes += chunk.length;
  }
  take(): Buffer | undefined {
    const n = this.parts.length;
    if (n === 0) return undefined;
    const block = n === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.bytes);
    this.parts = [];
    this.bytes = 0;
    return block;
  }
  /** Passes `chunk` on through `emit`: a large one at once (after what was gathered), small ones once SMALL_CHUNK bytes are gathered. */
  offer(chunk: Buffer, emit: (block: Buffer) => void): void {
    if (chunk.length >= SMALL_CHUNK) {
      const block = this.take();
      if (block) emit(block);
      emit(chunk);
      return;
    }
    this.add(chunk);
    if (this.bytes >= SMALL_CHUNK) emit(this.take()!);
  }
}

/**
 * Reads a whole request body, at most `hardLimit` bytes (beyond: too_large, the stream is left
 * paused). `onChunk` lets stream mode look at the body as it arrives (small chunks of one socket
 * read together, see SMALL_CHUNK); the stream is paused until the returned promise settles (so a
 * slow agent back-pressures the client, not the gateway's memory). `kept`, when given, collects
 * every byte read, the chunk that passed the limit included, so a caller can still send what was
 * read before the rest of the stream.
 */
export function readBody(stream: Readable, hardLimit: number, signal: AbortSignal, onChunk?: (chunk: Buffer) => Promise<void> | void, kept?: Buffer[]): Promise<ReadResult> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = kept ?? [];
    const stored = new Gather();
    const unseen = onChunk ? new Gather() : undefined;
    let later: NodeJS.Immediate | undefined;
    let received = 0;
    let done = false;
    const finish = (r: ReadResult) => {
      if (done) return;
      done = true;
      if (later) clearImmediate(later);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const keep = (block: Buffer) => {
      chunks.push(block);
    };
    /** Hands what stream mode has not seen yet to onChunk (paused until its promise settles). */
    const show = (): Promise<void> | void => {
      if (later) clearImmediate(later);
      later = undefined;
      const block = unseen!.take();
      if (!block) return;
      const r = onChunk!(block);
      if (requestChunkRead.hasSubscribers) requestChunkRead.publish({ stream, received } satisfies RequestChunkRead);
      if (r) {
        stream.pause();
        r.then(
          () => !done && stream.resume(),
          () => finish({ ok: false, reason: 'error', received }),
        );
      }
      return r;
    };
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > hardLimit) {
        stream.pause();
        if (kept) {
          const block = stored.take();
          if (block) kept.push(block);
          kept.push(chunk);
        }
        finish({ ok: false, reason: 'too_large', received });
        return;
      }
      stored.offer(chunk, keep);
      if (!unseen) {
        if (requestChunkRead.hasSubscribers) requestChunkRead.publish({ stream, received } satisfies RequestChunkRead);
        return;
      }
      unseen.add(chunk);
      // the rest of this socket read is parsed before the immediate runs
      if (unseen.bytes >= SMALL_CHUNK) show();
      else later ??= setImmediate(show);
    };
    const whole = () => {
      const block = stored.take();
      if (block) chunks.push(block);
      finish({ ok: true, body: Buffer.concat(chunks, received) });
    };
    // what stream mode had not seen yet goes first, and its refusal still fails the read
    const onEnd = () => {
      const shown = unseen ? show() : undefined;
      if (shown) shown.then(whole, () => undefined);
      else whole();
    };
    const onError = () => finish({ ok: false, reason: 'error', received });
    const onAbort = () => finish({ ok: false, reason: 'aborted', received });
    if (signal.aborted) return onAbort();
    if (stream.readableEnded) return onEnd();
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    stream.resume();
  });
}

/** An HTTP/2 request without Content-Length still has a body unless its HEADERS ended the stream. */
export function h2BodyFollows(req: IncomingMessage): boolean {
  return req.httpVersionMajor === 2 && (req as unknown as { stream?: { endAfterHeaders?: boolean } }).stream?.endAfterHeaders === false;
}

/**
 * Whether the client sends a request body (Content-Length above 0, chunked, or HTTP/2 DATA): the one
 * test the forwarder, the cache and agent body inspection share.
 */
export function requestHasBody(req: IncomingMessage): boolean {
  return headDeclaresBody(req.headers) || (req.headers['content-length'] === undefined && h2BodyFollows(req));
}

/** The head says a body follows: Content-Length above 0, or (without one) Transfer-Encoding. */
function headDeclaresBody(headers: IncomingMessage['headers']): boolean {
  const cl = headers['content-length'];
  return cl !== undefined ? Number(cl) !== 0 : headers['transfer-encoding'] !== undefined;
}

/**
 * Methods whose request body has no defined semantics (RFC 9110 §9.3: GET, HEAD, DELETE, OPTIONS;
 * WebDAV's COPY, MOVE, UNLOCK; the non-standard others Node's parser takes that define none). An
 * upstream that frames requests by their method reads such a body as the next request (CL.0);
 * TRACE and CONNECT never get past the front door. docs/security.md, "Bodies on GET and other
 * bodiless methods".
 */
const BODYLESS_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'COPY', 'MOVE', 'UNLOCK', 'PURGE', 'LINK', 'UNLINK', 'SUBSCRIBE', 'UNSUBSCRIBE', 'M-SEARCH']);

export function bodylessMethod(method: string): boolean {
  return BODYLESS_METHODS.has(method);
}

/**
 * A bodiless method (above) whose head says a body follows (Content-Length above 0, or
 * Transfer-Encoding). An HTTP/2 stream that merely stays open after its HEADERS may still end with
 * no DATA: the forwarder reads it to tell.
 */
export function bodylessWithDeclaredBody(method: string, req: { headers: IncomingMessage['headers'] }): boolean {
  return BODYLESS_METHODS.has(method) && headDeclaresBody(req.headers);
}
