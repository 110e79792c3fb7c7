// In-memory backend: an LRU (lru-cache) with a byte budget. Variants of one resource are found
// through a per-resource record of its Vary names and variant keys.
import { LRUCache } from 'lru-cache';
import { entrySize, type BackendEvents, type BackendStats, type CacheBackend, type StoredResponse } from './entry.ts';

interface Resource {
  vary: string[];
  keys: Set<string>;
}

export class MemoryBackend implements CacheBackend {
  readonly kind = 'memory' as const;
  private readonly lru: LRUCache<string, StoredResponse>;
  private readonly resources = new Map<string, Resource>();
  /** set while purge() deletes: those removals are not evictions */
  private purging = false;

  constructor(
    budget: number,
    private readonly events: BackendEvents = {},
  ) {
    this.lru = new LRUCache<string, StoredResponse>({
      maxSize: Math.max(1, budget),
      maxEntrySize: Math.max(1, budget),
      sizeCalculation: entrySize,
      dispose: (value, key, reason) => {
        const r = this.resources.get(value.primary);
        // a 'set' dispose is a replacement of the same key: the resource still has it
        if (r && reason !== 'set') {
          r.keys.delete(key);
          if (r.keys.size === 0) this.resources.delete(value.primary);
        }
        if (reason === 'evict' && !this.purging) this.events.onEvict?.(1);
      },
    });
  }

  varyOf(primary: string): string[] | undefined {
    return this.resources.get(primary)?.vary;
  }

  get(key: string): StoredResponse | undefined {
    return this.lru.get(key);
  }

  /** Reads without touching the LRU order (the hybrid backend's write-through check). */
  peek(key: string): StoredResponse | undefined {
    return this.lru.peek(key);
  }

  set(entry: StoredResponse): boolean {
    if (entrySize(entry) > this.lru.maxSize) return false;
    let r = this.resources.get(entry.primary);
    // A new Vary for the resource makes its old variants unreachable: drop them.
    if (r && r.vary.join('\n') !== entry.vary.join('\n')) {
      for (const k of [...r.keys]) this.lru.delete(k);
      r = undefined;
    }
    if (!r) {
      r = { vary: entry.vary, keys: new Set() };
      this.resources.set(entry.primary, r);
    }
    r.keys.add(entry.key);
    this.lru.set(entry.key, entry);
    // lru-cache refuses silently when the entry alone is larger than maxEntrySize
    const stored = this.lru.has(entry.key);
    if (!stored) {
      r.keys.delete(entry.key);
      if (r.keys.size === 0) this.resources.delete(entry.primary);
    }
    this.events.onSize?.('memory', this.stats());
    return stored;
  }

  delete(key: string): void {
    this.purging = true;
    try {
      this.lru.delete(key);
    } finally {
      this.purging = false;
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

  clear(): void {
    this.purging = true;
    try {
      this.lru.clear();
    } finally {
      this.purging = false;
    }
    this.resources.clear();
  }

  close(): void {
    this.clear();
  }
}
