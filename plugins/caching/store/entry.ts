// What one stored response is, and the one storage interface the memory, disk and hybrid
// backends share (docs/cache.md "Storage").
import type { Freshness } from '../policy.ts';

/** Everything about a stored response but its body (what the disk backend keeps as metadata). */
export interface EntryMeta extends Freshness {
  /** variant key (primary key + Vary'd header values) */
  key: string;
  /** resource key (method, host, normalised path and query) */
  primary: string;
  host: string;
  /** normalised path with the normalised query: what purges match */
  target: string;
  status: number;
  headers: Record<string, string | string[]>;
  /** request headers this response varies on (lower-case, sorted) */
  vary: string[];
}

export interface StoredResponse extends EntryMeta {
  body: Buffer;
}

/** Bytes an entry is charged against the memory budget: body + headers + a fixed overhead. */
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

/**
 * A body being stored while it streams to the client. write() never blocks the relay (the
 * backend queues); commit() stores the entry once the body is complete (false: nothing was
 * stored); abort() throws away what was written (client gone, upstream failed, over the limit).
 */
export interface EntryWriter {
  write(chunk: Buffer): void;
  commit(): Promise<boolean>;
  abort(): void;
}

export interface CacheBackend {
  readonly kind: 'memory' | 'disk' | 'hybrid';
  /** the Vary names recorded for a resource (undefined: nothing stored for it) */
  varyOf(primary: string): Awaitable<string[] | undefined>;
  get(key: string): Awaitable<StoredResponse | undefined>;
  /** stores a whole entry (refreshes); false when it is over the size limits (nothing stored) */
  set(entry: StoredResponse): Awaitable<boolean>;
  /** starts storing a streamed body */
  begin(meta: EntryMeta): EntryWriter;
  /** removes the entries whose purge target matches; returns how many */
  purge(match: (target: string, host: string) => boolean): Awaitable<number>;
  stats(): BackendStats;
  /** per tier (hybrid: memory and disk) */
  tiers(): Partial<Record<'memory' | 'disk', BackendStats>>;
  close(): Awaitable<void>;
}

/** Eviction/size notifications the metrics listen to. */
export interface BackendEvents {
  onEvict?(count: number): void;
  onSize?(tier: 'memory' | 'disk', stats: BackendStats): void;
}

/** The writer of a backend that stores whole entries: collects the chunks, stores them at the end. */
export function bufferingWriter(meta: EntryMeta, store: (entry: StoredResponse) => Awaitable<boolean>): EntryWriter {
  let chunks: Buffer[] | undefined = [];
  let size = 0;
  return {
    write(chunk) {
      if (!chunks || chunk.length === 0) return;
      chunks.push(chunk);
      size += chunk.length;
    },
    async commit() {
      if (!chunks) return false;
      const body = Buffer.concat(chunks, size);
      chunks = undefined;
      return store({ ...meta, body });
    },
    abort() {
      chunks = undefined;
    },
  };
}

/**
 * Resources and their variants: which Vary names a resource (primary key) was stored with and
 * which variant keys exist, so a lookup can build the variant key and a new Vary drops the old
 * variants. Shared by the memory and disk indexes.
 */
export class Variants {
  private readonly resources = new Map<string, { vary: string[]; keys: Set<string> }>();

  varyOf(primary: string): string[] | undefined {
    return this.resources.get(primary)?.vary;
  }

  /** Records `key` for `primary`; returns the variant keys made unreachable by a changed Vary. */
  add(primary: string, key: string, vary: string[]): string[] {
    let r = this.resources.get(primary);
    let dropped: string[] = [];
    if (r && r.vary.join('\n') !== vary.join('\n')) {
      dropped = [...r.keys].filter((k) => k !== key);
      r = undefined;
    }
    if (!r) {
      r = { vary, keys: new Set() };
      this.resources.set(primary, r);
    }
    r.keys.add(key);
    return dropped;
  }

  remove(primary: string, key: string): void {
    const r = this.resources.get(primary);
    if (!r) return;
    r.keys.delete(key);
    if (r.keys.size === 0) this.resources.delete(primary);
  }

  clear(): void {
    this.resources.clear();
  }
}
