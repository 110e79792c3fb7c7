// Aho-Corasick phrase matcher for @pm / @pmFromFile: one pass over the input
// whatever the number of phrases (CRS data files hold hundreds). ASCII
// case-insensitive, like ModSecurity.
import { asciiLower } from '../strings.ts';

export class PhraseMatcher {
  // The automaton as parallel arrays indexed by state (0 = root).
  private readonly next: Map<number, number>[] = [new Map()];
  private readonly fail: number[] = [0];
  /** length of the longest phrase ending in this state (0 when none), following fail links */
  private readonly outLength: number[] = [0];
  readonly size: number;
  // The automaton flattened for find(): the root's moves in a 256-entry table, every other
  // state's edges as a slice of two parallel arrays (few per state: scanned). A Map lookup (two,
  // has then get) per input char made @pmFromFile over a 2 KiB JSON body ~8% of the POST.
  private readonly root = new Int32Array(256);
  private readonly edgeStart: Int32Array;
  private readonly edgeChar: Uint8Array;
  private readonly edgeTo: Int32Array;
  private readonly failTo: Int32Array;
  private readonly outLen: Int32Array;
  /** A phrase char above 0xff (rule text read as UTF-16): find() walks the Maps instead. */
  private readonly wide: boolean = false;

  constructor(phrases: Iterable<string>) {
    let count = 0;
    for (const raw of phrases) {
      const phrase = asciiLower(raw);
      if (phrase === '') continue;
      count++;
      let state = 0;
      for (let i = 0; i < phrase.length; i++) {
        const c = phrase.charCodeAt(i);
        const edges = this.next[state]!;
        let to = edges.get(c);
        if (to === undefined) {
          to = this.next.length;
          this.next.push(new Map());
          this.fail.push(0);
          this.outLength.push(0);
          edges.set(c, to);
        }
        state = to;
      }
      this.outLength[state] = Math.max(this.outLength[state]!, phrase.length);
    }
    this.size = count;
    this.buildFailLinks();
    const states = this.next.length;
    let edges = 0;
    for (let st = 0; st < states; st++) {
      if (st > 0) edges += this.next[st]!.size;
      for (const c of this.next[st]!.keys()) if (c > 0xff) this.wide = true;
    }
    this.edgeStart = new Int32Array(states + 1);
    this.edgeChar = new Uint8Array(edges);
    this.edgeTo = new Int32Array(edges);
    let at = 0;
    for (let st = 0; st < states; st++) {
      this.edgeStart[st] = at;
      if (this.wide) continue;
      if (st === 0) {
        for (const [c, to] of this.next[0]!) this.root[c] = to;
        continue;
      }
      for (const [c, to] of this.next[st]!) {
        this.edgeChar[at] = c;
        this.edgeTo[at++] = to;
      }
    }
    this.edgeStart[states] = at;
    this.failTo = Int32Array.from(this.fail);
    this.outLen = Int32Array.from(this.outLength);
  }

  /** The state `c` leads to from `state` (not the root), or -1 when it has no such edge. */
  private move(state: number, c: number): number {
    const end = this.edgeStart[state + 1]!;
    for (let e = this.edgeStart[state]!; e < end; e++) if (this.edgeChar[e] === c) return this.edgeTo[e]!;
    return -1;
  }

  private buildFailLinks(): void {
    // Breadth-first, so a state's fail target (shallower) is complete before the state.
    const queue: number[] = [...this.next[0]!.values()];
    for (let q = 0; q < queue.length; q++) {
      const s = queue[q]!;
      for (const [c, child] of this.next[s]!) {
        let f = this.fail[s]!;
        while (f !== 0 && !this.next[f]!.has(c)) f = this.fail[f]!;
        const target = this.next[f]!.get(c);
        const failTo = target !== undefined && target !== child ? target : 0;
        this.fail[child] = failTo;
        if (this.outLength[child] === 0) this.outLength[child] = this.outLength[failTo]!;
        queue.push(child);
      }
    }
  }

  /** The first phrase found (as it appears in the input), or null. */
  find(input: string): string | null {
    if (this.wide) return this.findWide(input);
    const root = this.root;
    const failTo = this.failTo;
    const outLen = this.outLen;
    let state = 0;
    for (let i = 0; i < input.length; i++) {
      let c = input.charCodeAt(i);
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      if (c > 0xff) {
        // No phrase holds such a char: back to the root, which matches nothing.
        state = 0;
        continue;
      }
      // Follow fail links until a state with an edge for c, or the root.
      for (;;) {
        if (state === 0) {
          state = root[c]!;
          break;
        }
        const to = this.move(state, c);
        if (to >= 0) {
          state = to;
          break;
        }
        state = failTo[state]!;
      }
      const len = outLen[state]!;
      if (len > 0) return input.slice(i + 1 - len, i + 1);
    }
    return null;
  }

  private findWide(input: string): string | null {
    let state = 0;
    for (let i = 0; i < input.length; i++) {
      let c = input.charCodeAt(i);
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      while (state !== 0 && !this.next[state]!.has(c)) state = this.fail[state]!;
      state = this.next[state]!.get(c) ?? 0;
      const len = this.outLength[state]!;
      if (len > 0) return input.slice(i + 1 - len, i + 1);
    }
    return null;
  }
}

/**
 * Splits an @pm parameter into phrases: whitespace separated, with
 * ModSecurity's |hex| notation (e.g. |0d 0a|) decoded to bytes.
 */
export function parsePmPhrases(param: string): string[] {
  const phrases: string[] = [];
  let current = '';
  let inHex = false;
  for (const ch of param) {
    if (ch === '|') inHex = !inHex;
    // Whitespace separates phrases, except between the pipes of a |hex| run.
    if (!inHex && /\s/.test(ch)) {
      if (current !== '') phrases.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  if (current !== '') phrases.push(current);
  return phrases.map(decodePipeHex);
}

/** Decodes |41 42| segments in one phrase or data-file line. */
export function decodePipeHex(phrase: string): string {
  if (!phrase.includes('|')) return phrase;
  return phrase.replace(/\|([0-9a-fA-F\s]*)\|/g, (_m, hex: string) => {
    const digits = hex.replace(/\s+/g, '');
    let out = '';
    for (let i = 0; i + 1 < digits.length; i += 2) out += String.fromCharCode(Number.parseInt(digits.slice(i, i + 2), 16));
    return out;
  });
}
