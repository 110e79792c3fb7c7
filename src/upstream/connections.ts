// The connections of one upstream group (one generation): an undici pool per target for traffic
// (pool.ts; h1, h2 or h2c by `http-version`), a keep-alive client per target for active health
// checks, the upstream TLS options, and the timeouts. Pools are created on first use and closed
// when their target leaves (after the requests in flight on them) or the group closes.
import { readFileSync } from 'node:fs';
import { MountedSnapshot } from '../config/mounted.ts';
import { isIP, type LookupFunction } from 'node:net';
import { resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { Client, type Dispatcher } from 'undici';
import type { RawUpstream } from '../config/schema.ts';
import type { TargetState } from './types.ts';
import { urlHost } from './address.ts';
import { createTargetPool, type TargetPool, type TargetPoolOptions } from './pool.ts';

export interface UpstreamTimeouts {
  requestMs: number;
  readMs: number;
  writeMs: number;
  connectMs: number;
}

/** `timeouts { }` of an upstream block, in ms. */
export function upstreamTimeouts(config: RawUpstream): UpstreamTimeouts {
  const t = config.timeouts;
  return {
    connectMs: (t?.['connect-secs'] ?? 10) * 1000,
    requestMs: (t?.['request-secs'] ?? 60) * 1000,
    readMs: (t?.['read-secs'] ?? 30) * 1000,
    writeMs: (t?.['write-secs'] ?? 30) * 1000,
  };
}

/** Per-generation connections to one target. */
interface TargetConns {
  pool: TargetPool | undefined;
  checkClient: Client | undefined;
}

export class TargetConnections {
  private readonly conns = new Map<TargetState, TargetConns>();
  private readonly poolOptions: TargetPoolOptions;
  private readonly scheme: 'http' | 'https';

  /**
   * `retryUnprocessed`: may a request the upstream never processed (h2 GOAWAY) go out again (the
   * retry budget). `lookupFor`: the checked resolver for a target named by a host name
   * (TargetSet.connectLookup), used by every connection to it: traffic, health checks.
   */
  constructor(
    id: string,
    config: RawUpstream,
    timeouts: UpstreamTimeouts,
    baseDir: string,
    retryUnprocessed: () => boolean,
    private readonly lookupFor: (target: TargetState) => LookupFunction | undefined = () => undefined,
  ) {
    this.scheme = config.tls ? 'https' : 'http';
    this.poolOptions = poolOptions(id, config, timeouts, baseDir, retryUnprocessed);
  }

  /** Starts tracking a (new) target's connections. */
  track(target: TargetState): void {
    if (!this.conns.has(target)) this.conns.set(target, { pool: undefined, checkClient: undefined });
  }

  private connsOf(target: TargetState): TargetConns {
    let c = this.conns.get(target);
    if (!c) {
      // a target that left between select() and dispatcher(): closed again at the next change
      c = { pool: undefined, checkClient: undefined };
      this.conns.set(target, c);
    }
    return c;
  }

  /** Origin URL for undici requests to this target, e.g. "http://127.0.0.1:9001", "https://[::1]:8443". */
  origin(target: TargetState): string {
    return `${this.scheme}://${urlHost(target.host)}:${target.port}`;
  }

  /** TLS options for one target: SNI defaults to the target's host name (never an IP literal). */
  tlsFor(target: TargetState): ConnectionOptions | undefined {
    const tls = this.poolOptions.tls;
    if (!tls) return undefined;
    if (tls.servername || isIP(target.host) !== 0) return tls;
    return { ...tls, servername: target.host };
  }

  /** The undici Pool for this target (created on first use, one per target per generation). */
  dispatcher(target: TargetState): Dispatcher {
    const c = this.connsOf(target);
    if (!c.pool) {
      const tls = this.tlsFor(target);
      const lookup = this.lookupFor(target);
      c.pool = createTargetPool(this.origin(target), { ...this.poolOptions, host: target.host, port: target.port, ...(tls ? { tls } : {}), ...(lookup ? { lookup } : {}) });
    }
    return c.pool.pool;
  }

  /** The target's own keep-alive client for health checks: checks must not queue behind a saturated traffic pool. */
  checkClient(target: TargetState, timeoutMs: number, keepAliveMs: number): Dispatcher {
    const c = this.connsOf(target);
    const lookup = this.lookupFor(target);
    c.checkClient ??= new Client(this.origin(target), {
      connect: { timeout: timeoutMs, ...(this.tlsFor(target) ?? {}), ...(lookup ? { lookup } : {}) },
      allowH2: this.poolOptions.allowH2,
      // an h2-only cleartext target answers nothing but h2c
      ...(this.poolOptions.h2Only && this.scheme === 'http' ? { useH2c: true } : {}),
      keepAliveTimeout: keepAliveMs,
    });
    return c.checkClient;
  }

  /** Closes a removed target's connections gracefully (requests in flight on them finish first). */
  release(target: TargetState): void {
    const c = this.conns.get(target);
    this.conns.delete(target);
    if (!c) return;
    void Promise.allSettled([c.pool?.close(), c.checkClient?.close()]);
  }

  /** Open and idle traffic connections; sweeps pools of targets that left (not in `members`) once idle. */
  stats(members: readonly TargetState[]): { connected: number; idle: number } {
    let connected = 0;
    let idle = 0;
    for (const [t, c] of this.conns) {
      const s = c.pool?.stats();
      connected += s?.connected ?? 0;
      idle += s?.idle ?? 0;
      // sweep pools of targets that left while a request was being dispatched to them
      if (!members.includes(t) && c.pool && (s?.connected ?? 0) === 0) this.release(t);
    }
    return { connected, idle };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.conns.values()].flatMap((c) => [c.pool?.close(), c.checkClient?.close()]));
    this.conns.clear();
  }
}

function poolOptions(id: string, config: RawUpstream, timeouts: UpstreamTimeouts, baseDir: string, retryUnprocessed: () => boolean): TargetPoolOptions {
  const cp = config['connection-pool'];
  const lifetimeSecs = cp?.['max-lifetime-secs'];
  const hv = config['http-version'];
  // min-version 2 implies max-version 2; see pool.ts for how each mode connects
  const h2Only = (hv?.['min-version'] ?? 1) >= 2;
  const h2 = h2Only || (hv?.['max-version'] ?? 1) >= 2;
  const opts: TargetPoolOptions = {
    connections: cp?.['max-connections'] ?? 100,
    maxIdle: cp?.['max-idle'] ?? 20,
    idleTimeoutMs: (cp?.['idle-timeout-secs'] ?? 60) * 1000,
    maxLifetimeMs: lifetimeSecs !== undefined ? lifetimeSecs * 1000 : undefined,
    connectTimeoutMs: timeouts.connectMs,
    headersTimeoutMs: timeouts.readMs,
    bodyTimeoutMs: timeouts.readMs,
    allowH2: h2,
    h2Only,
    upstream: id,
    retryUnprocessed,
  };
  if (h2 && hv?.['max-h2-streams'] !== undefined) opts.maxConcurrentStreams = hv['max-h2-streams'];
  if (h2 && hv?.['h2-ping-interval'] !== undefined && hv['h2-ping-interval'] > 0) opts.pingIntervalMs = hv['h2-ping-interval'] * 1000;
  const tls = config.tls;
  if (tls) {
    // one version of a mounted Secret for the three files (session 23 audit: a swap between reads)
    const view = new MountedSnapshot();
    const read = (p: string | undefined): Buffer | undefined => (p ? readFileSync(view.path(resolve(baseDir, p))) : undefined);
    const ca = read(tls['ca-cert']);
    const cert = read(tls['client-cert']);
    const key = read(tls['client-key']);
    opts.tls = {
      rejectUnauthorized: !(tls['insecure-skip-verify'] ?? false),
      ...(tls.sni ? { servername: tls.sni } : {}),
      ...(ca ? { ca } : {}),
      ...(cert ? { cert } : {}),
      ...(key ? { key } : {}),
    };
  }
  return opts;
}
