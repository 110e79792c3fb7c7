// Persistent collections (IP, GLOBAL, SESSION, USER, RESOURCE) opened with initcol.
// In-memory and per process: records expire after SecCollectionTimeout seconds idle.
import { MapCollection } from './collections.ts';

interface Record {
  data: MapCollection;
  touched: number;
}

export class PersistentStore {
  private readonly records = new Map<string, Record>();

  constructor(
    private readonly timeoutSeconds: number,
    private readonly now: () => number = Date.now,
    private readonly maxRecords = 100_000,
  ) {}

  /** Returns the live record for collection/key, creating it (with its TIMEOUT/KEY fields). */
  open(collection: string, key: string): MapCollection {
    const id = `${collection}\u0000${key}`;
    const t = this.now();
    const rec = this.records.get(id);
    if (rec && t - rec.touched <= this.timeoutSeconds * 1000) {
      rec.touched = t;
      return rec.data;
    }
    if (this.records.size >= this.maxRecords) this.evictOldest();
    const data = new MapCollection();
    data.set('KEY', key);
    data.set('TIMEOUT', String(this.timeoutSeconds));
    data.set('CREATE_TIME', String(Math.floor(t / 1000)));
    this.records.set(id, { data, touched: t });
    return data;
  }

  private evictOldest(): void {
    const first = this.records.keys().next();
    if (!first.done) this.records.delete(first.value);
  }
}
