// In-memory backend: an LRU (lru-cache) with a byte budget. Variants of one resource are found
// through a per-resource record of its Vary names and variant keys. What counts against the
// budget: every stored entry at entrySize() (body, strings, headers, per-entry overhead) and the
// bodies being stored while they stream (reserved chunk by chunk: room is made by evicting the
// least recently used entries; when bodies in flight alone would pass the budget, the new store
// is refused).
import { LRUCache } from 'lru-cache';
import { entrySize, Variants, type BackendEvents, type BackendStats, type CacheBackend, type EntryMeta, type EntryWriter, type MemoryLookup, type StoredResponse } from './entry.ts';

export class MemoryBackend implements CacheBackend {
  readonly kind = 'memory' as const;
  readonly inMemory: MemoryLookup = this;
  private readonly lru: LRUCache<string, StoredResponse>;
  private readonly variants = new Variants();
  private readonly budget: number;
  /** bytes of bodies being stored right now */
  private reserved = 0;
  /** set while delete()/clear() run: those removals are not evictions */
  private deleting = false;

  constructor(
    budget: number,
    private readonly events: BackendEvents = {},
  ) {
    this.budget = Math.max(1, budget);
    this.lru = new LRUCache<string, StoredResponse>({
      maxSize: this.budget,
      maxEntrySize: this.budget,
      sizeCalculation: entrySize,
      dispose: (value, key, reason) => {
        // a 'set' dispose is a replacement of the same key: the resource still has it
        if (reason !== 'set') this.variants.remove(value.primary, key);
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

  set(entry: StoredResponse): boolean {
    const body = entry.body;
    // A body that shares its memory (a slice of a pooled slab or of a file read with metadata
    // behind it) would keep more alive than it is charged for: the stored one owns exactly its bytes.
    if (body.byteOffset !== 0 || body.buffer.byteLength !== body.length) entry = { ...entry, body: ownCopy([body], body.length) };
    if (entrySize(entry) > this.budget) return false;
    // A new Vary for the resource makes its old variants unreachable: drop them.
    for (const k of this.variants.add(entry.primary, entry.key, entry.vary)) this.delete(k);
    this.lru.set(entry.key, entry);
    this.fit();
    // lru-cache refuses silently when the entry alone is larger than maxEntrySize
    const stored = this.lru.has(entry.key);
    if (!stored) this.variants.remove(entry.primary, entry.key);
    this.events.onSize?.('memory', this.stats());
    return stored;
  }

  begin(meta: EntryMeta): EntryWriter {
    return new MemoryWriter(this, meta);
  }

  /**
   * Room for `n` more bytes of a body being stored: evicts least recently used entries until the
   * stored entries and the bodies in flight fit the budget. False when the bodies in flight alone
   * would not (the caller drops its store).
   */
  reserve(n: number): boolean {
    if (this.reserved + n > this.budget) return false;
    this.reserved += n;
    this.fit();
    return true;
  }

  release(n: number): void {
    this.reserved -= n;
  }

  /** Bytes counted against the budget now: stored entries plus bodies being stored. */
  get accountedBytes(): number {
    return this.lru.calculatedSize + this.reserved;
  }

  private fit(): void {
    while (this.lru.size > 0 && this.lru.calculatedSize + this.reserved > this.budget) this.lru.pop();
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

/** One exact-size, unpooled Buffer holding `chunks` (`size` bytes in all). */
function ownCopy(chunks: readonly Buffer[], size: number): Buffer {
  const out = Buffer.allocUnsafeSlow(size);
  let at = 0;
  for (const c of chunks) at += c.copy(out, at);
  return out;
}

/**
 * A body on its way into the memory tier: the chunks relayed to the client are kept (no copy
 * while streaming) and reserved against the budget as they arrive; commit copies them into the
 * stored body and hands the reservation over to the entry.
 */
class MemoryWriter implements EntryWriter {
  private chunks: Buffer[] | undefined = [];
  private size = 0;

  constructor(
    private readonly store: MemoryBackend,
    private readonly meta: EntryMeta,
  ) {}

  write(chunk: Buffer): void {
    if (!this.chunks || chunk.length === 0) return;
    if (!this.store.reserve(chunk.length)) {
      // the bodies being stored already fill the budget: this one is not stored
      this.abort();
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  async commit(): Promise<boolean> {
    const chunks = this.chunks;
    if (!chunks) return false;
    this.chunks = undefined;
    const body = ownCopy(chunks, this.size);
    this.store.release(this.size);
    return this.store.set({ ...this.meta, body });
  }

  abort(): void {
    if (!this.chunks) return;
    this.chunks = undefined;
    this.store.release(this.size);
  }
}
