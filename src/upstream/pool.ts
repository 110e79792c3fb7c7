// One undici Pool per target, with what Pool options alone cannot express: `max-idle` (keep at
// most N idle keep-alive connections; extra idle sockets are closed as soon as they go idle) and
// live connection stats for sentinel_connection_pool_size / _idle.
import type { ConnectionOptions } from 'node:tls';
import type { LookupFunction, Socket } from 'node:net';
import { Client, Pool, buildConnector, type Dispatcher } from 'undici';
import { H2Dispatcher } from './h2.ts';
import { GATEWAY_HEADER_NAMES, registerKnownHeaderNames } from './undici-names.ts';

/** How often idle sockets beyond max-idle are closed. */
export const IDLE_SWEEP_MS = 1000;

export interface TargetPoolOptions {
  /** max-connections: sockets (HTTP/1.1) or sessions (h2) per target */
  connections: number;
  /** max-idle: idle keep-alive sockets kept per target */
  maxIdle: number;
  /** idle-timeout: an idle socket is closed after this long */
  idleTimeoutMs: number;
  /** max-lifetime: a connection is not reused after this age (undefined = forever) */
  maxLifetimeMs: number | undefined;
  connectTimeoutMs: number;
  /** per-attempt defaults; the forwarder may pass tighter ones per request */
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
  /** max-version 2: HTTP/2 when the target offers it (TLS ALPN); cleartext stays HTTP/1.1 */
  allowH2: boolean;
  /** min-version 2: HTTP/2 only (TLS: ALPN offers only h2; cleartext: h2c with prior knowledge) */
  h2Only?: boolean;
  maxConcurrentStreams?: number;
  pingIntervalMs?: number;
  tls?: ConnectionOptions;
  /** for HTTP/2: `upstream "id"` (error messages), target host/port, and the retry budget gate */
  upstream?: string;
  host?: string;
  port?: number;
  retryUnprocessed?: () => boolean;
  /** the target's checked resolver (a host name: discovery/address-policy.ts checkedLookup) */
  lookup?: LookupFunction;
}

export interface TargetPool {
  /** an undici Pool (HTTP/1.1), or the HTTP/2 dispatcher (src/upstream/h2.ts) when h2 may be used */
  readonly pool: Dispatcher;
  /** connected sockets, and how many of them carry no request */
  stats(): { connected: number; idle: number };
  close(): Promise<void>;
}

let gatewayNamesRegistered = false;

export function createTargetPool(origin: string, o: TargetPoolOptions): TargetPool {
  // every upstream request carries the names forwardHeaders adds: undici finds them at the first lookup
  if (!gatewayNamesRegistered) {
    registerKnownHeaderNames(GATEWAY_HEADER_NAMES);
    gatewayNamesRegistered = true;
  }
  // HTTP/2 goes through our own dispatcher (GOAWAY / refused-stream semantics, h2c); over TLS
  // without min-version 2 it falls back to the HTTP/1.1 pool below when ALPN picks http/1.1.
  const useH2 = o.h2Only === true || (o.allowH2 && o.tls !== undefined);
  if (useH2) return createH2TargetPool(origin, o);
  return createH1TargetPool(origin, o);
}

function createH2TargetPool(origin: string, o: TargetPoolOptions): TargetPool {
  const url = new URL(origin);
  let h1: TargetPool | undefined;
  const h2 = new H2Dispatcher({
    upstream: o.upstream ?? url.host,
    host: o.host ?? url.hostname.replace(/^\[|\]$/g, ''),
    port: o.port ?? Number(url.port),
    ...(o.tls ? { tls: o.tls } : {}),
    h2Only: o.h2Only === true,
    maxSessions: o.connections,
    maxStreams: o.maxConcurrentStreams ?? 100,
    pingIntervalMs: o.pingIntervalMs ?? 0,
    idleTimeoutMs: o.idleTimeoutMs,
    maxIdle: o.maxIdle,
    maxLifetimeMs: o.maxLifetimeMs,
    connectTimeoutMs: o.connectTimeoutMs,
    headersTimeoutMs: o.headersTimeoutMs,
    bodyTimeoutMs: o.bodyTimeoutMs,
    ...(o.retryUnprocessed ? { retryUnprocessed: o.retryUnprocessed } : {}),
    ...(o.lookup ? { lookup: o.lookup } : {}),
    http1Fallback: (socket) => {
      h1 = createH1TargetPool(origin, { ...o, allowH2: false }, socket);
      return h1.pool;
    },
  });
  return {
    pool: h2,
    stats() {
      if (h1) return h1.stats();
      const s = h2.stats();
      return { connected: s.connected, idle: s.idle };
    },
    close: () => h2.close(),
  };
}

/** HTTP/1.1: an undici Pool. `first` is an already connected socket to use for the first connection. */
function createH1TargetPool(origin: string, o: TargetPoolOptions, first?: Socket): TargetPool {
  const baseConnect = buildConnector({
    ...(o.tls ?? {}),
    // undici passes its options on to net.connect / tls.connect
    ...(o.lookup ? { lookup: o.lookup } : {}),
    timeout: o.connectTimeoutMs,
    allowH2: false,
  });
  let handOver = first;
  const clients = new Set<Client>();
  const sockets = new Map<Client, Socket>();

  const isIdle = (c: Client) => {
    const s = c.stats;
    return s.connected && s.size === 0;
  };

  /** Close idle sockets beyond max-idle (the client stays in the pool and reconnects on demand). */
  const trimIdle = () => {
    let idle = 0;
    for (const c of clients) {
      if (c.closed || c.destroyed || !isIdle(c)) continue;
      idle++;
      if (idle > o.maxIdle) sockets.get(c)?.destroy();
    }
  };

  const pool = new Pool(origin, {
    connections: o.connections,
    keepAliveTimeout: o.idleTimeoutMs,
    keepAliveMaxTimeout: o.idleTimeoutMs,
    clientTtl: o.maxLifetimeMs ?? null,
    headersTimeout: o.headersTimeoutMs,
    bodyTimeout: o.bodyTimeoutMs,
    factory: (url, opts) => {
      // eslint-disable-next-line prefer-const -- assigned after the connector closure that needs it
      let client: Client;
      const connect: buildConnector.connector = (copts, cb) => {
        const ready = handOver;
        handOver = undefined;
        const connector: buildConnector.connector = ready && !ready.destroyed ? (_opts, done) => queueMicrotask(() => done(null, ready)) : baseConnect;
        connector(copts, (...args) => {
          const socket = args[1];
          if (socket) {
            sockets.set(client, socket);
            socket.once('close', () => {
              if (sockets.get(client) === socket) sockets.delete(client);
            });
          }
          cb(...args);
        });
      };
      client = new Client(url, { ...(opts as Client.Options), connect });
      clients.add(client);
      const forget = () => {
        if (client.closed || client.destroyed) {
          clients.delete(client);
          sockets.delete(client);
        }
      };
      client.on('disconnect', forget);
      return client;
    },
  });

  // Extra idle sockets are closed by a periodic sweep, not on every response: trimming on each
  // 'drain' closed and reopened connections continuously under bursty load (connect churn was
  // the top cost in a CPU profile at 50 concurrent clients with max-idle 20).
  const sweep = setInterval(trimIdle, IDLE_SWEEP_MS);
  sweep.unref();

  return {
    pool,
    stats() {
      let connected = 0;
      let idle = 0;
      for (const c of clients) {
        if (c.closed || c.destroyed) {
          clients.delete(c);
          continue;
        }
        if (!c.stats.connected) continue;
        connected++;
        if (c.stats.size === 0) idle++;
      }
      return { connected, idle };
    },
    close: () => {
      clearInterval(sweep);
      return pool.close();
    },
  };
}
