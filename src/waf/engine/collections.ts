// Keyed collections (ARGS, REQUEST_HEADERS, TX, ...): ordered, duplicate keys allowed,
// keys compared case-insensitively as ModSecurity does.
import type { MissEntry, MissSplit } from './memo.ts';
import { keyMatches, txSlotCount, txSlotKey, txSlotOf, type RuleVariable } from './rule.ts';

export interface Item {
  /** Original-case key ('' for scalar variables). */
  key: string;
  value: string;
  /** MissMemo bookkeeping (memo.ts): the value's miss entry for the memo that set it. */
  memo?: MissEntry | undefined;
  memoOwner?: object | undefined;
  /** The value's transformation stages by chain id (Rule.tId; see Transaction.transform), made
   * on the first transformation: for up to three chains a flat list of (chain id, stages) pairs,
   * for more an array indexed by chain id (longer than 6). The value never changes and chain ids are process-wide, so an entry stays right
   * for as long as the item lives, whichever transaction reads it. */
  stages?: (number | readonly string[] | undefined)[] | undefined;
}

/** An item with the shape every collection uses (one hidden class on the hot path). */
export function makeItem(key: string, value: string): Item {
  return { key, value, memo: undefined, memoOwner: undefined, stages: undefined };
}

/**
 * Per position in a request's list (its i-th header, cookie or argument), the item the last
 * transaction made there, given again while key and value are the same text: a repeated request
 * (the same client's headers, cookies, most arguments) makes no new items, and each comes with its
 * miss memo entry and transformation stages (items never change; both are right for the value
 * whichever transaction reads them). Positions past `positions` and values longer than
 * MAX_KEPT_VALUE get fresh items (what is kept for the process stays small).
 */
export class PositionItems {
  private readonly kept: (Item | undefined)[] = [];

  constructor(private readonly positions: number) {}

  item(pos: number, key: string, value: string): Item {
    const last = this.kept[pos];
    if (last !== undefined && last.value === value && last.key === key) return last;
    const made = makeItem(key, value);
    if (pos >= this.positions || value.length > MAX_KEPT_VALUE) return made;
    // Grown in order (a hole would make the array dictionary-backed).
    while (this.kept.length < pos) this.kept.push(undefined);
    this.kept[pos] = made;
    return made;
  }
}

/** The longest value a PositionItems keeps. */
export const MAX_KEPT_VALUE = 1024;

// Collections that exist (empty) even when nothing filled them, so selectors on them yield nothing.
const COLLECTION_NAMES = [
  'ARGS', 'ARGS_GET', 'ARGS_POST', 'ARGS_NAMES', 'ARGS_GET_NAMES', 'ARGS_POST_NAMES', 'REQUEST_HEADERS',
  'REQUEST_HEADERS_NAMES', 'REQUEST_COOKIES', 'REQUEST_COOKIES_NAMES', 'RESPONSE_HEADERS',
  'RESPONSE_HEADERS_NAMES', 'FILES', 'FILES_NAMES', 'FILES_SIZES', 'FILES_TMPNAMES', 'MULTIPART_PART_HEADERS',
  'MULTIPART_FILENAME', 'MULTIPART_NAME', 'GEO', 'FILES_TMP_CONTENT',
];
export const COLLECTIONS: ReadonlySet<string> = new Set(COLLECTION_NAMES);
const collectionIds = new Map(COLLECTION_NAMES.map((n, i) => [n, i]));

/** How many built-in collections there are (a transaction's collection slots). */
export const COLLECTION_COUNT = COLLECTION_NAMES.length;

/** A built-in collection's slot (RuleVariable.cid, the transaction's collection array), or -1. */
export function collectionSlot(name: string): number {
  return collectionIds.get(name) ?? -1;
}

const NO_ITEMS: readonly Item[] = Object.freeze([]) as readonly Item[];

const undefinedTemplates: (undefined[] | undefined)[] = [];

/** A new array of n undefined (packed): a copy of a kept template, not `new Array(n).fill()`,
 * whose C++ builtin cost ~3 k instructions per call (four per transaction). */
export function undefinedArray<T>(n: number): (T | undefined)[] {
  let t = undefinedTemplates[n];
  if (t === undefined) {
    t = [];
    for (let i = 0; i < n; i++) t.push(undefined);
    undefinedTemplates[n] = t;
  }
  return t.slice();
}

export class Collection {
  readonly items: Item[] = [];
  /** Lower-cased key -> its items, built on the first keyed lookup, dropped on every change.
   * The engine looks keys up once per rule and transaction, and collections change only while
   * the request (or response) is being read. */
  private index: Map<string, Item[]> | undefined;
  /** The miss memo's summary of the items (memo.ts), computed by the engine, dropped on change. */
  missSplit: MissSplit | undefined;

  add(key: string, value: string): void {
    this.addItem(makeItem(key, value));
  }

  /** Adds an item (made by makeItem; it may sit in other collections too: items are never changed). */
  addItem(item: Item): void {
    this.items.push(item);
    this.changed();
  }

  private changed(): void {
    this.index = undefined;
    this.missSplit = undefined;
  }

  /** Replaces every value of `key` with one (TX-style single-valued keys). */
  set(key: string, value: string): void {
    const lkey = key.toLowerCase();
    const i = this.items.findIndex((it) => it.key.toLowerCase() === lkey);
    if (i < 0) this.items.push(makeItem(key, value));
    else {
      this.items[i] = makeItem(key, value);
      for (let j = this.items.length - 1; j > i; j--) if (this.items[j]!.key.toLowerCase() === lkey) this.items.splice(j, 1);
    }
    this.changed();
  }

  delete(key: string): void {
    const lkey = key.toLowerCase();
    for (let j = this.items.length - 1; j >= 0; j--) if (this.items[j]!.key.toLowerCase() === lkey) this.items.splice(j, 1);
    this.changed();
  }

  first(key: string): string | undefined {
    return this.get(key.toLowerCase())[0]?.value;
  }

  /** The items under a lower-cased key; the array is shared: callers must not change it. */
  get(lkey: string): Item[] {
    let index = this.index;
    if (index === undefined) {
      index = new Map();
      for (const it of this.items) {
        const k = it.key.toLowerCase();
        const list = index.get(k);
        if (list) list.push(it);
        else index.set(k, [it]);
      }
      this.index = index;
    }
    return index.get(lkey) ?? (NO_ITEMS as Item[]);
  }

  clear(): void {
    this.items.length = 0;
    this.changed();
  }
}

/** TX and persistent collections: single-valued, map-backed for fast setvar/macro lookups.
 * Each key holds a one-item array so keyed lookups allocate nothing. */
export class MapCollection {
  private readonly map = new Map<string, Item[]>();

  get items(): Item[] {
    const out: Item[] = [];
    for (const one of this.map.values()) out.push(one[0]!);
    return out;
  }

  /** The items whose key the selector's key regex matches, in order, without building `items`
   * (CRS 920450 and 922100 select TX by a key regex on every request, over ~50 keys). */
  matching(v: RuleVariable): Item[] {
    const out: Item[] = [];
    for (const one of this.map.values()) if (keyMatches(v, one[0]!.key)) out.push(one[0]!);
    return out;
  }

  set(key: string, value: string): void {
    this.setLower(key.toLowerCase(), key, value);
  }

  /** set() with the lower-cased key given (compiled setvars carry it interned). */
  setLower(lkey: string, key: string, value: string): void {
    // A new item (not an update in place): the miss memo caches by item.
    this.map.set(lkey, [makeItem(key, value)]);
  }

  delete(key: string): void {
    this.map.delete(key.toLowerCase());
  }

  first(key: string): string | undefined {
    return this.map.get(key.toLowerCase())?.[0]!.value;
  }

  /** The item under a lower-cased key as a (shared, read-only) array. */
  get(lkey: string): Item[] {
    return this.map.get(lkey) ?? (NO_ITEMS as Item[]);
  }

  /** Puts a (shared, read-only) one-item array under a lower-cased key, as setLower would have
   * made it: the load-time fold (transaction.ts) replays TX values it computed once. */
  putItems(lkey: string, one: Item[]): void {
    this.map.set(lkey, one);
  }

  /** The key -> one-item array entries in insertion order (shared arrays: read-only). */
  rawEntries(): IterableIterator<[string, Item[]]> {
    return this.map.entries();
  }

  /** Replaces the whole content with a copy of `from` (the fold's probe restores its TX). */
  resetTo(from: ReadonlyMap<string, Item[]>): void {
    this.map.clear();
    for (const [k, v] of from) this.map.set(k, v);
  }

  *entries(): IterableIterator<[string, Item]> {
    for (const [k, one] of this.map) yield [k, one[0]!];
  }
}

/**
 * TX: single-valued, ordered like a Map (a new key goes last, an update keeps its place, a deleted
 * key that comes back goes last), keyed by the lower-cased key. The keys a configuration names
 * literally have process-wide slots (rule.ts txSlot): their values sit in an array, so a write is
 * an array store, not a Map insert that grows and rehashes the table every transaction (a CRS GET
 * writes ~50 keys, ~30 of them the fold's replay of the set-up). Keys built at run time (from
 * captures or request data) go to a Map. Which store a key uses is fixed for the transaction's
 * life: slots made after it began (another rule set loaded) are not used by it.
 */
export class TxCollection {
  /** Values by slot; undefined = absent. */
  private readonly vals: (Item[] | undefined)[];
  /** Keys without a slot (below `limit`). */
  private dyn: Map<string, Item[]> | undefined;
  /** The present keys in order: a slot (number) or a key without one (string), the first `n`
   * of `order` (what lies past `n` is never read). Made at the length the last transaction's
   * reached (txOrderHint), so it is not grown by push from empty every transaction (a CRS GET
   * puts ~53 keys: three growths and their copies). */
  private readonly order: (number | string)[];
  private n = 0;
  private readonly limit: number;

  constructor() {
    this.limit = txSlotCount();
    this.vals = undefinedArray<Item[]>(this.limit);
    this.order = new Array<number | string>(txOrderHint);
  }

  /** Appends a key to `order` (a store at its length grows it as a push would). */
  private append(o: number | string): void {
    const n = this.n;
    this.order[n] = o;
    this.n = n + 1;
    txOrderHint = n < TX_ORDER_CAP ? n + 1 : TX_ORDER_CAP;
  }

  private slotOf(lkey: string): number {
    const s = txSlotOf(lkey);
    return s < this.limit ? s : -1;
  }

  /** The item under a slot as a (shared, read-only) array. */
  getSlot(slot: number): Item[] {
    return this.vals[slot] ?? (NO_ITEMS as Item[]);
  }

  /** The item under a lower-cased key as a (shared, read-only) array. */
  get(lkey: string): Item[] {
    const s = this.slotOf(lkey);
    if (s >= 0) return this.vals[s] ?? (NO_ITEMS as Item[]);
    return this.dyn?.get(lkey) ?? (NO_ITEMS as Item[]);
  }

  first(key: string): string | undefined {
    return this.get(key.toLowerCase())[0]?.value;
  }

  /** Puts a (shared, read-only) one-item array under a slot. */
  putSlot(slot: number, one: Item[]): void {
    const vals = this.vals;
    if (vals[slot] === undefined) this.append(slot);
    vals[slot] = one;
  }

  /** Puts a (shared, read-only) one-item array under a lower-cased key, as setLower would have
   * made it: the load-time fold (transaction.ts) replays TX values it computed once. */
  putItems(lkey: string, one: Item[]): void {
    const s = this.slotOf(lkey);
    if (s >= 0) {
      this.putSlot(s, one);
      return;
    }
    const dyn = (this.dyn ??= new Map());
    const n = dyn.size;
    dyn.set(lkey, one);
    if (dyn.size !== n) this.append(lkey);
  }

  set(key: string, value: string): void {
    this.putItems(key.toLowerCase(), [makeItem(key, value)]);
  }

  /** set() with the lower-cased key given. A new item, not an update in place: the miss memo
   * caches by item. */
  setLower(lkey: string, key: string, value: string): void {
    this.putItems(lkey, [makeItem(key, value)]);
  }

  /** setLower() for a key with a slot (compiled setvars carry it). */
  setSlot(slot: number, key: string, value: string): void {
    this.putSlot(slot, [makeItem(key, value)]);
  }

  delete(key: string): void {
    const lkey = key.toLowerCase();
    const s = this.slotOf(lkey);
    if (s >= 0) {
      if (this.vals[s] === undefined) return;
      this.vals[s] = undefined;
      this.remove(s);
    } else if (this.dyn?.delete(lkey) === true) this.remove(lkey);
  }

  /** Takes a present key out of `order` (the later ones move up). */
  private remove(o: number | string): void {
    const order = this.order;
    const n = this.n;
    let i = 0;
    while (i < n && order[i] !== o) i++;
    if (i === n) return;
    for (; i + 1 < n; i++) order[i] = order[i + 1]!;
    this.n = n - 1;
  }

  private at(o: number | string): Item[] {
    return typeof o === 'number' ? this.vals[o]! : this.dyn!.get(o)!;
  }

  get items(): Item[] {
    const order = this.order;
    const n = this.n;
    const out = new Array<Item>(n);
    for (let i = 0; i < n; i++) out[i] = this.at(order[i]!)[0]!;
    return out;
  }

  /** The items whose key the selector's key regex matches, in order, without building `items`
   * (CRS 920450 and 922100 select TX by a key regex on every request, over ~50 keys, ~40 of them
   * slotted: their answers are kept per selector and slot, see slotKeyMatches). */
  matching(v: RuleVariable): Item[] {
    const out: Item[] = [];
    if (v.keyLit !== undefined && !literalMatchesSomeSlot(v, this.limit)) {
      // No key with a slot can match (see literalMatchesSomeSlot): only the run-time keys, in the
      // Map's order, which is their order in `order` (both append a new key and drop a deleted one).
      const dyn = this.dyn;
      if (dyn !== undefined) {
        for (const one of dyn.values()) {
          const it = one[0]!;
          if (keyMatches(v, it.key)) out.push(it);
        }
      }
      return out;
    }
    const order = this.order;
    const n = this.n;
    let memo: SlotKeyMatches | undefined;
    for (let i = 0; i < n; i++) {
      const o = order[i]!;
      if (typeof o === 'number') {
        const it = this.vals[o]![0]!;
        if (slotKeyMatches((memo ??= slotMemoOf(v)), v, o, it.key)) out.push(it);
      } else {
        const it = this.dyn!.get(o)![0]!;
        if (keyMatches(v, it.key)) out.push(it);
      }
    }
    return out;
  }

  /** The lower-cased key -> one-item array entries in order (shared arrays: read-only). */
  rawEntries(): [string, Item[]][] {
    const out: [string, Item[]][] = [];
    for (let i = 0; i < this.n; i++) {
      const o = this.order[i]!;
      out.push([typeof o === 'number' ? txSlotKey(o) : o, this.at(o)]);
    }
    return out;
  }

  /** Replaces the whole content with `from`'s entries (the fold's probe restores its TX). */
  resetTo(from: ReadonlyMap<string, Item[]>): void {
    for (let i = 0; i < this.n; i++) {
      const o = this.order[i]!;
      if (typeof o === 'number') this.vals[o] = undefined;
    }
    this.n = 0;
    this.dyn = undefined;
    for (const [k, v] of from) this.putItems(k, v);
  }
}

/** The length a TX collection's key order is made at: how many keys the last one put, at most
 * TX_ORDER_CAP (only a size: TX collections open at once each have their own). */
let txOrderHint = 0;
const TX_ORDER_CAP = 512;

/** Per TX key-regex selector, the answer for each slot's key as last seen: a slot's item keys are
 * the configuration's own spellings (setvar keys, interned), so the same string comes back in
 * every transaction and is tested once per process, not once per transaction. */
interface SlotKeyMatches {
  /** The key each answer was computed for (by slot). */
  keys: (string | undefined)[];
  answers: boolean[];
}

const slotMemos = new WeakMap<RuleVariable, SlotKeyMatches>();

/** Per literal key-regex selector: the lowest TX slot whose key it matches (Infinity: none), over
 * the first `tested` slots. */
const firstSlotHits = new WeakMap<RuleVariable, { tested: number; first: number }>();

/**
 * Whether a literal key regex (keyLit) matches the key of some slot below `limit`. When it does
 * not, it matches no item stored under those slots either, whatever the item key's spelling: a
 * slot's key is the item key's toLowerCase(), and a spelling the literal matches holds it as ASCII
 * characters, which toLowerCase() keeps (lower-cased) in the slot's key. CRS 920450 and 922100's
 * selectors match no slot: they walk only the ~6 run-time keys, not the ~45 slotted ones.
 */
function literalMatchesSomeSlot(v: RuleVariable, limit: number): boolean {
  let h = firstSlotHits.get(v);
  if (h === undefined) {
    h = { tested: 0, first: Infinity };
    firstSlotHits.set(v, h);
  }
  for (; h.tested < limit && h.first === Infinity; h.tested++) {
    if (keyMatches(v, txSlotKey(h.tested))) h.first = h.tested;
  }
  return h.first < limit;
}

function slotMemoOf(v: RuleVariable): SlotKeyMatches {
  let m = slotMemos.get(v);
  if (m === undefined) {
    m = { keys: [], answers: [] };
    slotMemos.set(v, m);
  }
  return m;
}

/** keyMatches(v, key) for the key of a slot, answered from the memo when that key was seen last
 * (the key is compared, not assumed: a slot's item may carry another spelling). */
function slotKeyMatches(m: SlotKeyMatches, v: RuleVariable, slot: number, key: string): boolean {
  if (m.keys[slot] === key) return m.answers[slot]!;
  const hit = keyMatches(v, key);
  // Grown in order (holes would make the arrays dictionary-backed).
  while (m.keys.length <= slot) {
    m.keys.push(undefined);
    m.answers.push(false);
  }
  m.keys[slot] = key;
  m.answers[slot] = hit;
  return hit;
}
