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
