// The memory tier's body store: fixed-size chunks carved out of a few large slabs, handed out as
// runs of consecutive chunks and taken back for reuse. Bodies are copied into chunks as they
// stream in, and an evicted body's chunks are reused by the next one instead of becoming garbage
// that waits for the GC (one 16 KiB Buffer per evicted entry made RSS grow far past the budget
// under load). A body is one run when the arena has room for it in one piece (the common case:
// the size is known from Content-Length), so a hit writes it as one Buffer; otherwise it is a few
// runs. The arena never grows past its capacity, which the memory backend sets from its budget
// (docs/cache.md "Memory budget").

/** Bytes per chunk: what a body's size is rounded up to. */
export const CHUNK_BYTES = 4096;
/** What a chunk costs against the budget: its bytes, its flag and (per run) a Buffer view. */
export const CHUNK_COST = CHUNK_BYTES + 128;
/** Chunks per slab (1 MiB slabs): few allocations, and an arena only as large as it needs. */
export const SLAB_CHUNKS = 256;
/** Slabs searched for a free run before the arena takes a new slab or gives up on one piece. */
const RUN_PROBES = 8;

class Slab {
  /** 1 = chunk free */
  readonly free: Uint8Array;
  freeCount: number;

  constructor(
    readonly bytes: Buffer,
    readonly chunks: number,
  ) {
    this.free = new Uint8Array(chunks).fill(1);
    this.freeCount = chunks;
  }

  /** first run of `k` free chunks, or -1 */
  findRun(k: number): number {
    const f = this.free;
    let run = 0;
    for (let i = 0; i < this.chunks; i++) {
      if (f[i] === 1) {
        if (++run === k) return i - k + 1;
      } else run = 0;
    }
    return -1;
  }

  mark(start: number, count: number, free: 0 | 1): void {
    this.free.fill(free, start, start + count);
    this.freeCount += free ? count : -count;
  }
}

/** `count` consecutive chunks of one slab, from chunk `start`. */
export interface Run {
  readonly slab: Slab;
  readonly start: number;
  count: number;
}

/** The `bytes` first bytes of a run (a view, no copy). */
export function runView(r: Run, bytes: number): Buffer {
  const at = r.start * CHUNK_BYTES;
  return r.slab.bytes.subarray(at, at + bytes);
}

export class Arena {
  private readonly slabs: Slab[] = [];
  private carved = 0;
  /** chunks handed out and not given back */
  private used = 0;
  /** the slab the next search starts from (the last one that had room) */
  private cursor = 0;

  /** @param capacity most chunks this arena ever holds */
  constructor(readonly capacity: number) {}

  /** An arena whose chunks, at CHUNK_COST each, fit in `bytes`. */
  static forBudget(bytes: number): Arena {
    return new Arena(Math.floor(bytes / CHUNK_COST));
  }

  /**
   * `k` consecutive free chunks (k <= SLAB_CHUNKS), from a slab that has them or a new slab;
   * undefined when neither is there (the caller then takes smaller runs).
   */
  take(k: number): Run | undefined {
    const n = this.slabs.length;
    for (let i = 0; i < n && i < RUN_PROBES; i++) {
      const at = (this.cursor + i) % n;
      const s = this.slabs[at]!;
      if (s.freeCount < k) continue;
      const start = s.findRun(k);
      if (start < 0) continue;
      this.cursor = at;
      return this.mark(s, start, k);
    }
    const s = this.carve();
    if (s && s.chunks >= k) return this.mark(s, 0, k);
    return k === 1 ? this.takeAny() : undefined;
  }

  /** One free chunk anywhere (all slabs searched). */
  private takeAny(): Run | undefined {
    const n = this.slabs.length;
    for (let i = 0; i < n; i++) {
      const at = (this.cursor + i) % n;
      const s = this.slabs[at]!;
      if (s.freeCount === 0) continue;
      this.cursor = at;
      return this.mark(s, s.free.indexOf(1), 1);
    }
    return undefined;
  }

  /** Grows `r` by the chunk right after it when that one is free. */
  extend(r: Run): boolean {
    const next = r.start + r.count;
    if (next >= r.slab.chunks || r.slab.free[next] !== 1) return false;
    r.slab.mark(next, 1, 0);
    this.used++;
    r.count++;
    return true;
  }

  /** Gives the last `count` chunks of `r` back (r shrinks). */
  trim(r: Run, count: number): void {
    if (count <= 0) return;
    r.count -= count;
    r.slab.mark(r.start + r.count, count, 1);
    this.used -= count;
  }

  /** Gives runs back (their bytes may be overwritten by the next body). */
  release(runs: readonly Run[]): void {
    for (const r of runs) {
      r.slab.mark(r.start, r.count, 1);
      this.used -= r.count;
    }
  }

  private mark(s: Slab, start: number, k: number): Run {
    s.mark(start, k, 0);
    this.used += k;
    return { slab: s, start, count: k };
  }

  /** a new slab, while the capacity allows; its pages become resident only as chunks are written */
  private carve(): Slab | undefined {
    if (this.carved >= this.capacity) return undefined;
    const n = Math.min(SLAB_CHUNKS, this.capacity - this.carved);
    const s = new Slab(Buffer.allocUnsafeSlow(n * CHUNK_BYTES), n);
    this.slabs.push(s);
    this.carved += n;
    this.cursor = this.slabs.length - 1;
    return s;
  }

  /** chunks handed out and not given back */
  get inUse(): number {
    return this.used;
  }

  /** bytes of slabs allocated so far (never more than capacity x CHUNK_BYTES) */
  get slabBytes(): number {
    return this.carved * CHUNK_BYTES;
  }
}
