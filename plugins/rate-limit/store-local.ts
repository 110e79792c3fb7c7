// In-process token buckets, one per key, bounded by max-keys.
//
// The Map is kept in least-recently-used order (a touched key is re-inserted at the end), so
// idle keys sit at the front: each insert first drops a few keys idle longer than idleMs (they
// are full again, forgetting them is lossless), and only when the map is still full evicts the
// least recently used key. Every operation is O(1); a flood of distinct keys cannot grow memory
// past max-keys buckets.
import { type Bucket, type BucketParams, type Decision, newBucket, takeToken, refillTimeMs } from './limiter.ts';

export interface LocalStoreOptions {
  params: BucketParams;
  maxKeys: number;
  /** Sentinel evicts keys idle > 10 s first */
  idleMs?: number;
  now?: () => number;
  /** after a key was added or keys were dropped: the new size, and how many went idle / were forced out */
  onKeysChanged?: (size: number, idleDropped: number, forcedDropped: number) => void;
}

/** Idle keys dropped per insert: enough to keep up with any insert rate, small enough to stay O(1). */
const SWEEP_PER_INSERT = 4;

export class LocalStore {
  readonly params: BucketParams;
  readonly maxKeys: number;
  private readonly buckets = new Map<string, Bucket>();
  private readonly idleMs: number;
  private readonly now: () => number;
  private readonly onKeysChanged: LocalStoreOptions['onKeysChanged'];

  constructor(opts: LocalStoreOptions) {
    this.params = opts.params;
    this.maxKeys = opts.maxKeys;
    // Never forget a bucket that is still refilling: that would hand out free tokens.
    this.idleMs = Math.max(opts.idleMs ?? 10_000, refillTimeMs(opts.params));
    this.now = opts.now ?? Date.now;
    this.onKeysChanged = opts.onKeysChanged;
  }

  get size(): number {
    return this.buckets.size;
  }

  take(key: string, now = this.now()): Decision {
    let bucket = this.buckets.get(key);
    if (bucket) {
      // Move to the end: the map's order is least recently used first.
      this.buckets.delete(key);
      this.buckets.set(key, bucket);
    } else {
      bucket = newBucket(this.params, now);
      this.insert(key, bucket, now);
    }
    return takeToken(bucket, this.params, now);
  }

  private insert(key: string, bucket: Bucket, now: number): void {
    let idle = 0;
    let forced = 0;
    for (const [oldKey, old] of this.buckets) {
      if (idle >= SWEEP_PER_INSERT || now - old.updatedAt <= this.idleMs) break;
      this.buckets.delete(oldKey);
      idle++;
    }
    while (this.buckets.size >= this.maxKeys) {
      const oldest = this.buckets.keys().next().value as string;
      this.buckets.delete(oldest);
      forced++;
    }
    this.buckets.set(key, bucket);
    this.onKeysChanged?.(this.buckets.size, idle, forced);
  }

  /** Drops every key idle longer than idleMs (for a periodic sweep; inserts also sweep a few). */
  sweep(now = this.now()): number {
    let dropped = 0;
    for (const [key, bucket] of this.buckets) {
      if (now - bucket.updatedAt <= this.idleMs) break;
      this.buckets.delete(key);
      dropped++;
    }
    if (dropped > 0) this.onKeysChanged?.(this.buckets.size, dropped, 0);
    return dropped;
  }

  clear(): void {
    this.buckets.clear();
  }
}
