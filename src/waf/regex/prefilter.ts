// One pass for many patterns: every constant @rx pattern is also a member of an RE2.Set, so the
// first rule that asks "does pattern i match this value?" scans the value once against all
// patterns of i's Set and the answer for the others is a bitmap lookup. The answers are cached by
// value across transactions (a pure function of the pattern list and the value, bounded: CLOCK):
// header values, cookie names and common arguments repeat from request to request.
//
// Patterns are grouped into Sets by the variables of the rules that use them (the `group` given to
// register), and a value is scanned only against the Sets holding patterns that were asked about
// it: a request body read by a handful of rules is not scanned by the patterns of the hundreds of
// rules that never see it (a Set scan costs per byte, whatever the answer).
import RE2 from 're2';

import { ClockCache } from '../clock-cache.ts';
import { seenBefore } from '../seen-before.ts';

/** A Set of this many patterns compiles in well under a second and fits RE2's DFA budget;
 * a chunk RE2 refuses is split in halves. 64 was too many for a 2 KiB JSON body: the Set holding
 * the ARGS patterns scanned it at ~27 ns a byte (its DFA states overflowing the cache, it seems;
 * the other Sets 1.5-3), 32 halves the POST's RE2 time for a few more calls per GET (10 -> 14). */
const CHUNK = 32;
const CACHE_ENTRIES = 20_000;
/** Values longer than this are unlikely to repeat across requests (bodies, long tokens): their
 * answers are kept only in a small recent list. */
const CACHE_MAX_VALUE = 1024;
/** Values not (yet) cached across requests: long ones and ones seen for the first time. */
const RECENT = 64;
/** A value of at most this many characters is scanned by its chunk's wide Set (WIDE chunks in
 * one Set): the bench GET's counter (`page=N`, new every request) met 8 chunks, 8 Set calls of
 * ~5 k instructions each (node-re2's call, the hit array, the answers), where the scan of 16
 * bytes itself is a small part. Long values stay on the 32-pattern chunks (see CHUNK). */
const SHORT = 32;
const WIDE = 4;

/** Per pattern: 0 = no match, 1 = match, 2 = unknown (not in any Set, or the scan failed). */
export type PrefilterAnswer = 0 | 1 | 2;
/** In an answer array: this pattern's Set has not scanned the value yet. */
const NOT_SCANNED = 3;

interface Chunk {
  set: InstanceType<typeof RE2.Set>;
  /** Global index of each member. */
  members: number[];
  /** For short values: a Set of this chunk's and its neighbours' patterns (undefined: none). */
  wide: Chunk | undefined;
}

export class RegexPrefilter {
  private readonly sources: string[] = [];
  private readonly groups: string[] = [];
  /** Per pattern: it matches common benign values (see register). */
  private readonly dense: boolean[] = [];
  private readonly indexBySource = new Map<string, number>();
  private chunks: Chunk[] = [];
  /** Per pattern: its chunk, or -1 when no Set holds it. */
  private chunkOf = new Int32Array(0);
  private built = 0;
  private readonly cache: ClockCache<Uint8Array>;
  private readonly recent = new ClockCache<Uint8Array>(RECENT);
  private readonly seen = seenBefore;
  /** The last answer, for the very common case of consecutive rules asking about one value. */
  private lastInput: string | undefined;
  private lastAnswer: Uint8Array | undefined;
  /** The last value's UTF-8 bytes (node-re2 would convert a string on every Set call). */
  private bytesOf: string | undefined;
  private bytes: Buffer | undefined;

  /** `capacity`: how many values `cache` keeps, `chunk`: patterns a Set (parameters for the tests). */
  constructor(
    capacity = CACHE_ENTRIES,
    private readonly chunkSize = CHUNK,
  ) {
    this.cache = new ClockCache(capacity);
  }

  /** Adds an RE2 pattern (compiled with flags 'ms') and returns its index; `group` names the
   * values it will be asked about (the rule's variables), for the Set it joins. `dense`: the
   * pattern matches common benign values (`^[^#]+`, `.`, negated rules' allow-lists): it joins
   * Sets of such patterns only, so that a value scanned for the others does not pay for its hit
   * (node-re2 builds the hit array element by element, ~1 k instructions a hit). */
  register(source: string, group = '', dense = false): number {
    const known = this.indexBySource.get(source);
    if (known !== undefined) {
      // Registered again by another rule with another verdict: dense wins until built.
      if (dense && known >= this.built) this.dense[known] = true;
      return known;
    }
    const i = this.sources.length;
    this.sources.push(source);
    this.groups.push(group);
    this.dense.push(dense);
    this.indexBySource.set(source, i);
    return i;
  }

  get size(): number {
    return this.sources.length;
  }

  /** Compiles the Sets for patterns registered since the last build (loadWaf calls it once). */
  build(): void {
    if (this.built === this.sources.length) return;
    const fresh = this.sources.slice(this.built).map((_, k) => this.built + k);
    const chunkOf = new Int32Array(this.sources.length).fill(-1);
    chunkOf.set(this.chunkOf);
    this.chunkOf = chunkOf;
    // Dense patterns apart from the others (their own chunks and wide Sets): a value meets them
    // only when one of them is asked about it.
    for (const dense of [false, true]) {
      const part = fresh.filter((i) => this.dense[i] === dense);
      // Patterns of one group side by side, so a value asked about by one group's rules meets few Sets.
      part.sort((a, b) => (this.groups[a]! < this.groups[b]! ? -1 : this.groups[a]! > this.groups[b]! ? 1 : a - b));
      const first = this.chunks.length;
      for (let at = 0; at < part.length; at += this.chunkSize) this.addChunk(part.slice(at, at + this.chunkSize));
      // Neighbouring chunks hold the patterns of neighbouring groups (sorted above).
      for (let at = first; at < this.chunks.length; at += WIDE) this.addWide(this.chunks.slice(at, at + WIDE));
    }
    this.built = this.sources.length;
    // Older answers lack the new patterns.
    this.cache.clear();
    this.recent.clear();
    this.lastInput = undefined;
    this.lastAnswer = undefined;
  }

  private addChunk(members: number[]): void {
    if (members.length === 0) return;
    try {
      const set = new RE2.Set(members.map((i) => this.sources[i]!), 'ms');
      for (const i of members) this.chunkOf[i] = this.chunks.length;
      this.chunks.push({ set, members, wide: undefined });
    } catch {
      // Too big for one automaton (or a pattern RE2.Set refuses): halve; a lone refusal stays
      // outside every Set and is answered "unknown" (the caller runs its own regex).
      if (members.length === 1) return;
      const half = members.length >> 1;
      this.addChunk(members.slice(0, half));
      this.addChunk(members.slice(half));
    }
  }

  /** One Set of several chunks' patterns for short values; halved when RE2 refuses it. */
  private addWide(parts: Chunk[]): void {
    if (parts.length < 2) return;
    const members = parts.flatMap((c) => c.members);
    try {
      const wide: Chunk = { set: new RE2.Set(members.map((i) => this.sources[i]!), 'ms'), members, wide: undefined };
      for (const c of parts) c.wide = wide;
    } catch {
      const half = parts.length >> 1;
      this.addWide(parts.slice(0, half));
      this.addWide(parts.slice(half));
    }
  }

  /** Whether pattern `index` matches `input` (a latin1 "binary" string, as the regexes see it). */
  answer(index: number, input: string): PrefilterAnswer {
    if (index >= this.built) return 2;
    const chunk = this.chunkOf[index]!;
    if (chunk < 0) return 2;
    let ans: Uint8Array | undefined;
    if (input === this.lastInput) ans = this.lastAnswer!;
    else {
      // The recent list first: most values asked about here that are not the last one are this
      // transaction's new values (its counter, its URI), which the big cache does not hold (19
      // of the 26 lookups of a benign GET); a lookup there is a miss in a 20,000-entry table.
      ans = this.recent.get(input) ?? this.cache.get(input);
      if (ans === undefined) {
        const keep = input.length <= CACHE_MAX_VALUE && this.seen.check(input);
        const store = keep ? this.cache : this.recent;
        // The array of the value evicted for room is reused (lastAnswer may be it, and is replaced
        // below): the bench GET's ~7 one-off values (its counter in the query, the URI, the
        // request line...) each took a fresh one in the recent list, and in the engine alone that
        // tripled the bytes promoted per GET (1.46 KiB -> 0.41 with reuse), for no gain.
        const reuse = store.reserve();
        ans = reuse !== undefined ? reuse.fill(NOT_SCANNED) : new Uint8Array(this.built).fill(NOT_SCANNED);
        store.add(input, ans);
      }
      this.lastInput = input;
      this.lastAnswer = ans;
    }
    let a = ans[index]!;
    if (a === NOT_SCANNED) {
      const c = this.chunks[chunk]!;
      const w = c.wide;
      // A short value: one call answers the neighbouring chunks too (exact: a Set reports every
      // member that matches, whichever Set it is in). Should the wide Set fail, the chunk's own.
      if (w === undefined || input.length > SHORT || !this.scan(w, input, ans, false)) this.scan(c, input, ans, true);
      a = ans[index]!;
    }
    return a as PrefilterAnswer;
  }

  /** Scans `input` with one Set and writes its members' answers; false when the Set failed and
   * `last` is not set (the answers then untouched). */
  private scan(c: Chunk, input: string, ans: Uint8Array, last: boolean): boolean {
    if (this.bytesOf !== input) {
      this.bytes = Buffer.from(input, 'utf8');
      this.bytesOf = input;
    }
    let hits: number[];
    try {
      hits = c.set.match(this.bytes!);
    } catch {
      if (!last) return false;
      // DFA out of memory on this value: those patterns stay "unknown"
      for (const i of c.members) ans[i] = 2;
      return true;
    }
    const members = c.members;
    for (let k = 0; k < members.length; k++) ans[members[k]!] = 0;
    for (let k = 0; k < hits.length; k++) ans[members[hits[k]!]!] = 1;
    return true;
  }
}

/** Process-wide: compiled patterns are shared by every rule set (see compileRegex's cache). */
export const prefilter = new RegexPrefilter();
