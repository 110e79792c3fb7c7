// The memory tier's body store: fixed-size chunks carved out of a few large slabs, handed out and
// taken back through a free list. Bodies are copied into chunks as they stream in, and an evicted
// body's chunks are reused by the next one instead of becoming garbage that waits for the GC (one
// 16 KiB Buffer per evicted entry made RSS grow far past the budget under load). The arena never
// grows past its capacity, which the memory backend sets from its budget (docs/cache.md "Memory budget").

/** Bytes per chunk: a 16 KiB body is 4 chunks; a body's last chunk is at most this much unused. */
export const CHUNK_BYTES = 4096;
/** What a chunk costs against the budget: its bytes and its preallocated Buffer view. */
export const CHUNK_COST = CHUNK_BYTES + 128;
/** Chunks per slab (1 MiB slabs): few allocations, and an arena only as large as it needs. */
const SLAB_CHUNKS = 256;

export class Arena {
  /** chunk views ready to use (most recently freed last) */
  private readonly free: Buffer[] = [];
  private carved = 0;

  /** @param capacity most chunks this arena ever holds */
  constructor(readonly capacity: number) {}

  /** An arena whose chunks, at CHUNK_COST each, fit in `bytes`. */
  static forBudget(bytes: number): Arena {
    return new Arena(Math.floor(bytes / CHUNK_COST));
  }

  /** A free chunk (CHUNK_BYTES long), or undefined when every chunk the capacity allows is in use. */
  alloc(): Buffer | undefined {
    const c = this.free.pop();
    if (c) return c;
    if (this.carved >= this.capacity) return undefined;
    // a new slab; its pages become resident only as chunks are written
    const n = Math.min(SLAB_CHUNKS, this.capacity - this.carved);
    const slab = Buffer.allocUnsafeSlow(n * CHUNK_BYTES);
    for (let i = n - 1; i > 0; i--) this.free.push(slab.subarray(i * CHUNK_BYTES, (i + 1) * CHUNK_BYTES));
    this.carved += n;
    return slab.subarray(0, CHUNK_BYTES);
  }

  /** Gives chunks back (their bytes may be overwritten by the next body). */
  release(chunks: readonly Buffer[]): void {
    for (const c of chunks) this.free.push(c);
  }

  /** chunks handed out and not given back */
  get inUse(): number {
    return this.carved - this.free.length;
  }

  /** bytes of slabs allocated so far (never more than capacity x CHUNK_BYTES) */
  get slabBytes(): number {
    return this.carved * CHUNK_BYTES;
  }
}
