// The transactions sentinel-waf keeps between the events of one request: at most `max` (the
// least recently used goes first), each for at most `ttlMs` from its start, as the LRUCache
// it replaces ({ max: 10_000, ttl: 5 min }). lru-cache's delete of the last entry clears its
// whole store (four 10,000-slot arrays filled, the timer list walked): ~40-60 us, and in the
// agent the last in-flight transaction ends on most requests. A Map keeps the same answers
// with O(1) work per call.

export class PendingTransactions<T> {
  private readonly entries = new Map<string, { value: T; startedAt: number }>();

  constructor(
    private readonly max: number,
    private readonly ttlMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  get size(): number {
    return this.entries.size;
  }

  set(id: string, value: T): void {
    this.entries.delete(id);
    this.entries.set(id, { value, startedAt: this.now() });
    // Map order is insertion order; get() re-inserts, so the first key is the least recently used.
    if (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The live entry (now the most recently used), or undefined when absent or older than the TTL (then dropped). */
  get(id: string): T | undefined {
    const e = this.entries.get(id);
    if (!e) return undefined;
    this.entries.delete(id);
    if (this.now() - e.startedAt > this.ttlMs) return undefined;
    this.entries.set(id, e);
    return e.value;
  }

  delete(id: string): void {
    // Empty on most in-process GETs (request-side-only: nothing kept): no hash of the id.
    if (this.entries.size !== 0) this.entries.delete(id);
  }
}
