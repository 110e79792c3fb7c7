// Redis backend: a sliding-window log per key in a sorted set, updated by one Lua script so the
// check-and-add is atomic across every gateway sharing the Redis. The script reads Redis's own
// clock (TIME), so gateways with skewed clocks still share one window. Rejected requests are
// not added to the log (a client hammering past its limit does not extend its own ban).
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import type { Redis, Cluster, RedisOptions } from 'ioredis';
import type { Decision, WindowParams } from './limiter.ts';
import type { RemoteBackend } from './backend.ts';
import { BackendTimeoutError, withTimeout } from './backend.ts';
import { redactUrl } from '../../src/config/redact.ts';

export interface RedisSettings {
  url: string;
  mode: 'standalone' | 'cluster' | 'sentinel';
  sentinelMaster: string;
  poolSize: number;
  timeoutMs: number;
}

// KEYS[1] = the key's sorted set; ARGV = window ms, limit, unique member.
// Returns { allowed (1/0), remaining, ms until one more request is allowed }.
export const SLIDING_WINDOW_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  count = count + 1
  if count < limit then return {1, limit - count, 0} end
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {1, 0, tonumber(first[2]) + window - now}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(first[2]) + window - now}
`;

interface HostPort {
  host: string;
  port: number;
}

export type RedisClientPlan =
  | { kind: 'standalone'; url: string }
  | { kind: 'cluster'; nodes: HostPort[]; password?: string; username?: string; tls: boolean }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string; password?: string; username?: string; db: number; tls: boolean };

function parseNode(raw: string): { node: HostPort; url: URL } {
  const withScheme = /^[a-z]+:\/\//i.test(raw) ? raw : `redis://${raw}`;
  const url = new URL(withScheme);
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`unsupported scheme "${url.protocol}" in "${redactUrl(raw)}" (expected redis:// or rediss://)`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (host === '') throw new Error(`missing host in "${redactUrl(raw)}"`);
  return { node: { host, port: url.port ? Number(url.port) : 6379 }, url };
}

/** How redis-url + redis-mode become an ioredis client (pure, so it is table-tested). Throws on a bad URL. */
export function redisClientPlan(s: Pick<RedisSettings, 'url' | 'mode' | 'sentinelMaster'>): RedisClientPlan {
  const parts = s.url.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw new Error('redis-url is empty');
  const parsed = parts.map(parseNode);
  const first = parsed[0]!.url;
  const auth = {
    ...(first.password ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.username ? { username: decodeURIComponent(first.username) } : {}),
  };
  const tls = first.protocol === 'rediss:';
  if (s.mode === 'standalone') {
    if (parsed.length > 1) throw new Error('several addresses in redis-url need redis-mode "cluster" or "sentinel"');
    return { kind: 'standalone', url: first.href };
  }
  if (s.mode === 'cluster') return { kind: 'cluster', nodes: parsed.map((p) => p.node), tls, ...auth };
  const db = first.pathname.length > 1 ? Number(first.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`invalid database number "${first.pathname.slice(1)}" in redis-url`);
  return { kind: 'sentinel', sentinels: parsed.map((p) => p.node), name: s.sentinelMaster, db, tls, ...auth };
}

type SlidingWindowClient = (Redis | Cluster) & {
  sentinelSlidingWindow(key: string, windowMs: number, limit: number, member: string): Promise<[number, number, number]>;
};

export interface RedisBackendOptions {
  /** called for connection-level errors (ioredis emits them as events; they must be consumed) */
  onConnectionError?: (err: Error) => void;
}

export class RedisBackend implements RemoteBackend {
  readonly kind = 'redis' as const;
  private readonly clients: SlidingWindowClient[] = [];
  private next = 0;
  private seq = 0;
  /** makes sorted-set members unique across gateway processes */
  private readonly instanceId = randomBytes(6).toString('base64url');
  private readonly everReady = new WeakSet<Redis | Cluster>();

  constructor(
    readonly settings: RedisSettings,
    opts: RedisBackendOptions = {},
  ) {
    const plan = redisClientPlan(settings);
    const common: RedisOptions = {
      // Fail fast while disconnected (the caller falls back) instead of queueing requests.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: settings.timeoutMs,
      connectTimeout: Math.max(1000, settings.timeoutMs),
      // Keep reconnecting in the background; the breaker decides when requests use Redis again.
      retryStrategy: (times: number) => Math.min(100 * times, 2000),
      lazyConnect: false,
    };
    // A Cluster client already keeps one connection per node; a pool of them gains nothing.
    const count = plan.kind === 'cluster' ? 1 : settings.poolSize;
    const { Redis, Cluster } = loadIoredis();
    for (let i = 0; i < count; i++) {
      let client: Redis | Cluster;
      if (plan.kind === 'standalone') client = new Redis(plan.url, common);
      else if (plan.kind === 'cluster') {
        const redisOptions: RedisOptions = {
          ...common,
          ...(plan.password ? { password: plan.password } : {}),
          ...(plan.username ? { username: plan.username } : {}),
          ...(plan.tls ? { tls: {} } : {}),
        };
        client = new Cluster(plan.nodes, { enableOfflineQueue: false, redisOptions, clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000) });
      } else {
        client = new Redis({
          ...common,
          sentinels: plan.sentinels,
          name: plan.name,
          db: plan.db,
          ...(plan.password ? { password: plan.password } : {}),
          ...(plan.username ? { username: plan.username } : {}),
          ...(plan.tls ? { tls: {} } : {}),
        });
      }
      client.on('error', (err: Error) => opts.onConnectionError?.(err));
      client.once('ready', () => this.everReady.add(client));
      client.defineCommand('sentinelSlidingWindow', { numberOfKeys: 1, lua: SLIDING_WINDOW_LUA });
      this.clients.push(client as SlidingWindowClient);
    }
  }

  async take(key: string, w: WindowParams): Promise<Decision> {
    const client = this.clients[this.next]!;
    this.next = (this.next + 1) % this.clients.length;
    // Right after start the pool is still connecting: wait for it (bounded by the timeout) rather
    // than deciding the first requests locally. Later disconnects fail fast (no offline queue).
    if (client.status !== 'ready' && !this.everReady.has(client)) await withTimeout(once(client, 'ready'), this.settings.timeoutMs, 'redis');
    const member = `${this.instanceId}:${(this.seq = (this.seq + 1) % Number.MAX_SAFE_INTEGER)}`;
    // commandTimeout already bounds the call; the outer timer also covers a stuck script load (EVALSHA -> EVAL).
    const call = client.sentinelSlidingWindow(key, w.windowMs, w.limit, member).catch((err: Error) => {
      // ioredis's commandTimeout usually fires first; report it as the timeout it is.
      throw err.message === 'Command timed out' ? new BackendTimeoutError('redis', this.settings.timeoutMs) : err;
    });
    const [allowed, remaining, retryAfterMs] = await withTimeout(call, this.settings.timeoutMs, 'redis');
    return { allowed: allowed === 1, limit: w.limit, remaining, retryAfterMs: Math.max(0, retryAfterMs) };
  }

  async close(): Promise<void> {
    // QUIT lets in-flight commands finish; a Redis that does not answer is cut off after 1 s.
    await Promise.all(
      this.clients.map(async (c) => {
        try {
          await withTimeout(c.quit(), 1000, 'redis');
        } catch {
          // already closed or unreachable: disconnect below is all that is left to do
        } finally {
          c.disconnect();
        }
      }),
    );
  }
}

// ioredis is loaded on first use: a gateway without a Redis-backed limit should not carry it
// (a few MiB of RSS for every process; issue #9's memory goal).
let ioredis: typeof import('ioredis') | undefined;
function loadIoredis(): typeof import('ioredis') {
  return (ioredis ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis'));
}
