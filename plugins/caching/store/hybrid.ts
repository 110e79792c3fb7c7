// Hybrid backend: the memory LRU (budget: eviction-limit / max-size) in front of the disk backend
// (disk-max-size). Every entry is written to both; a lookup tries memory first and promotes a disk
// hit into memory. Memory evictions are demotions (the entry stays on disk) and are not counted as
// evictions; disk evictions are. Purges and stats cover both tiers.
import type { BackendEvents, BackendStats, CacheBackend, EntryMeta, EntryWriter, StoredResponse } from './entry.ts';
import type { DiskBackend } from './disk.ts';
import type { MemoryBackend } from './memory.ts';

export class HybridBackend implements CacheBackend {
  readonly kind = 'hybrid' as const;

  get inMemory(): MemoryBackend {
    return this.memory;
  }

  constructor(
    readonly memory: MemoryBackend,
    readonly disk: DiskBackend,
  ) {}

  /** events for the memory tier: sizes only, its evictions lose nothing */
  static memoryEvents(events: BackendEvents): BackendEvents {
    return { onSize: events.onSize?.bind(events) };
  }

  varyOf(primary: string): string[] | undefined | Promise<string[] | undefined> {
    return this.memory.varyOf(primary) ?? this.disk.varyOf(primary);
  }

  get(key: string): StoredResponse | undefined | Promise<StoredResponse | undefined> {
    return this.memory.get(key) ?? this.promote(key);
  }

  private async promote(key: string): Promise<StoredResponse | undefined> {
    const e = await this.disk.get(key);
    // a write of the same key may have landed in memory meanwhile: keep the newer one
    if (e && !this.memory.peek(key)) this.memory.set(e);
    return e;
  }

  async set(entry: StoredResponse): Promise<boolean> {
    const m = this.memory.set(entry);
    const d = await this.disk.set(entry);
    return m || d;
  }

  begin(meta: EntryMeta, expectedBytes?: number): EntryWriter {
    const m = this.memory.begin(meta, expectedBytes);
    const d = this.disk.begin(meta);
    return {
      write(chunk) {
        m.write(chunk);
        d.write(chunk);
      },
      async commit() {
        const [a, b] = await Promise.all([m.commit(), d.commit()]);
        return a || b;
      },
      abort() {
        m.abort();
        d.abort();
      },
    };
  }

  async purge(match: (target: string, host: string) => boolean): Promise<number> {
    const m = this.memory.purge(match);
    const d = await this.disk.purge(match);
    // every entry is on disk unless its disk write failed: count each entry once
    return Math.max(m, d);
  }

  /** the disk tier holds every entry */
  stats(): BackendStats {
    return this.disk.stats();
  }

  tiers(): { memory: BackendStats; disk: BackendStats } {
    return { memory: this.memory.stats(), disk: this.disk.stats() };
  }

  async close(): Promise<void> {
    this.memory.close();
    await this.disk.close();
  }
}
