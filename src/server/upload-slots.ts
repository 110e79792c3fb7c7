// `limits { max-streaming-uploads-per-client }` (docs/security.md, "Request buffering"): request
// bodies that stream to the upstream as they arrive (above max-body-buffer-bytes, gRPC) each hold
// an upstream socket or stream while the client sends; this caps how many one client address may
// have in flight, so a client trickling uploads cannot take a pool's sockets from everyone else.
import type { IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { clientPrefixKey } from './client-prefix.ts';

/** The cap when the config does not set one. */
export const DEFAULT_MAX_STREAMING_UPLOADS_PER_CLIENT = 16;

/** Streaming uploads in flight per client key, for one process (shared by every generation). */
export class UploadSlots {
  private readonly counts = new Map<string, number>();

  /**
   * Takes a slot for `key` if fewer than `cap` are held: returns the release function (idempotent),
   * or undefined when the client is at its cap.
   */
  acquire(key: string, cap: number): (() => void) | undefined {
    const n = this.counts.get(key) ?? 0;
    if (n >= cap) return undefined;
    this.counts.set(key, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.counts.get(key) ?? 1) - 1;
      if (left > 0) this.counts.set(key, left);
      else this.counts.delete(key);
    };
  }

  /** Slots `key` holds now. */
  held(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  /** Client keys holding at least one slot. */
  get clients(): number {
    return this.counts.size;
  }
}

/**
 * Whether the whole request body has already arrived (nothing is left to trickle), although
 * nobody has read it yet: HTTP/1.1's parser marks the message complete; an HTTP/2 stream has
 * seen END_STREAM. Such a body (a unary gRPC call) needs no slot.
 */
export function bodyArrived(req: IncomingMessage): boolean {
  const stream = (req as unknown as Partial<Http2ServerRequest>).stream;
  if (stream === undefined) return req.complete;
  // The compat request reads its stream only once read itself; the stream's own state knows
  // whether END_STREAM came (Node's readable state: there is no public flag for "ended, unread").
  return (stream as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended === true;
}

/** What the forwarder asks before a body streams: one per generation (cap and exemptions of its config). */
export class UploadGate {
  constructor(
    private readonly slots: UploadSlots,
    /** 0: no cap */
    readonly cap: number,
    /** client addresses that are themselves trusted proxies: their clients share the address */
    private readonly exempt: (clientIp: string) => boolean,
  ) {}

  /**
   * A slot for a body about to stream from `clientIp`: its release function, `null` when the
   * client is at its cap, or undefined when none is needed (no cap, exempt, body already arrived).
   */
  take(clientIp: string, req: IncomingMessage): (() => void) | null | undefined {
    if (this.cap === 0 || bodyArrived(req) || this.exempt(clientIp)) return undefined;
    // an IPv6 client holds a /64: counted as one, as rate limits count it (client-prefix.ts)
    return this.slots.acquire(clientPrefixKey(clientIp), this.cap) ?? null;
  }
}
