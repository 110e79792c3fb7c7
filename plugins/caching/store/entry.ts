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

/** A body: one Buffer, or (memory tier) the arena chunks holding it, in order. */
export type Body = Buffer | readonly Buffer[];

/**
 * Keeps a memory entry's arena chunks from being reused while its body is in use (a response
 * still being written to a client, a stale copy held across an upstream round trip): hold()
 * before using the body, call what it returns once done. An entry evicted meanwhile gives its
 * chunks back after the last release (they still count against the budget until then).
 */
export interface BodyLease {
  hold(): () => void;
}

export interface StoredResponse extends EntryMeta {
  body: Body;
  /** set when the body lives in the memory tier's arena: hold it while the body is in use */
  lease?: BodyLease;
}

export function bodyLength(b: Body): number {
  if (Buffer.isBuffer(b)) return b.length;
  let n = 0;
  for (const c of b as readonly Buffer[]) n += c.length;
  return n;
}

/** The body as a list of Buffers (no copy). */
export function bodyParts(b: Body): readonly Buffer[] {
  return Buffer.isBuffer(b) ? [b] : (b as readonly Buffer[]);
}

/**
 * What a memory entry costs besides its body and the strings and header objects entrySize counts:
 * the entry and policy objects, the Buffer / ArrayBuffer objects and the body's allocation, the
 * LRU slots and the variants record. Measured (heap + external after GC, 20,000 entries stored
 * with an origin's 9 response headers): 1,662 B per entry for a 20 B body, 18,009 B for 16 KiB;
 * entrySize charges 2,025 B and 18,395 B. test/unit/caching/store.test.ts checks that the charge
 * stays at or above the measured cost.
 */
export const ENTRY_OVERHEAD_BYTES = 384;
/** V8 bytes per string besides its characters (map, hash, length; rounded up). */
const STRING_OVERHEAD = 16;
/** Bytes per property slot of a header object (key, value, details in a dictionary). */
const SLOT_BYTES = 16;

function textBytes(s: string): number {
  return s.length + STRING_OVERHEAD;
}

/** A header (or parsed Cache-Control) object: its names, values and slots. */
function headerBytes(h: Readonly<Record<string, unknown>> | null | undefined): number {
  if (!h) return 0;
  let n = 64;
  for (const k in h) {
    const v = h[k];
    n += textBytes(k) + SLOT_BYTES;
    if (typeof v === 'string') n += textBytes(v);
    else if (Array.isArray(v)) for (const x of v as unknown[]) n += textBytes(String(x)) + 8;
    else n += 16;
  }
  return n;
}

/**
 * Bytes an entry is charged against the memory budget: the body, every string the entry holds
 * (keys, host, purge target, Vary names), its headers, what the http-cache-semantics policy object
 * keeps beside them (its own response header object when it is not the entry's, request headers,
 * parsed Cache-Control), and a fixed overhead for the objects themselves.
 */
export function entrySize(e: StoredResponse): number {
  return metaSize(e) + bodyLength(e.body);
}

/** entrySize without the body (the memory tier charges an arena body by its chunks). */
export function metaSize(e: EntryMeta): number {
  let n = ENTRY_OVERHEAD_BYTES;
  n += textBytes(e.key) + (e.primary === e.key ? 0 : textBytes(e.primary)) + textBytes(e.host) + textBytes(e.target);
  for (const v of e.vary) n += textBytes(v);
  n += headerBytes(e.headers);
  const p = e.policy;
  if (p.resh !== e.headers) n += headerBytes(p.resh);
  n += headerBytes(p.rescc) + headerBytes(p.reqh) + headerBytes(p.reqcc);
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

/** Synchronous lookups of the entries held in memory (the quick hit path, filter.ts). */
export interface MemoryLookup {
  varyOf(primary: string): string[] | undefined;
  get(key: string): StoredResponse | undefined;
}

export interface CacheBackend {
  readonly kind: 'memory' | 'disk' | 'hybrid';
  /** the tier that answers without I/O: memory, hybrid's memory tier; none for disk */
  readonly inMemory: MemoryLookup | undefined;
  /** the Vary names recorded for a resource (undefined: nothing stored for it) */
  varyOf(primary: string): Awaitable<string[] | undefined>;
  get(key: string): Awaitable<StoredResponse | undefined>;
  /** stores a whole entry (refreshes); false when it is over the size limits (nothing stored) */
  set(entry: StoredResponse): Awaitable<boolean>;
  /** starts storing a streamed body (`expectedBytes`: its Content-Length, when there is one) */
  begin(meta: EntryMeta, expectedBytes?: number): EntryWriter;
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
