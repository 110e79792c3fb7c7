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

  constructor(links: number) {
    this.words = (links + 31) >> 5;
  }

  /** The miss bitset of an item's value (cached on the item), or undefined for long values. */
  of(item: Item): MissBits | undefined {
    return this.entry(item)?.bits;
  }

  private entry(item: Item): MissEntry | undefined {
    if (item.memoOwner === this) return item.memo;
    const value = item.value;
    let e: MissEntry | undefined;
    if (value.length <= MAX_VALUE) {
      e = this.byValue.get(value);
      if (e === undefined) {
        e = { bits: new Uint32Array(this.words) };
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
    const all = new Uint32Array(this.words).fill(0xffffffff);
    const fresh: Item[] = [];
    const counts: number[] = [];
    let most = 0;
    for (const it of items) {
      const bits = this.entry(it)?.bits;
      let n = -1;
      if (bits !== undefined) {
        n = 0;
        for (let k = 0; k < bits.length; k++) n += popcount32(bits[k]!);
        if (n > most) most = n;
      }
      counts.push(n);
    }
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (counts[i]! * 2 < most || counts[i]! < 0) {
        fresh.push(it);
        continue;
      }
      const bits = it.memo!.bits;
      for (let k = 0; k < all.length; k++) all[k]! &= bits[k]!;
    }
    return { all, fresh };
  }
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

export function knownMiss(bits: MissBits, link: number): boolean {
  return ((bits[link >> 5]! >>> (link & 31)) & 1) !== 0;
}

export function setMiss(bits: MissBits, link: number): void {
  bits[link >> 5]! |= 1 << (link & 31);
}
