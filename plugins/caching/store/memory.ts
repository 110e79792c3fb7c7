// In-memory backend: an LRU (lru-cache) with a byte budget, bodies in an arena of fixed-size chunks
// (arena.ts) that evicted bodies give back for reuse. Variants of one resource are found through a
// per-resource record of its Vary names and variant keys. What counts against the budget: every
// stored entry (its metadata at metaSize(), its chunks at CHUNK_COST, a small body's own bytes), the
// chunks of bodies being stored while they stream (taken chunk by chunk: room is made by evicting
// the least recently used entries; when bodies in flight alone would pass the budget, the new store
// is refused), and the chunks of evicted entries still being written to a client (docs/cache.md
// "Memory budget").
import { LRUCache } from 'lru-cache';
import { Arena, CHUNK_BYTES, CHUNK_COST } from './arena.ts';
import { bodyLength, bodyParts, metaSize, Variants, type BackendEvents, type BackendStats, type Body, type BodyLease, type CacheBackend, type EntryMeta, type EntryWriter, type MemoryLookup, type StoredResponse } from './entry.ts';

/**
 * A body (or a body's last part) shorter than this is kept as its own exact-size Buffer rather than
 * in a chunk, which would leave most of the chunk unused.
 */
export const SMALL_BODY_BYTES = CHUNK_BYTES / 2;

const NO_BYTES = Buffer.alloc(0);
/** What an arena body costs besides its chunks: the lease, its chunk list, its release function, the last part's view. */
const LEASE_BYTES = 384;

interface MemoryEntry extends StoredResponse {
  lease?: ChunkLease;
}

/**
 * The arena chunks of one stored body and how many are using them. When the entry leaves the
 * store (evicted, replaced, purged) its chunks go back to the arena at once, or, while a response
 * is still being written from them, after the last release (counted as lingering until then).
 */
class ChunkLease implements BodyLease {
  private readers = 0;
  private state: 'stored' | 'lingering' | 'returned' = 'stored';
  readonly cost: number;

  constructor(
    private readonly owner: MemoryBackend,
    readonly chunks: readonly Buffer[],
  ) {
    this.cost = LEASE_BYTES + chunks.length * CHUNK_COST;
  }

  private readonly release = (): void => {
    if (--this.readers === 0 && this.state === 'lingering') {
      this.state = 'returned';
      this.owner.giveBack(this, true);
    }
  };

  hold(): () => void {
    this.readers++;
    return this.release;
  }

  /** the entry left the store */
  retire(): void {
    if (this.state !== 'stored') return;
    if (this.readers > 0) {
      this.state = 'lingering';
      this.owner.linger(this);
    } else {
      this.state = 'returned';
      this.owner.giveBack(this, false);
    }
  }
}

/** What a body of `n` bytes is charged in the memory tier (see MemoryWriter). */
export function bodyCharge(n: number): number {
  if (n < SMALL_BODY_BYTES) return n;
  const tail = n % CHUNK_BYTES;
  const chunks = Math.floor(n / CHUNK_BYTES) + (tail >= SMALL_BODY_BYTES ? 1 : 0);
  return (chunks > 0 ? LEASE_BYTES : 0) + chunks * CHUNK_COST + (tail < SMALL_BODY_BYTES ? tail : 0);
}

export class MemoryBackend implements CacheBackend {
  readonly kind = 'memory' as const;
  readonly inMemory: MemoryLookup = this;
  readonly arena: Arena;
  private readonly lru: LRUCache<string, MemoryEntry>;
  private readonly variants = new Variants();
  private readonly budget: number;
  /** chunk bytes taken by bodies being stored right now */
  private reserved = 0;
  /** chunk bytes of evicted entries still being written to a client */
  private lingering = 0;
  /** set while delete()/clear() run: those removals are not evictions */
  private deleting = false;

  constructor(
    budget: number,
    private readonly events: BackendEvents = {},
  ) {
    this.budget = Math.max(1, budget);
    this.arena = Arena.forBudget(this.budget);
    this.lru = new LRUCache<string, MemoryEntry>({
      maxSize: this.budget,
      maxEntrySize: this.budget,
      dispose: (value, key, reason) => {
        // a 'set' dispose is a replacement of the same key: the resource still has it
        if (reason !== 'set') this.variants.remove(value.primary, key);
        value.lease?.retire();
        if (reason === 'evict' && !this.deleting) this.events.onEvict?.(1);
      },
    });
  }

  varyOf(primary: string): string[] | undefined {
    return this.variants.varyOf(primary);
  }

  get(key: string): StoredResponse | undefined {
    return this.lru.get(key);
  }

  /** Reads without touching the LRU order. */
  peek(key: string): StoredResponse | undefined {
    return this.lru.peek(key);
  }

  /** What the entry under `key` is charged against the budget (undefined: not stored). */
  charged(key: string): number | undefined {
    return this.lru.info(key)?.size;
  }

  /** Stores a whole entry: its body is copied into the arena (whatever it was a view of). */
  set(entry: StoredResponse): boolean {
    const { body, lease: _lease, ...meta } = entry;
    if (metaSize(meta) + bodyCharge(bodyLength(body)) > this.budget) return false;
    const w = new MemoryWriter(this, meta);
    for (const part of bodyParts(body)) w.write(part);
    return w.finish();
  }

  begin(meta: EntryMeta): EntryWriter {
    return new MemoryWriter(this, meta);
  }

  /** A chunk for a body being stored, reserved against the budget (undefined: no room, see reserve). */
  take(): Buffer | undefined {
    if (!this.reserve(CHUNK_COST)) return undefined;
    const c = this.arena.alloc();
    if (!c) this.reserved -= CHUNK_COST;
    return c;
  }

  /**
   * Room for `n` more bytes of a body being stored: evicts least recently used entries until the
   * stored entries, the bodies in flight and the lingering chunks fit. False when they cannot
   * (the caller drops its store).
   */
  reserve(n: number): boolean {
    if (this.reserved + this.lingering + n > this.budget) return false;
    this.reserved += n;
    this.fit();
    // evicted entries still being written to clients linger: their chunks are not free yet
    if (this.accountedBytes <= this.budget) return true;
    this.reserved -= n;
    return false;
  }

  unreserve(n: number): void {
    this.reserved -= n;
  }

  /** Chunks of an abandoned body go back. */
  untake(chunks: readonly Buffer[]): void {
    this.reserved -= chunks.length * CHUNK_COST;
    this.arena.release(chunks);
  }

  /** An evicted entry's chunks are still being written to a client. */
  linger(l: ChunkLease): void {
    this.lingering += l.cost;
  }

  giveBack(l: ChunkLease, lingered: boolean): void {
    if (lingered) this.lingering -= l.cost;
    this.arena.release(l.chunks);
  }

  /**
   * A complete body (its chunks, `fill` bytes used in the last one) becomes the entry for `meta`.
   * A short last part is copied into its own Buffer and its chunk given back.
   */
  install(meta: EntryMeta, chunks: Buffer[], fill: number): boolean {
    this.reserved -= chunks.length * CHUNK_COST;
    let tail: Buffer | undefined;
    if (chunks.length > 0 && fill < SMALL_BODY_BYTES) {
      const last = chunks.pop()!;
      tail = Buffer.allocUnsafeSlow(fill);
      last.copy(tail, 0, 0, fill);
      this.arena.release([last]);
    }
    const parts: Buffer[] = chunks.slice();
    if (tail) parts.push(tail);
    else if (parts.length > 0 && fill < CHUNK_BYTES) parts[parts.length - 1] = parts[parts.length - 1]!.subarray(0, fill);
    const body: Body = parts.length === 0 ? NO_BYTES : parts.length === 1 ? parts[0]! : parts;
    // (slice: exact-length arrays; the writer's grew by push and has spare capacity)
    const lease = chunks.length > 0 ? new ChunkLease(this, chunks.slice()) : undefined;
    return this.add(meta, body, lease, metaSize(meta) + (lease?.cost ?? 0) + (tail?.length ?? 0));
  }

  /** A small body (its own exact-size Buffer) becomes the entry for `meta`. */
  installSmall(meta: EntryMeta, body: Buffer): boolean {
    return this.add(meta, body, undefined, metaSize(meta) + body.length);
  }

  private add(meta: EntryMeta, body: Body, lease: ChunkLease | undefined, size: number): boolean {
    if (size > this.budget) {
      lease?.retire();
      return false;
    }
    // A new Vary for the resource makes its old variants unreachable: drop them.
    for (const k of this.variants.add(meta.primary, meta.key, meta.vary)) this.delete(k);
    const e: MemoryEntry = lease ? { ...meta, body, lease } : { ...meta, body };
    this.lru.set(meta.key, e, { size });
    this.fit();
    const stored = this.lru.peek(meta.key) === e;
    if (!stored) {
      this.variants.remove(meta.primary, meta.key);
      lease?.retire();
    }
    this.events.onSize?.('memory', this.stats());
    return stored;
  }

  /** Bytes counted against the budget now: stored entries, bodies being stored, lingering chunks. */
  get accountedBytes(): number {
    return this.lru.calculatedSize + this.reserved + this.lingering;
  }

  private fit(): void {
    while (this.lru.size > 0 && this.accountedBytes > this.budget) this.lru.pop();
  }

  delete(key: string): void {
    this.deleting = true;
    try {
      this.lru.delete(key);
    } finally {
      this.deleting = false;
    }
  }

  purge(match: (target: string, host: string) => boolean): number {
    const doomed: string[] = [];
    for (const [key, e] of this.lru.entries()) if (match(e.target, e.host)) doomed.push(key);
    for (const k of doomed) this.delete(k);
    this.events.onSize?.('memory', this.stats());
    return doomed.length;
  }

  stats(): BackendStats {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }

  tiers(): { memory: BackendStats } {
    return { memory: this.stats() };
  }

  clear(): void {
    this.deleting = true;
    try {
      this.lru.clear();
    } finally {
      this.deleting = false;
    }
    this.variants.clear();
  }

  close(): void {
    this.clear();
  }
}

/**
 * A body on its way into the memory tier. Once it passes SMALL_BODY_BYTES, each chunk relayed to
 * the client is copied into arena chunks as it arrives (the upstream's buffers are not kept),
 * taken against the budget one chunk at a time; below that the pieces are kept as they are and
 * copied into one small Buffer at the end. Commit hands the chunks over to the entry.
 */
class MemoryWriter implements EntryWriter {
  private chunks: Buffer[] | undefined = [];
  /** bytes used in the last chunk */
  private fill = CHUNK_BYTES;
  /** the first pieces, while the body is still small */
  private pieces: Buffer[] = [];
  private piecesBytes = 0;

  constructor(
    private readonly store: MemoryBackend,
    private readonly meta: EntryMeta,
  ) {}

  write(data: Buffer): void {
    if (!this.chunks || data.length === 0) return;
    if (this.pieces !== NO_PIECES) {
      if (this.piecesBytes + data.length < SMALL_BODY_BYTES) {
        if (!this.store.reserve(data.length)) return this.abort();
        this.pieces.push(data);
        this.piecesBytes += data.length;
        return;
      }
      // no longer small: what came so far goes into chunks too
      const pieces = this.pieces;
      this.pieces = NO_PIECES;
      this.store.unreserve(this.piecesBytes);
      this.piecesBytes = 0;
      for (const p of pieces) if (!this.copy(p)) return;
    }
    this.copy(data);
  }

  private copy(data: Buffer): boolean {
    const chunks = this.chunks;
    if (!chunks) return false;
    let at = 0;
    while (at < data.length) {
      if (this.fill === CHUNK_BYTES) {
        const c = this.store.take();
        if (!c) {
          // the bodies being stored already fill the budget: this one is not stored
          this.abort();
          return false;
        }
        chunks.push(c);
        this.fill = 0;
      }
      const n = data.copy(chunks[chunks.length - 1]!, this.fill, at);
      at += n;
      this.fill += n;
    }
    return true;
  }

  commit(): Promise<boolean> {
    return Promise.resolve(this.finish());
  }

  finish(): boolean {
    const chunks = this.chunks;
    if (!chunks) return false;
    this.chunks = undefined;
    if (this.pieces === NO_PIECES) return this.store.install(this.meta, chunks, this.fill);
    this.store.unreserve(this.piecesBytes);
    return this.store.installSmall(this.meta, ownCopy(this.pieces, this.piecesBytes));
  }

  abort(): void {
    const chunks = this.chunks;
    if (!chunks) return;
    this.chunks = undefined;
    this.store.unreserve(this.piecesBytes);
    this.pieces = NO_PIECES;
    this.store.untake(chunks);
  }
}

const NO_PIECES: Buffer[] = [];

/** One exact-size, unpooled Buffer holding `chunks` (`size` bytes in all). */
function ownCopy(chunks: readonly Buffer[], size: number): Buffer {
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const c of chunks) at += c.copy(out, at);
  return out;
}
