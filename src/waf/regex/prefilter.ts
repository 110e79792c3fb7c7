// One pass for many patterns: every constant @rx pattern is also a member of an RE2.Set, so the
// first rule that asks "does pattern i match this value?" scans the value once against all
// patterns and the answer for the others is a bitmap lookup. The answers are cached by value
// across transactions (a pure function of the pattern list and the value, bounded LRU): header
// values, cookie names and common arguments repeat from request to request.
import RE2 from 're2';

/** A Set of this many patterns compiles in well under a second and fits RE2's DFA budget;
 * a chunk RE2 refuses is split in halves. */
const CHUNK = 64;
const CACHE_ENTRIES = 20_000;
/** Values longer than this are scanned once per transaction but not kept across transactions. */
const CACHE_MAX_VALUE = 4096;

/** Per pattern: 0 = no match, 1 = match, 2 = unknown (not in any Set, or the scan failed). */
export type PrefilterAnswer = 0 | 1 | 2;

interface Chunk {
  set: InstanceType<typeof RE2.Set>;
  /** Global index of each member. */
  members: number[];
}

export class RegexPrefilter {
  private readonly sources: string[] = [];
  private readonly indexBySource = new Map<string, number>();
  private chunks: Chunk[] = [];
  private built = 0;
  private readonly cache = new Map<string, Uint8Array>();
  /** The last answer, for the very common case of consecutive rules asking about one value. */
  private lastInput: string | undefined;
  private lastAnswer: Uint8Array | undefined;

  /** Adds an RE2 pattern (compiled with flags 'ms') and returns its index. */
  register(source: string): number {
    const known = this.indexBySource.get(source);
    if (known !== undefined) return known;
    const i = this.sources.length;
    this.sources.push(source);
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
    for (let at = 0; at < fresh.length; at += CHUNK) this.addChunk(fresh.slice(at, at + CHUNK));
    this.built = this.sources.length;
    // Older answers lack the new patterns.
    this.cache.clear();
    this.lastInput = undefined;
    this.lastAnswer = undefined;
  }

  private addChunk(members: number[]): void {
    if (members.length === 0) return;
    try {
      this.chunks.push({ set: new RE2.Set(members.map((i) => this.sources[i]!), 'ms'), members });
    } catch {
      // Too big for one automaton (or a pattern RE2.Set refuses): halve; a lone refusal stays
      // outside every Set and is answered "unknown" (the caller runs its own regex).
      if (members.length === 1) return;
      const half = members.length >> 1;
      this.addChunk(members.slice(0, half));
      this.addChunk(members.slice(half));
    }
  }

  /** Whether pattern `index` matches `input` (a latin1 "binary" string, as the regexes see it). */
  answer(index: number, input: string): PrefilterAnswer {
    if (index >= this.built) return 2;
    if (input === this.lastInput) return this.lastAnswer![index] as PrefilterAnswer;
    let ans = this.cache.get(input);
    if (ans === undefined) {
      ans = this.scan(input);
      if (input.length <= CACHE_MAX_VALUE) {
        if (this.cache.size >= CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
        this.cache.set(input, ans);
      }
    }
    this.lastInput = input;
    this.lastAnswer = ans;
    return ans[index] as PrefilterAnswer;
  }

  private scan(input: string): Uint8Array {
    // 2 everywhere, then 0 for every member of a Set that answered, then 1 for its matches.
    const ans = new Uint8Array(this.built).fill(2);
    // node-re2 turns a string into UTF-8 on every call; do it once for all the Sets.
    const bytes = Buffer.from(input, 'utf8');
    for (const c of this.chunks) {
      let hits: number[];
      try {
        hits = c.set.match(bytes);
      } catch {
        continue; // DFA out of memory on this value: those patterns stay "unknown"
      }
      for (const i of c.members) ans[i] = 0;
      for (const h of hits) ans[c.members[h]!] = 1;
    }
    return ans;
  }
}

/** Process-wide: compiled patterns are shared by every rule set (see compileRegex's cache). */
export const prefilter = new RegexPrefilter();
