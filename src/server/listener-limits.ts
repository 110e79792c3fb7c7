// Connection-level limits, the same on every listener kind (docs/security.md, "Connection
// limits"): header and request timeouts, keep-alive, header size, HTTP/2 session idle and stream
// timeouts, and a connection gate (max-total-connections, max-connections-per-client).
//
// node:http's server takes its limits as options. An Http2SecureServer with allowHTTP1 runs the
// very same HTTP/1.1 machinery for clients that chose http/1.1 by ALPN, but reads those limits
// only as properties of the server object (and defaults them to 60 s / 300 s / none), so they are
// set here as properties. HTTP/2 sessions have none of them: the idle and request timers below.
import type http from 'node:http';
import http2 from 'node:http2';
import type { Server as NetServer, Socket } from 'node:net';
import tls, { type TLSSocket } from 'node:tls';
import type { CompiledConfig, CompiledListener } from '../config/compile.ts';
import { clientPrefixKey } from './client-prefix.ts';

export interface ListenerLimits {
  /** limits { client-header-timeout-secs } (never above the request timeout) */
  headersTimeoutMs: number;
  /** listener request-timeout-secs: the whole request must arrive within it (0 = off) */
  requestTimeoutMs: number;
  /** listener keepalive-timeout-secs: idle HTTP/1.1 connections and HTTP/2 sessions without streams */
  keepAliveTimeoutMs: number;
  /** limits { max-header-size-bytes }: HTTP/1.1 431, HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE (stream reset) */
  maxHeaderSize: number;
  /**
   * limits { max-header-count } plus one: Node keeps no more header fields of an HTTP/1.1 request
   * (2000 by default) and frames the body by a Transfer-Encoding or Content-Length past them that
   * the gateway never sees; one more than the limit is enough for its 431.
   */
  maxHeadersCount: number;
  maxRequestsPerSocket: number | undefined;
}

/** Node checks header/request timeouts on this interval (its default, 30 s, is too coarse for slow-client defence). */
export const CONNECTIONS_CHECKING_INTERVAL_MS = 1000;

export function listenerLimits(config: CompiledConfig, l: CompiledListener): ListenerLimits {
  const limits = config.limits;
  return {
    headersTimeoutMs: Math.min((limits['client-header-timeout-secs'] ?? 10) * 1000, l.requestTimeoutMs || Infinity),
    requestTimeoutMs: l.requestTimeoutMs,
    keepAliveTimeoutMs: l.keepAliveTimeoutMs,
    maxHeaderSize: limits['max-header-size-bytes'],
    maxHeadersCount: limits['max-header-count'] + 1,
    maxRequestsPerSocket: l.keepAliveMaxRequests || undefined,
  };
}

/** Options for http.createServer (plain HTTP/1.1 listeners); then applyHttp1Limits. */
export function http1ServerOptions(lim: ListenerLimits): http.ServerOptions {
  return {
    maxHeaderSize: lim.maxHeaderSize,
    requestTimeout: lim.requestTimeoutMs,
    headersTimeout: lim.headersTimeoutMs,
    keepAliveTimeout: lim.keepAliveTimeoutMs,
    connectionsCheckingInterval: CONNECTIONS_CHECKING_INTERVAL_MS,
    // the front door refuses HTTP/1.1 without Host with the gateway's JSON error (Node's is a bare 400)
    requireHostHeader: false,
    // maxRequestsPerSocket is no constructor option (Node ignores it there): applyHttp1Limits sets it
  };
}

/** HTTP/2 SETTINGS the listener advertises (and nghttp2 enforces: a larger header block resets the stream). */
export function http2Settings(lim: ListenerLimits, maxConcurrentStreams: number): http2.Settings {
  return { maxConcurrentStreams, maxHeaderListSize: lim.maxHeaderSize };
}

/**
 * Size of a request's header section as HTTP/1.1 counts it (`name: value` CRLF per field), for
 * HTTP/2 requests (pseudo-headers stand in for the request line), so one limit means the same
 * on both. A loop over the raw pairs: no allocation.
 */
export function headerListBytes(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i++) n += raw[i]!.length + 2;
  return n;
}

/**
 * Header fields of a request as `limits { max-header-count }` counts them, the same on both
 * protocols: HTTP/2's pseudo-headers (first in the list: nghttp2 refuses one after a regular
 * field) stand in for HTTP/1.1's request line and are not counted. HTTP/1.1 names never start
 * with ':'.
 */
export function headerFieldCount(raw: readonly string[]): number {
  let pseudo = 0;
  while (pseudo < raw.length && raw[pseudo]!.charCodeAt(0) === 58 /* ':' */) pseudo += 2;
  return (raw.length - pseudo) / 2;
}

/**
 * Node resets an HTTP/2 stream with more header fields than its `maxHeaderListPairs` (128 by
 * default, pseudo-headers included) before the gateway sees it: room for max-header-count fields,
 * the four pseudo-headers and one more, so one field too many still gets the gateway's 431.
 */
export function http2MaxHeaderPairs(maxHeaderCount: number): number {
  return Math.max(128, maxHeaderCount + 5);
}

interface Http1Props {
  maxHeaderSize?: number;
  maxHeadersCount: number;
  headersTimeout: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  maxRequestsPerSocket: number;
  connectionsCheckingInterval?: number;
}

/**
 * The HTTP/1.1 limits as server properties: for the TLS server's HTTP/1.1 side (the interval must
 * be set before listen()). Also how a reload changes the timeouts of a running listener.
 */
export function applyHttp1Limits(server: http.Server | http2.Http2SecureServer, lim: ListenerLimits): void {
  const s = server as unknown as Http1Props;
  s.maxHeaderSize = lim.maxHeaderSize;
  s.maxHeadersCount = lim.maxHeadersCount;
  s.headersTimeout = lim.headersTimeoutMs;
  s.requestTimeout = lim.requestTimeoutMs;
  s.keepAliveTimeout = lim.keepAliveTimeoutMs;
  s.maxRequestsPerSocket = lim.maxRequestsPerSocket ?? 0;
  s.connectionsCheckingInterval = CONNECTIONS_CHECKING_INTERVAL_MS;
}

/** How long a peer has to end its side of an HTTP/2 connection after the gateway ended its own. */
const PEER_END_GRACE_MS = 1000;

/**
 * HTTP/2 sessions (h2c, and TLS clients that chose h2): a session with no open stream is closed
 * (GOAWAY) after the header timeout when it never sent a request, after the keep-alive timeout
 * between requests; a stream whose request has not fully arrived within the request timeout is
 * reset. `limits()` is read when a timer is armed, so a reload applies to the next one.
 */
export function guardHttp2Sessions(server: http2.Http2Server | http2.Http2SecureServer, limits: () => ListenerLimits, onClose: (reason: 'h2_idle' | 'h2_request_timeout') => void): void {
  // A session closed gracefully (GOAWAY, then no open stream: idle, shutdown, abuse) ends its
  // socket and then waits, with no timer, for the peer to end its side: a peer that never does
  // would hold the socket, and its slot of max-connections-per-client, for ever.
  const reapAfterEnd = (socket: Socket): void => {
    socket.once('finish', () => {
      const t = setTimeout(() => socket.destroy(), PEER_END_GRACE_MS);
      t.unref();
      socket.once('close', () => clearTimeout(t));
    });
  };
  if (server instanceof tls.Server) server.on('secureConnection', (s: TLSSocket) => s.alpnProtocol === 'h2' && reapAfterEnd(s));
  else server.on('connection', reapAfterEnd);
  server.on('session', (session: http2.ServerHttp2Session) => {
    let open = 0;
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (open > 0 || session.closed || session.destroyed) return;
        onClose('h2_idle');
        session.close();
        // a peer that never answers the GOAWAY must not hold the socket
        setTimeout(() => session.destroy(), 1000).unref();
      }, ms);
      timer.unref();
    };
    arm(limits().headersTimeoutMs);
    session.on('stream', (stream: http2.ServerHttp2Stream) => {
      open++;
      clearTimeout(timer);
      const requestMs = limits().requestTimeoutMs;
      let deadline: NodeJS.Timeout | undefined;
      // A request that ended with its HEADERS (GET, HEAD ...) is complete: no timer for it.
      if (requestMs > 0 && !stream.endAfterHeaders) {
        deadline = setTimeout(() => {
          if (stream.closed) return;
          onClose('h2_request_timeout');
          stream.close(http2.constants.NGHTTP2_CANCEL);
        }, requestMs);
        deadline.unref();
        stream.once('end', () => clearTimeout(deadline));
      }
      stream.once('close', () => {
        clearTimeout(deadline);
        if (--open === 0 && !session.closed) arm(limits().keepAliveTimeoutMs);
      });
    });
    session.once('close', () => clearTimeout(timer));
  });
}

/** limits { max-connections-per-client } when the config does not say (sentinel-reference.md §1.12) */
export const DEFAULT_MAX_CONNECTIONS_PER_CLIENT = 100;

export interface GateLimits {
  /** limits { max-total-connections }: across every listener of this process */
  maxTotal: number | undefined;
  /** limits { max-connections-per-client }: open connections per peer address */
  perClient: number;
  /** peers the per-client cap does not apply to (system { trusted-proxies }: many clients share their address) */
  exempt: (peer: string) => boolean;
}

export type RejectReason = 'max_connections' | 'max_total_connections' | 'max_connections_per_client';

/**
 * Counts open connections per client (and in total) for every listener it watches, and closes a
 * new connection beyond a cap before a byte is read. The client is the TCP peer's address as
 * clientPrefixKey reads it (an IPv6 /64, IPv4-mapped as IPv4); trusted proxies, which carry many
 * clients on their address, are exempt from the per-client cap.
 */
export class ConnectionGate {
  private total = 0;
  private readonly perPeer = new Map<string, number>();

  constructor(
    private readonly limits: () => GateLimits,
    private readonly onReject: (listener: string, reason: RejectReason) => void,
  ) {}

  get openConnections(): number {
    return this.total;
  }

  watch(server: NetServer, listener: string): void {
    // prepend: before the HTTP/TLS machinery sets anything up for the socket
    server.prependListener('connection', (socket: Socket) => this.admit(socket, listener));
    // net.Server's own maxConnections (system { max-connections }) drops before 'connection'.
    server.on('drop', () => this.onReject(listener, 'max_connections'));
  }

  private admit(socket: Socket, listener: string): void {
    const { maxTotal, perClient, exempt } = this.limits();
    const address = socket.remoteAddress ?? '';
    // One client as the other per-client limits count it (client-prefix.ts): an IPv6 client holds
    // a /64, and ::ffff:a.b.c.d on a dual-stack listener is a.b.c.d on an IPv4 one (session 28 audit).
    const peer = clientPrefixKey(address);
    const mine = this.perPeer.get(peer) ?? 0;
    let reason: RejectReason | undefined;
    if (maxTotal !== undefined && this.total >= maxTotal) reason = 'max_total_connections';
    else if (mine >= perClient && !exempt(address)) reason = 'max_connections_per_client';
    if (reason) {
      this.onReject(listener, reason);
      socket.destroy();
      return;
    }
    this.total++;
    this.perPeer.set(peer, mine + 1);
    socket.once('close', () => {
      this.total--;
      const n = (this.perPeer.get(peer) ?? 1) - 1;
      if (n <= 0) this.perPeer.delete(peer);
      else this.perPeer.set(peer, n);
    });
  }
}
