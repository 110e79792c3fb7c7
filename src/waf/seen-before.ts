// Which values were seen in an earlier transaction, approximately and in fixed memory. The
// cross-request caches (the miss memo, the regex prefilter's answers) only pay for values that
// repeat (header values, cookies, common arguments); a value seen once (a counter, an order id, a
// timestamp) would be kept anyway, survive the young-generation GCs and be copied into the old
// generation, where most of the engine's GC time went. They admit a value the second time it
// shows up in a different transaction.

/** Transactions set this while they run rules (the engine is synchronous inside a phase). */
export const currentTransaction = { serial: 0 };

const SLOTS = 1 << 16;

export class SeenBefore {
  private readonly hashes = new Int32Array(SLOTS);
  private readonly serials = new Float64Array(SLOTS);

  /** True when `s` was (probably: a hash table, collisions say yes) offered during another
   * transaction before; remembers it for this one. */
  check(s: string): boolean {
    let h = 0x811c9dc5 ^ s.length;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h |= 1; // 0 marks an empty slot
    const slot = (h ^ (h >>> 16)) & (SLOTS - 1);
    const serial = currentTransaction.serial;
    if (this.hashes[slot] === h) return this.serials[slot] !== serial;
    this.hashes[slot] = h;
    this.serials[slot] = serial;
    return false;
  }
}
