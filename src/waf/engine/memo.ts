// Cross-transaction memo of "this link does not match this value". A link whose operator has a
// constant parameter (Rule.pure) is a pure function of the value: transformations then operator.
// When it did not match a value once, it never will, so the next request carrying the same value
// (a User-Agent, an Accept header, a cookie, a common argument) skips it. One bitset per distinct
// value (one bit per link of the rule set), looked up once per collection item, bounded (CLOCK:
// values in use stay, see ClockCache).
import { ClockCache } from '../clock-cache.ts';
import { currentTransaction, seenBefore } from '../seen-before.ts';
import type { Item } from './collections.ts';

/** Values longer than this (bodies, long tokens) are not remembered. */
const MAX_VALUE = 1024;
const MAX_VALUES = 20_000;

/** One bit per link, in 32-bit words (split() ANDs and counts them a word at a time). */
export type MissBits = Uint32Array;

export interface MissEntry {
  bits: MissBits;
  /** How many bits `bits` has set, kept by setMiss: split() ranks items by it (counting 23 words
   * per item per collection per transaction was ~10% of a JSON POST's instructions). */
  known: number;
  /** The last AND split() computed over well-known entries starting with this one. */
  and: AndOf | undefined;
}

/** An AND of several entries' bitsets, kept across transactions: the same entries with the same
 * counts (bits are only ever set, so equal counts mean equal bits) have the same AND. */
interface AndOf {
  entries: MissEntry[];
  /** The sum of the entries' `known` when `bits` was computed. */
  known: number;
  bits: MissBits;
}

/** A whole collection's items for a transaction, summarised for the links that read it all:
 * `all` has a link's bit when every item not in `fresh` is a known miss for it; `fresh` holds
 * the items with little known about them (new values, values so far seen elsewhere, long
 * values), to be checked one by one. */
export interface MissSplit {
  all: MissBits;
  /** Read only (NO_FRESH when none). */
  fresh: Item[];
}

/** A split's fresh items when there are none: shared, never pushed to. */
const NO_FRESH: Item[] = [];

export class MissMemo {
  private readonly byValue: ClockCache<MissEntry>;
  private readonly words: number;
  private readonly seen = seenBefore;

  /** Every bit set: `all` of a split with no well-known item. Read-only. */
  private readonly none: MissBits;

  /** The owner mark of items whose value has no entry yet, for the transaction whose serial is
   * `pendingSerial` (of() answers them at once within it). */
  private pending: object = {};
  private pendingSerial = -1;

  /** split()'s list of well-known entries (reused: only its first `n` slots are read). */
  private readonly scratch: MissEntry[] = [];

  /** `capacity`: how many values are kept (a parameter for the tests). */
  constructor(links: number, capacity = MAX_VALUES) {
    this.byValue = new ClockCache(capacity);
    this.words = (links + 31) >> 5;
    this.none = new Uint32Array(this.words).fill(0xffffffff);
  }

  /** The miss entry of an item's value (cached on the item), or undefined for long values and
   * values not kept (yet). */
  of(item: Item): MissEntry | undefined {
    const owner = item.memoOwner;
    if (owner === this) return item.memo;
    const serial = currentTransaction.serial;
    if (serial !== this.pendingSerial) {
      this.pending = {};
      this.pendingSerial = serial;
    } else if (owner === this.pending) return undefined;
    const value = item.value;
    let e: MissEntry | undefined;
    if (value.length <= MAX_VALUE) {
      e = this.byValue.get(value);
      // A value new to the memo has no entry until it comes back in another transaction: an entry
      // for this transaction alone would never be read (each link evaluates an item once; items
      // with the same value get entries of their own), and its bitset, a typed array too long to
      // live on V8's heap, cost a malloc and a free (5 a benign GET). An evicted entry is not
      // reused: items of a running transaction may still hold it.
      if (e === undefined && this.seen.check(value)) {
        e = { bits: new Uint32Array(this.words), known: 0, and: undefined };
        this.byValue.add(value, e);
      }
    }
    // A value not kept yet is asked about again in another transaction (an item may outlive its
    // transaction: PositionItems gives it to the next request with the same header).
    item.memoOwner = e === undefined && value.length <= MAX_VALUE ? this.pending : this;
    item.memo = e;
    return e;
  }

  /** How many values are kept (tests). */
  get size(): number {
    return this.byValue.size;
  }

  /** Splits a collection's items. Which items count as known only decides how much is skipped:
   * every item left out of `fresh` is a known miss for each link whose bit `all` has, so skipping
   * it gives the same answer. Known = at least half as many known misses as the best-known item
   * (a value new to the collection would otherwise clear every bit of `all`). */
  split(items: readonly Item[]): MissSplit {
    let most = 0;
    for (let i = 0; i < items.length; i++) {
      const e = this.of(items[i]!);
      if (e !== undefined && e.known > most) most = e.known;
    }
    // Made at the first fresh item, as a list of one: `[]` and a push made room for 17 (~180
    // bytes) for the one or two fresh values a split of a CRS GET has (the query's counter).
    let fresh = NO_FRESH;
    // The well-known entries, in item order, into a scratch list (`n` of them).
    const known = this.scratch;
    let n = 0;
    let sum = 0;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const e = it.memo;
      if (e === undefined || e.known * 2 < most) {
        if (fresh.length === 0) fresh = [it];
        else fresh.push(it);
        continue;
      }
      known[n++] = e;
      sum += e.known;
    }
    // `all` is the one known item's own bitset when there is a single one (bits set on it later
    // keep the promise: a set bit is a known miss for that item), every bit when no item is well
    // known, else the AND of the known items' bitsets: the one computed for these entries in an
    // earlier transaction when their counts have not moved since (a JSON body's ~60 leaves, ANDed
    // 23 words each in four collections, were ~5% of the POST), or a fresh one.
    if (n === 0) return { all: this.none, fresh };
    const first = known[0]!;
    if (n === 1) return { all: first.bits, fresh };
    const kept = first.and;
    if (kept !== undefined && kept.known === sum && sameEntries(kept.entries, known, n)) return { all: kept.bits, fresh };
    const all = first.bits.slice();
    for (let j = 1; j < n; j++) {
      const bits = known[j]!.bits;
      for (let k = 0; k < all.length; k++) all[k]! &= bits[k]!;
    }
    first.and = { entries: known.slice(0, n), known: sum, bits: all };
    return { all, fresh };
  }
}

function sameEntries(kept: MissEntry[], known: MissEntry[], n: number): boolean {
  if (kept.length !== n) return false;
  for (let j = 0; j < n; j++) if (kept[j] !== known[j]) return false;
  return true;
}

export function knownMiss(bits: MissBits, link: number): boolean {
  return ((bits[link >> 5]! >>> (link & 31)) & 1) !== 0;
}

/** Records that `link` does not match the entry's value. */
export function setMiss(e: MissEntry, link: number): void {
  const bits = e.bits;
  const w = link >> 5;
  const m = 1 << (link & 31);
  if ((bits[w]! & m) !== 0) return;
  bits[w]! |= m;
  e.known++;
}
