// Linear-time regex for the WAF: PCRE patterns from SecLang rules, run on RE2.
// Inputs are latin1 "binary" strings (char code = byte), see translate.ts.
import RE2 from 're2';

import { translatePcre } from './translate.ts';

export { RegexTranslationError, translatePcre } from './translate.ts';

export interface SafeRegex {
  test(input: string): boolean;
  /** [whole, g1..gN] with '' for groups that did not participate; null when no match */
  exec(input: string): string[] | null;
  /** every non-overlapping match, each as exec() returns it (empty matches only when nothing else matched) */
  execAll(input: string): string[][];
  /** the RE2 pattern actually compiled */
  readonly source: string;
  /** true when every input matches whole (`^.*$` with dotAll): no regex runs */
  readonly matchesAll?: boolean;
}

export interface RegexOptions {
  caseless?: boolean;
  multiline?: boolean;
  dotAll?: boolean;
}

// Compiled patterns are shared: CRS repeats patterns, and macro-expanded
// patterns recur per request. Bounded so hostile macro values cannot grow it.
const CACHE_LIMIT = 2000;
const cache = new Map<string, SafeRegex>();

/** Compile a PCRE pattern for linear-time matching; throws RegexTranslationError or RE2's SyntaxError. */
export function compileRegex(pcrePattern: string, opts: RegexOptions = {}): SafeRegex {
  // No 'i' for RE2: caseless matching is translated into the pattern (ASCII-only folding, as PCRE does).
  const flags = `${opts.multiline ? 'm' : ''}${opts.dotAll ? 's' : ''}`;
  const key = `${opts.caseless ? 'i' : ''}${flags}/${pcrePattern}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const source = translatePcre(pcrePattern, { multiline: opts.multiline === true, caseless: opts.caseless === true });
  const compiled = makeSafeRegex(source, flags);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, compiled);
  return compiled;
}

function toGroups(m: RegExpExecArray): string[] {
  const groups: string[] = new Array<string>(m.length);
  for (let g = 0; g < m.length; g++) groups[g] = m[g] ?? '';
  return groups;
}

/** `^.*$` with dotAll matches any input whole. CRS 920450 runs it with `capture` on every
 * request header name: answering without RE2 saves a UTF-8 conversion and a native call each. */
function matchesWhole(source: string): SafeRegex {
  return { source, matchesAll: true, test: () => true, exec: (input) => [input], execAll: (input) => [[input]] };
}

function makeSafeRegex(source: string, flags: string): SafeRegex {
  if (source === '^.*$' && flags.includes('s')) return matchesWhole(source);
  const single = new RE2(source, flags);
  const global = new RE2(source, `${flags}g`);
  return {
    source,
    test: (input) => single.test(input),
    exec(input) {
      const m = single.exec(input);
      return m ? toGroups(m) : null;
    },
    execAll(input) {
      const found: string[][] = [];
      let firstEmpty: string[] | null = null;
      global.lastIndex = 0;
      for (;;) {
        const m = global.exec(input);
        if (!m) break;
        if (m[0] === '') {
          firstEmpty ??= toGroups(m);
          // Step past the empty match so the loop always advances.
          global.lastIndex = m.index + 1;
          if (global.lastIndex > input.length) break;
          continue;
        }
        found.push(toGroups(m));
      }
      if (found.length === 0 && firstEmpty) found.push(firstEmpty);
      return found;
    },
  };
}
