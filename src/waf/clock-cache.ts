// A bounded map from values to what the engine knows about them (the miss memo's bitsets, the
// regex prefilter's answers), evicting by CLOCK: a ring of slots and a hand; a lookup marks its
// slot, and a full cache evicts the first unmarked slot after the hand, unmarking the slots it
// passes (a second chance). Values every request carries stay however many others come and go.
//
// Why not a Map used as a FIFO (delete `map.keys().next()`, then set): V8's Map keeps deleted
// entries as holes until it rehashes, and a new iterator walks the holes from the start. Evicting
// from the front piles the holes up there, so with 20,000 values kept each eviction walked
// thousands of them (14.7 µs an eviction against 0.38 for a ring): with ~2 values admitted a GET
// (values that came back after a while, such as a counter restarting), the engine's CPU a GET
// doubled, rising and falling with the Map's rehashes (docs/waf.md, "Session 22 (waf22)"). Here
// nothing iterates the Map: the ring says which key to delete.

export class ClockCache<V> {
  private readonly slots = new Map<string, number>();
  private readonly keyAt: (string | undefined)[];
  private readonly values: (V | undefined)[];
  private readonly marked: Uint8Array;
  private hand = 0;
  private filled = 0;
  /** A slot reserve() emptied for the next add(), or -1. */
  private free = -1;

  constructor(readonly capacity: number) {
    this.keyAt = new Array<string | undefined>(capacity).fill(undefined);
    this.values = new Array<V | undefined>(capacity).fill(undefined);
    this.marked = new Uint8Array(capacity);
  }

  get size(): number {
    return this.slots.size;
  }

  /** The value kept for `key`, marking it used. */
  get(key: string): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    this.marked[slot] = 1;
    return this.values[slot];
  }

  /** The value kept for `key`, not marking it (tests). */
  peek(key: string): V | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.values[slot];
  }

  /** The keys kept (tests). */
  keys(): IterableIterator<string> {
    return this.slots.keys();
  }

  /** Makes room for one more key (evicting one when full) and returns the evicted value, if any:
   * the caller may reuse it for the add() that must follow (nothing here refers to it any more). */
  reserve(): V | undefined {
    if (this.free >= 0) return undefined;
    if (this.filled < this.capacity) {
      this.free = this.filled++;
      return undefined;
    }
    // Terminates within one turn of the ring: every slot passed is unmarked.
    while (this.marked[this.hand] === 1) {
      this.marked[this.hand] = 0;
      this.hand = this.hand + 1 === this.capacity ? 0 : this.hand + 1;
    }
    const slot = this.hand;
    this.hand = slot + 1 === this.capacity ? 0 : slot + 1;
    this.slots.delete(this.keyAt[slot]!);
    const evicted = this.values[slot];
    this.keyAt[slot] = undefined;
    this.values[slot] = undefined;
    this.free = slot;
    return evicted;
  }

  /** Keeps `value` for `key` (not kept yet), unmarked, in the slot reserve() made (or makes). */
  add(key: string, value: V): void {
    if (this.free < 0) this.reserve();
    const slot = this.free;
    this.free = -1;
    this.keyAt[slot] = key;
    this.values[slot] = value;
    this.marked[slot] = 0;
    this.slots.set(key, slot);
  }

  clear(): void {
    this.slots.clear();
    this.keyAt.fill(undefined);
    this.values.fill(undefined);
    this.marked.fill(0);
    this.hand = 0;
    this.filled = 0;
    this.free = -1;
  }
}
