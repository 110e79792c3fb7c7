// What one stored response is, and the storage interface the memory, disk and hybrid backends share.
import type { Freshness } from './policy.ts';

export interface StoredResponse extends Freshness {
  /** variant key (primary key + Vary'd header values) */
  key: string;
  /** resource key (method, host, normalised path and query) */
  primary: string;
  host: string;
  /** normalised path with the normalised query: what purges match */
  target: string;
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** request headers this response varies on (lower-case, sorted) */
  vary: string[];
}

/** Bytes an entry is charged against the budget: body + headers + a fixed overhead. */
export function entrySize(e: StoredResponse): number {
  let n = e.body.length + e.key.length + e.primary.length + 256;
  for (const k in e.headers) {
    const v = e.headers[k]!;
    n += k.length + (Array.isArray(v) ? v.reduce((a, x) => a + x.length + 4, 0) : v.length) + 4;
  }
  return n;
}

export interface BackendStats {
  entries: number;
  bytes: number;
}

export type Awaitable<T> = T | Promise<T>;

export interface CacheBackend {
  readonly kind: 'memory' | 'disk' | 'hybrid';
  /** the Vary names recorded for a resource (undefined: nothing stored for it) */
  varyOf(primary: string): Awaitable<string[] | undefined>;
  get(key: string): Awaitable<StoredResponse | undefined>;
  /** false when the entry is over the size limits (nothing stored) */
  set(entry: StoredResponse): Awaitable<boolean>;
  /** removes the entries whose purge target matches; returns how many */
  purge(match: (target: string, host: string) => boolean): Awaitable<number>;
  stats(): BackendStats;
  close(): Awaitable<void>;
}

/** Eviction/size notifications the metrics listen to. */
export interface BackendEvents {
  onEvict?(count: number): void;
  onSize?(tier: 'memory' | 'disk', stats: BackendStats): void;
}
