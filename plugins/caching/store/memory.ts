// In-memory backend: an LRU (lru-cache) with a byte budget. Variants of one resource are found
// through a per-resource record of its Vary names and variant keys.
import { LRUCache } from 'lru-cache';
import { bufferingWriter, entrySize, Variants, type BackendEvents, type BackendStats, type CacheBackend, type EntryMeta, type EntryWriter, type StoredResponse } from './entry.ts';

export class MemoryBackend implements CacheBackend {
  readonly kind = 'memory' as const;
  private readonly lru: LRUCache<string, StoredResponse>;
  private readonly variants = new Variants();
  /** set while delete()/clear() run: those removals are not evictions */
  private deleting = false;

  constructor(
    budget: number,
    private readonly events: BackendEvents = {},
  ) {
    this.lru = new LRUCache<string, StoredResponse>({
      maxSize: Math.max(1, budget),
      maxEntrySize: Math.max(1, budget),
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
    if (entrySize(entry) > this.lru.maxSize) return false;
    // A new Vary for the resource makes its old variants unreachable: drop them.
    for (const k of this.variants.add(entry.primary, entry.key, entry.vary)) this.delete(k);
    this.lru.set(entry.key, entry);
    // lru-cache refuses silently when the entry alone is larger than maxEntrySize
    const stored = this.lru.has(entry.key);
    if (!stored) this.variants.remove(entry.primary, entry.key);
    this.events.onSize?.('memory', this.stats());
    return stored;
  }

  begin(meta: EntryMeta): EntryWriter {
    return bufferingWriter(meta, (e) => this.set(e));
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
