// In-memory backend: an LRU (lru-cache) with a byte budget, bodies in an arena of fixed-size chunks
// (arena.ts) that evicted bodies give back for reuse. Variants of one resource are found through a
// per-resource record of its Vary names and variant keys. What counts against the budget: every
// stored entry (its metadata at metaSize(), its chunks at CHUNK_COST, a small body's own bytes), the
// chunks of bodies being stored while they stream (taken as they are needed, or all at once when
// the size is known: room is made by evicting the least recently used entries; when bodies in
// flight alone would pass the budget, the new store is refused), and the chunks of evicted entries
// still being written to a client (docs/cache.md "Memory budget").
import { LRUCache } from 'lru-cache';
import { Arena, CHUNK_BYTES, CHUNK_COST, runView, SLAB_CHUNKS, type Run } from './arena.ts';
import { bodyLength, bodyParts, metaSize, Variants, type BackendEvents, type BackendStats, type Body, type BodyLease, type CacheBackend, type EntryMeta, type EntryWriter, type MemoryLookup, type StoredResponse } from './entry.ts';

/** A body shorter than this is kept as its own exact-size Buffer rather than in a chunk it would mostly leave empty. */
export const SMALL_BODY_BYTES = CHUNK_BYTES / 2;

const NO_BYTES = Buffer.alloc(0);
/** What an arena body costs besides its chunks: the lease, its run list, its release function. */
const LEASE_BYTES = 512;

interface MemoryEntry extends StoredResponse {
  lease?: ChunkLease;
}

/**
 * The arena runs of one stored body and how many are using them. When the entry leaves the
 * store (evicted, replaced, purged) its chunks go back to the arena at once, or, while a response
 * is still being written from them, after the last release (counted as lingering until then).
 */
class ChunkLease implements BodyLease {
  private readers = 0;
  private state: 'stored' | 'lingering' | 'returned' = 'stored';
  readonly cost: number;

  constructor(
    private readonly owner: MemoryBackend,
    readonly runs: readonly Run[],
    chunks: number,
  ) {
    this.cost = LEASE_BYTES + chunks * CHUNK_COST;
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

/** What a body of `n` bytes is charged in the memory tier: its own bytes when small, else its chunks. */
export function bodyCharge(n: number): number {
  return n < SMALL_BODY_BYTES ? n : LEASE_BYTES + Math.ceil(n / CHUNK_BYTES) * CHUNK_COST;
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
    const w = new MemoryWriter(this, meta, bodyLength(body));
    for (const part of bodyParts(body)) w.write(part);
    return w.finish();
  }

  /** @param expectedBytes the body's size when known (Content-Length): taken as one run up front */
  begin(meta: EntryMeta, expectedBytes?: number): EntryWriter {
    return new MemoryWriter(this, meta, expectedBytes);
  }

  /**
   * `k` more chunks for a body being stored, reserved against the budget: a run of them (or, with
   * `after`, the chunk right after that run, which then grows). Undefined when there is no room
   * (see reserve) or, for a run, no free run of that length.
   */
  take(k: number, after?: Run): Run | undefined {
    if (!this.reserve(k * CHUNK_COST)) return undefined;
    const r = after ? (this.arena.extend(after) ? after : undefined) : this.arena.take(k);
    if (!r) this.reserved -= k * CHUNK_COST;
    return r;
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

  /** Runs of an abandoned body go back. */
  untake(runs: readonly Run[]): void {
    for (const r of runs) this.reserved -= r.count * CHUNK_COST;
    this.arena.release(runs);
  }

  /** An evicted entry's chunks are still being written to a client. */
  linger(l: ChunkLease): void {
    this.lingering += l.cost;
  }

  giveBack(l: ChunkLease, lingered: boolean): void {
    if (lingered) this.lingering -= l.cost;
    this.arena.release(l.runs);
  }

  /**
   * A complete body of `size` bytes, in `runs` (in order, the last one perhaps longer than needed),
   * becomes the entry for `meta`: one Buffer view per run.
   */
  install(meta: EntryMeta, runs: Run[], size: number): boolean {
    let taken = 0;
    for (const r of runs) taken += r.count;
    this.reserved -= taken * CHUNK_COST;
    // chunks taken up front and not needed (a body shorter than announced) go back
    const need = Math.ceil(size / CHUNK_BYTES);
    if (taken > need) {
      const last = runs[runs.length - 1]!;
      this.arena.trim(last, taken - need);
      if (last.count === 0) runs.pop();
    }
    const parts: Buffer[] = [];
    let left = size;
    for (const r of runs) {
      const n = Math.min(left, r.count * CHUNK_BYTES);
      parts.push(runView(r, n));
      left -= n;
    }
    const body: Body = parts.length === 0 ? NO_BYTES : parts.length === 1 ? parts[0]! : parts;
    const lease = need > 0 ? new ChunkLease(this, runs, need) : undefined;
    return this.add(meta, body, lease, metaSize(meta) + (lease?.cost ?? 0));
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
 * A body on its way into the memory tier. Once it passes SMALL_BODY_BYTES, what the relay passes
 * is copied into arena chunks as it arrives (the upstream's buffers are not kept): into a run taken
 * up front when the size was announced, else into a run that grows a chunk at a time (or a new run
 * where it cannot). Below that the pieces are kept as they are and copied into one small Buffer at
 * the end. Chunks count against the budget as they are taken; commit hands them to the entry.
 */
class MemoryWriter implements EntryWriter {
  private runs: Run[] | undefined = [];
  /** bytes written into the runs */
  private size = 0;
  /** bytes the runs can take */
  private room = 0;
  /** the first pieces, while the body is still small */
  private pieces: Buffer[] = [];
  private piecesBytes = 0;

  constructor(
    private readonly store: MemoryBackend,
    private readonly meta: EntryMeta,
    private readonly expectedBytes?: number,
  ) {}

  write(data: Buffer): void {
    if (!this.runs || data.length === 0) return;
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
      const expected = this.expectedBytes ?? 0;
      // the announced size in one run, when the arena has one (else chunk by chunk, below)
      if (expected >= SMALL_BODY_BYTES) this.grow(Math.min(SLAB_CHUNKS, Math.ceil(expected / CHUNK_BYTES)));
      for (const p of pieces) if (!this.copy(p)) return;
    }
    this.copy(data);
  }

  /** Adds a run of `k` chunks (false: none free in one piece, or no room in the budget). */
  private grow(k: number): boolean {
    const r = this.store.take(k);
    if (!r) return false;
    this.runs!.push(r);
    this.room += r.count * CHUNK_BYTES;
    return true;
  }

  private copy(data: Buffer): boolean {
    const runs = this.runs;
    if (!runs) return false;
    let at = 0;
    while (at < data.length) {
      if (this.size === this.room) {
        // one more chunk: right after the last run when it is free, else wherever one is
        const last = runs[runs.length - 1];
        if (last && this.store.take(1, last)) this.room += CHUNK_BYTES;
        else if (!this.grow(1)) {
          // the bodies being stored already fill the budget: this one is not stored
          this.abort();
          return false;
        }
      }
      // where `size` falls: the last run holds the bytes after what the runs before it hold
      const r = runs[runs.length - 1]!;
      const runStart = this.room - r.count * CHUNK_BYTES;
      const n = data.copy(r.slab.bytes, r.start * CHUNK_BYTES + (this.size - runStart), at, Math.min(data.length, at + (this.room - this.size)));
      at += n;
      this.size += n;
    }
    return true;
  }

  commit(): Promise<boolean> {
    return Promise.resolve(this.finish());
  }

  finish(): boolean {
    const runs = this.runs;
    if (!runs) return false;
    this.runs = undefined;
    if (this.pieces === NO_PIECES) return this.store.install(this.meta, runs, this.size);
    this.store.unreserve(this.piecesBytes);
    return this.store.installSmall(this.meta, ownCopy(this.pieces, this.piecesBytes));
  }

  abort(): void {
    const runs = this.runs;
    if (!runs) return;
    this.runs = undefined;
    this.store.unreserve(this.piecesBytes);
    this.pieces = NO_PIECES;
    this.store.untake(runs);
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
