// Keyed collections (ARGS, REQUEST_HEADERS, TX, ...): ordered, duplicate keys allowed,
// keys compared case-insensitively as ModSecurity does.

export interface Item {
  /** Original-case key ('' for scalar variables). */
  key: string;
  value: string;
  /** MissMemo bookkeeping (memo.ts): the value's miss bitset for the memo that set it. */
  memo?: Uint8Array | undefined;
  memoOwner?: object;
}

export class Collection {
  readonly items: Item[] = [];

  add(key: string, value: string): void {
    this.items.push({ key, value });
  }

  /** Replaces every value of `key` with one (TX-style single-valued keys). */
  set(key: string, value: string): void {
    const lkey = key.toLowerCase();
    const i = this.items.findIndex((it) => it.key.toLowerCase() === lkey);
    if (i < 0) this.items.push({ key, value });
    else {
      this.items[i] = { key, value };
      for (let j = this.items.length - 1; j > i; j--) if (this.items[j]!.key.toLowerCase() === lkey) this.items.splice(j, 1);
    }
  }

  delete(key: string): void {
    const lkey = key.toLowerCase();
    for (let j = this.items.length - 1; j >= 0; j--) if (this.items[j]!.key.toLowerCase() === lkey) this.items.splice(j, 1);
  }

  first(key: string): string | undefined {
    const lkey = key.toLowerCase();
    for (const it of this.items) if (it.key.toLowerCase() === lkey) return it.value;
    return undefined;
  }

  get(lkey: string): Item[] {
    const out: Item[] = [];
    for (const it of this.items) if (it.key.toLowerCase() === lkey) out.push(it);
    return out;
  }

  clear(): void {
    this.items.length = 0;
  }
}

/** TX and persistent collections: single-valued, map-backed for fast setvar/macro lookups. */
export class MapCollection {
  private readonly map = new Map<string, Item>();

  get items(): Item[] {
    return [...this.map.values()];
  }

  set(key: string, value: string): void {
    this.map.set(key.toLowerCase(), { key, value });
  }

  delete(key: string): void {
    this.map.delete(key.toLowerCase());
  }

  first(key: string): string | undefined {
    return this.map.get(key.toLowerCase())?.value;
  }

  get(lkey: string): Item[] {
    const it = this.map.get(lkey);
    return it ? [it] : [];
  }

  entries(): IterableIterator<[string, Item]> {
    return this.map.entries();
  }
}
