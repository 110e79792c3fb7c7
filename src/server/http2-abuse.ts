// Per-session limits on the HTTP/2 frames that cost the server work but carry no request: peer
// stream resets (rapid reset, CVE-2023-44487), PING and SETTINGS floods. nghttp2 already answers
// a burst it cannot keep up with by sending GOAWAY, but Node keeps such a session open and every
// stream the burst opened is dispatched first (measured: 1,819 requests reached the upstream
// from one 5,000-reset burst, and the connection stayed open). Over a limit the session gets
// GOAWAY ENHANCE_YOUR_CALM and is destroyed at once; the count is a metric. Other floods are bounded by
// nghttp2 itself (CONTINUATION frames per header block, queued control-frame ACKs) and by Node's
// maxSessionInvalidFrames (1000) / maxSessionRejectedStreams (100) defaults.
import http2, { type Http2Session, type Http2Server, type Http2SecureServer } from 'node:http2';

export interface Http2AbuseLimits {
  /** streams reset by the client (its RST_STREAM, not the gateway's own resets) within `windowMs` */
  maxPeerResets: number;
  /** PING frames received within `windowMs` */
  maxPings: number;
  /** SETTINGS frames received within `windowMs` */
  maxSettings: number;
  windowMs: number;
}

export const HTTP2_ABUSE_LIMITS: Http2AbuseLimits = { maxPeerResets: 200, maxPings: 200, maxSettings: 50, windowMs: 10_000 };

export type Http2AbuseKind = 'rapid_reset' | 'ping_flood' | 'settings_flood';

/** Counts events in a fixed window; pure apart from the clock the caller passes. */
export class WindowCounter {
  private count = 0;
  private start = 0;
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  /** Counts one event at `now`; true when the window's count went over the limit. */
  hit(now: number): boolean {
    if (now - this.start >= this.windowMs) {
      this.start = now;
      this.count = 0;
    }
    return ++this.count > this.max;
  }
}

/** Watches every session of `server`; calls `onAbuse` once per session closed for abuse. */
export function guardHttp2Abuse(server: Http2Server | Http2SecureServer, onAbuse: (kind: Http2AbuseKind) => void, limits: Http2AbuseLimits = HTTP2_ABUSE_LIMITS): void {
  server.on('session', (session: Http2Session) => {
    const resets = new WindowCounter(limits.maxPeerResets, limits.windowMs);
    const pings = new WindowCounter(limits.maxPings, limits.windowMs);
    const settings = new WindowCounter(limits.maxSettings, limits.windowMs);
    const live = new Set<http2.ServerHttp2Stream>();
    let closing = false;
    const abuse = (kind: Http2AbuseKind) => {
      if (closing) return;
      closing = true;
      onAbuse(kind);
      // At once, with the GOAWAY code: nghttp2 keeps accepting streams from the bytes already
      // read until the session is gone, and each would still be dispatched.
      for (const s of live) s.close(http2.constants.NGHTTP2_CANCEL);
      if (session.destroyed) return;
      session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      session.destroy();
    };
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      if (closing) {
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      live.add(stream);
      stream.once('close', () => live.delete(stream));
      // 'aborted': the stream was closed before the response was complete. Node emits it for a
      // close of ours too (request-timeout-secs, the chunk budgets, a destroyed exchange), within
      // that close() or destroy() call: only the client's RST_STREAM is abuse.
      let ours = false;
      const close = stream.close;
      const destroy = stream.destroy;
      stream.close = function ownClose(this: http2.ServerHttp2Stream, ...args: Parameters<typeof close>) {
        ours = true;
        return close.apply(this, args);
      };
      stream.destroy = function ownDestroy(this: http2.ServerHttp2Stream, ...args: Parameters<typeof destroy>) {
        ours = true;
        return destroy.apply(this, args);
      };
      stream.once('aborted', () => {
        if (!ours && resets.hit(Date.now())) abuse('rapid_reset');
      });
    });
    session.on('ping', () => {
      if (pings.hit(Date.now())) abuse('ping_flood');
    });
    session.on('remoteSettings', () => {
      if (settings.hit(Date.now())) abuse('settings_flood');
    });
  });
}
