// Memcached backend: a fixed-window counter per key and window, created with a TTL by the
// binary protocol's increment-with-initial-value (one round trip, atomic on the server).
// memjs speaks that protocol and shards keys over several servers; its own timeout only fires
// on an idle socket, so every call is also bounded by withTimeout.
import { createRequire } from 'node:module';
import type memjs from 'memjs';
import type { Decision, WindowParams } from './limiter.ts';
import { fixedWindowDecision, windowIndex } from './limiter.ts';
import type { RemoteBackend } from './backend.ts';
import { withTimeout } from './backend.ts';

export interface MemcachedSettings {
  /** comma-separated host:port list, optional memcache:// or memcached:// scheme */
  url: string;
  poolSize: number;
  timeoutMs: number;
  ttlSecs: number;
}

/** "memcache://a:11211, b" -> ["a:11211", "b:11211"] (pure, table-tested). Throws on a bad entry. */
export function memcachedServers(url: string): string[] {
  const out: string[] = [];
  for (const raw of url.split(',')) {
    const part = raw.trim().replace(/^memcached?:\/\//i, '').replace(/\/$/, '');
    if (part === '') continue;
    const m = /^(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?$/.exec(part);
    if (!m) throw new Error(`invalid memcached server "${raw.trim()}" (expected host:port)`);
    const port = m[2] ? Number(m[2]) : 11211;
    if (port < 1 || port > 65535) throw new Error(`invalid port in memcached server "${raw.trim()}"`);
    out.push(`${m[1]}:${port}`);
  }
  if (out.length === 0) throw new Error('memcached-url is empty');
  return out;
}

const silentLogger = { log: () => undefined };

export class MemcachedBackend implements RemoteBackend {
  readonly kind = 'memcached' as const;
  private readonly clients: memjs.Client[] = [];
  private next = 0;

  constructor(
    readonly settings: MemcachedSettings,
    private readonly now: () => number = Date.now,
  ) {
    const servers = memcachedServers(settings.url).join(',');
    // memjs is loaded on first use, like ioredis in store-redis.ts.
    const { Client } = createRequire(import.meta.url)('memjs') as typeof memjs;
    for (let i = 0; i < settings.poolSize; i++) {
      this.clients.push(
        Client.create(servers, {
          retries: 0,
          failover: false,
          timeout: settings.timeoutMs / 1000,
          conntimeout: Math.max(1, settings.timeoutMs / 1000),
          keepAlive: true,
          logger: silentLogger,
        }),
      );
    }
  }

  async take(key: string, w: WindowParams): Promise<Decision> {
    const client = this.clients[this.next]!;
    this.next = (this.next + 1) % this.clients.length;
    const now = this.now();
    // The counter outlives its window by the TTL so a slow request still finds it.
    const ttl = Math.max(this.settings.ttlSecs, Math.ceil(w.windowMs / 1000) + 1);
    const counterKey = `${key}:${windowIndex(w, now)}`;
    const incr = () => client.increment(counterKey, 1, { initial: 1, expires: ttl });
    // Two first increments of a window can race to create the counter; the loser is told
    // "not stored" and simply increments the counter the winner created.
    const call = incr().catch((err: Error) => {
      if (/not stored/i.test(err.message)) return incr();
      throw err;
    });
    const res = await withTimeout(call, this.settings.timeoutMs, 'memcached');
    if (!res.success || res.value === null || res.value === undefined) throw new Error('memcached increment failed');
    return fixedWindowDecision(Number(res.value), w, now);
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.close();
  }
}
