// Cross-transaction memo of "this link does not match this value". A link whose operator has a
// constant parameter (Rule.pure) is a pure function of the value: transformations then operator.
// When it did not match a value once, it never will, so the next request carrying the same value
// (a User-Agent, an Accept header, a cookie, a common argument) skips it. One bitset per distinct
// value (one bit per link of the rule set), looked up once per collection item, bounded LRU.
import type { Item } from './collections.ts';

/** Values longer than this (bodies, long tokens) are not remembered. */
const MAX_VALUE = 1024;
const MAX_VALUES = 20_000;

export class MissMemo {
  private readonly byValue = new Map<string, Uint8Array>();
  private readonly bytes: number;

  constructor(links: number) {
    this.bytes = (links + 7) >> 3;
  }

  /** The miss bitset of an item's value (cached on the item), or undefined for long values. */
  of(item: Item): Uint8Array | undefined {
    if (item.memoOwner === this) return item.memo;
    const value = item.value;
    let bits: Uint8Array | undefined;
    if (value.length <= MAX_VALUE) {
      bits = this.byValue.get(value);
      if (bits === undefined) {
        if (this.byValue.size >= MAX_VALUES) this.byValue.delete(this.byValue.keys().next().value as string);
        bits = new Uint8Array(this.bytes);
        this.byValue.set(value, bits);
      }
    }
    item.memoOwner = this;
    item.memo = bits;
    return bits;
  }
}

export function knownMiss(bits: Uint8Array, link: number): boolean {
  return (bits[link >> 3]! & (1 << (link & 7))) !== 0;
}

export function setMiss(bits: Uint8Array, link: number): void {
  bits[link >> 3]! |= 1 << (link & 7);
}
