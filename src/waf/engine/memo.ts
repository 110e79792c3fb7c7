// Cross-transaction memo of "this link does not match this value". A link whose operator has a
// constant parameter (Rule.pure) is a pure function of the value: transformations then operator.
// When it did not match a value once, it never will, so the next request carrying the same value
// (a User-Agent, an Accept header, a cookie, a common argument) skips it. One bitset per distinct
// value (one bit per link of the rule set), looked up once per collection item, bounded LRU.
import { SeenBefore } from '../seen-before.ts';
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
}

/** A whole collection's items for a transaction, summarised for the links that read it all:
 * `all` has a link's bit when every item not in `fresh` is a known miss for it; `fresh` holds
 * the items with little known about them (new values, values so far seen elsewhere, long
 * values), to be checked one by one. */
export interface MissSplit {
  all: MissBits;
  fresh: Item[];
}

export class MissMemo {
  private readonly byValue = new Map<string, MissEntry>();
  private readonly words: number;
  private readonly seen = new SeenBefore();

  /** Every bit set: `all` of a split with no well-known item. Read-only. */
  private readonly none: MissBits;

  constructor(links: number) {
    this.words = (links + 31) >> 5;
    this.none = new Uint32Array(this.words).fill(0xffffffff);
  }

  /** The miss entry of an item's value (cached on the item), or undefined for long values. */
  of(item: Item): MissEntry | undefined {
    if (item.memoOwner === this) return item.memo;
    const value = item.value;
    let e: MissEntry | undefined;
    if (value.length <= MAX_VALUE) {
      e = this.byValue.get(value);
      if (e === undefined) {
        e = { bits: new Uint32Array(this.words), known: 0 };
        // A value new to the memo is known by its items for this transaction only, until it comes back.
        if (this.seen.check(value)) {
          if (this.byValue.size >= MAX_VALUES) this.byValue.delete(this.byValue.keys().next().value as string);
          this.byValue.set(value, e);
        }
      }
    }
    item.memoOwner = this;
    item.memo = e;
    return e;
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
    const fresh: Item[] = [];
    // `all` is the one known item's own bitset when there is a single one (bits set on it later
    // keep the promise: a set bit is a known miss for that item), a fresh AND of several, or
    // every bit when no item is well known.
    let first: MissBits | undefined;
    let all: MissBits | undefined;
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      const e = it.memo;
      if (e === undefined || e.known * 2 < most) {
        fresh.push(it);
        continue;
      }
      const bits = e.bits;
      if (first === undefined) first = bits;
      else {
        if (all === undefined) all = first.slice();
        for (let k = 0; k < all.length; k++) all[k]! &= bits[k]!;
      }
    }
    return { all: all ?? first ?? this.none, fresh };
  }
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
