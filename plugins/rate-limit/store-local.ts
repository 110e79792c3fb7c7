// In-process token buckets, one per key, bounded by max-keys.
//
// Buckets live in an LRU (lru-cache: a linked list over preallocated arrays, O(1) per
// operation). When the map is full a new key evicts the least recently used one, which is by
// construction the longest idle: idle keys (> idleMs, already full again, so forgetting them is
// lossless) go first, and only a flood of active keys forces out live state. A flood of distinct
// keys therefore cannot grow memory past max-keys buckets.
//
// (A plain Map used as an LRU looks O(1) but is not in V8: deleting from the front leaves
// tombstones that every "oldest key" lookup walks; 1M inserts took 80+ s instead of < 1 s.)
import { LRUCache } from 'lru-cache';
import { type Bucket, type BucketParams, type Decision, newBucket, refill, takeToken, refillTimeMs } from './limiter.ts';

export interface LocalStoreOptions {
  params: BucketParams;
  maxKeys: number;
  /** Sentinel evicts keys idle > 10 s first */
  idleMs?: number;
  now?: () => number;
  /** after a key was added or keys were dropped: the new size, and how many went idle / were forced out */
  onKeysChanged?: (size: number, idleDropped: number, forcedDropped: number) => void;
}

export class LocalStore {
  readonly params: BucketParams;
  readonly maxKeys: number;
  private readonly buckets: LRUCache<string, Bucket>;
  private readonly idleMs: number;
  private readonly now: () => number;
  private readonly onKeysChanged: LocalStoreOptions['onKeysChanged'];
  /** evictions seen by the dispose hook during the current insert */
  private idleDropped = 0;
  private forcedDropped = 0;
  private evictNow = 0;

  constructor(opts: LocalStoreOptions) {
    this.params = opts.params;
    this.maxKeys = opts.maxKeys;
    // Never call a bucket that is still refilling idle: forgetting it would hand out free tokens.
    this.idleMs = Math.max(opts.idleMs ?? 10_000, refillTimeMs(opts.params));
    this.now = opts.now ?? Date.now;
    this.onKeysChanged = opts.onKeysChanged;
    this.buckets = new LRUCache<string, Bucket>({
      max: opts.maxKeys,
      dispose: (bucket, _key, reason) => {
        if (reason !== 'evict') return;
        if (this.evictNow - bucket.updatedAt > this.idleMs) this.idleDropped++;
        else this.forcedDropped++;
      },
    });
  }

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, now = this.now()): Decision {
    return takeToken(this.bucketFor(key, now), this.params, now);
  }

  /**
   * Mirrors a decision made elsewhere (the shared backend) into `key`'s bucket without deciding:
   * refills, takes a token when `consumed` (never below zero), then caps the tokens at `cap`
   * (what the shared limit had left). The fallback then starts from the shared state.
   */
  sync(key: string, consumed: boolean, cap: number, now = this.now()): void {
    const bucket = this.bucketFor(key, now);
    let tokens = refill(bucket, this.params, now);
    if (consumed) tokens = Math.max(0, tokens - 1);
    bucket.tokens = Math.min(tokens, Math.max(0, cap));
  }

  private bucketFor(key: string, now: number): Bucket {
    let bucket = this.buckets.get(key); // also marks the key most recently used
    if (!bucket) {
      bucket = newBucket(this.params, now);
      this.evictNow = now;
      this.buckets.set(key, bucket);
      this.report();
    }
    return bucket;
  }

  private report(): void {
    const idle = this.idleDropped;
    const forced = this.forcedDropped;
    this.idleDropped = 0;
    this.forcedDropped = 0;
    this.onKeysChanged?.(this.buckets.size, idle, forced);
  }

  /** Drops every key idle longer than idleMs, least recently used first (for a periodic sweep). */
  sweep(now = this.now()): number {
    const idle: string[] = [];
    for (const key of this.buckets.rkeys()) {
      const bucket = this.buckets.peek(key); // peek: a sweep must not refresh recency
      if (bucket && now - bucket.updatedAt <= this.idleMs) break;
      idle.push(key);
    }
    for (const key of idle) this.buckets.delete(key);
    if (idle.length > 0) this.onKeysChanged?.(this.buckets.size, idle.length, 0);
    return idle.length;
  }

  clear(): void {
    this.buckets.clear();
  }
}
