// PCRE (as written in SecLang/CRS rules) -> RE2 syntax.
//
// RE2 runs in linear time, which is the whole point, so constructs that need
// backtracking (back-references, look-around) are rejected with a clear error.
// Constructs whose only job is to limit backtracking (atomic groups, possessive
// quantifiers) are downgraded to their plain form: RE2 never backtracks anyway,
// and the set of strings matched differs only for contrived patterns.
//
// Inputs are latin1 "binary" strings (one char per byte). RE2 works on code
// points, and latin1 code points 0..255 map one-to-one to the bytes, so
// byte-range classes such as [\x80-\xff] keep their PCRE (non-UTF) meaning.

import RE2 from 're2';

export class RegexTranslationError extends Error {
  constructor(pattern: string, reason: string) {
    super(`cannot use regex ${JSON.stringify(truncate(pattern))}: ${reason}`);
    this.name = 'RegexTranslationError';
  }
}

function truncate(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

// PCRE \s also covers VT (0x0b); RE2's \s does not.
const SPACE_CHARS = '\\t\\n\\x0b\\f\\r ';
const NOT_SPACE_CHARS = '\\x00-\\x08\\x0e-\\x1f\\x21-\\x{10ffff}';
// PCRE \h (horizontal) and \v (vertical whitespace) in non-UTF mode.
const HSPACE_CHARS = '\\t \\xa0';
const NOT_HSPACE_CHARS = '\\x00-\\x08\\x0a-\\x1f\\x21-\\x9f\\xa1-\\x{10ffff}';
const VSPACE_CHARS = '\\n\\x0b\\f\\r\\x85';
const NOT_VSPACE_CHARS = '\\x00-\\x09\\x0e-\\x84\\x86-\\x{10ffff}';

export interface Flags {
  multiline: boolean;
  /**
   * PCRE's caseless mode without UTF folds ASCII letters only, while RE2's i flag
   * folds Unicode (so \xe9 would match \xc9). The i flag is therefore never
   * handed to RE2: letters and classes are folded here instead.
   */
  caseless?: boolean;
}

/**
 * Translate a PCRE pattern into an equivalent RE2 pattern.
 * `multiline` is the initial state of the m flag (it changes how `$` is
 * translated: PCRE's non-multiline `$` also matches before a final newline);
 * `caseless` the initial state of the i flag.
 */
export function translatePcre(pattern: string, initial: Flags): string {
  let out = '';
  let i = 0;
  const n = pattern.length;
  // One entry per open group: the flag state to restore when it closes.
  const groupStack: Flags[] = [];
  let flags: Flags = { multiline: initial.multiline, caseless: initial.caseless === true };
  const fail = (reason: string): never => {
    throw new RegexTranslationError(pattern, reason);
  };

  while (i < n) {
    const c = pattern[i];
    if (c === '\\') {
      const [text, used] = translateEscape(pattern, i, false, flags.caseless === true, fail);
      out += text;
      i += used;
      continue;
    }
    if (c === '[') {
      const [text, used] = translateClass(pattern, i, flags.caseless === true, fail);
      out += text;
      i += used;
      continue;
    }
    if (c === '(') {
      const rest = pattern.slice(i + 1, i + 4);
      if (rest.startsWith('?#')) {
        // PCRE comment group: drop it.
        const end = pattern.indexOf(')', i);
        if (end < 0) fail('unterminated (?# comment');
        i = end + 1;
        continue;
      }
      groupStack.push({ ...flags });
      if (rest.startsWith('?=') || rest.startsWith('?!') || rest.startsWith('?<=') || rest.startsWith('?<!')) {
        fail('look-around assertions are not supported by the linear-time RE2 engine');
      }
      if (rest.startsWith('?>')) {
        // Atomic group: RE2 does not backtrack, a plain group is the closest equivalent.
        out += '(?:';
        i += 3;
        continue;
      }
      if (rest.startsWith('?|')) fail('branch-reset groups (?| are not supported');
      if (rest.startsWith('?<') || rest.startsWith("?'")) {
        // Named group (?<name>...) / (?'name'...) -> (?P<name>...)
        const close = rest[1] === '<' ? '>' : "'";
        const end = pattern.indexOf(close, i + 3);
        if (end < 0) fail('unterminated group name');
        out += `(?P<${pattern.slice(i + 3, end)}>`;
        i = end + 1;
        continue;
      }
      if (rest.startsWith('?P<')) {
        const end = pattern.indexOf('>', i + 4);
        if (end < 0) fail('unterminated group name');
        out += pattern.slice(i, end + 1);
        i = end + 1;
        continue;
      }
      if (rest.startsWith('?P=') || rest.startsWith('?P>') || rest.startsWith('?R') || /^\?(?:[0-9]|[+-][0-9])/.test(rest)) {
        fail('back-references and recursion are not supported by RE2');
      }
      if (rest[0] === '?') {
        // Inline flags: (?imsx-imsx) or (?imsx-imsx: ... )
        const m = /^\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])/.exec(pattern.slice(i));
        if (!m) fail(`unsupported group syntax near ${JSON.stringify(pattern.slice(i, i + 8))}`);
        const on = m![1] ?? '';
        const off = m![2] ?? '';
        for (const f of on + off) {
          if (!'imsU'.includes(f)) fail(`unsupported inline flag (?${f})`);
        }
        const next = { ...flags };
        if (on.includes('m')) next.multiline = true;
        if (off.includes('m')) next.multiline = false;
        if (on.includes('i')) next.caseless = true;
        if (off.includes('i')) next.caseless = false;
        // i is applied by this translator (see Flags.caseless), the rest by RE2.
        const onRest = on.replaceAll('i', '');
        const offRest = off.replaceAll('i', '');
        const body = `${onRest}${offRest ? `-${offRest}` : ''}`;
        if (m![3] === ')') {
          // (?i) applies to the rest of the enclosing group.
          groupStack.pop();
          flags = next;
          out += body ? `(?${body})` : '';
        } else {
          flags = next;
          out += body ? `(?${body}:` : '(?:';
        }
        i += m![0].length;
        continue;
      }
      out += '(';
      i += 1;
      continue;
    }
    if (c === ')') {
      const restored = groupStack.pop();
      if (restored) flags = restored;
      out += ')';
      i += 1;
      continue;
    }
    if (c === '$') {
      // PCRE: without m, `$` also matches just before a final newline.
      out += flags.multiline ? '$' : '(?:\\n?\\z)';
      i += 1;
      continue;
    }
    if (c === '{') {
      // A counted repeat {n}, {n,}, {n,m}; any other '{' is a literal brace in PCRE.
      const repeat = /^\{\d+(?:,\d*)?\}/.exec(pattern.slice(i));
      if (!repeat) {
        out += '\\{';
        i += 1;
        continue;
      }
      out += repeat[0];
      i += repeat[0].length;
      if (pattern[i] === '+') i += 1; // possessive, see below
      continue;
    }
    if (c === '}') {
      out += '\\}';
      i += 1;
      continue;
    }
    if (c === '*' || c === '+' || c === '?') {
      out += c;
      i += 1;
      // Possessive (x*+) quantifiers: drop the '+', RE2 never backtracks.
      if (pattern[i] === '+') i += 1;
      continue;
    }
    // Unescaped chars are either metacharacters (kept) or literals; only letters fold.
    const code = c!.charCodeAt(0);
    out += flags.caseless && isAsciiLetter(code) ? literal(code, true) : c;
    i += 1;
  }
  return out;
}

function isAsciiLetter(code: number): boolean {
  return (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}

/** One literal char as RE2 text; an ASCII letter in caseless mode becomes [xX]. */
function literal(code: number, caseless: boolean): string {
  if (caseless && isAsciiLetter(code)) {
    const ch = String.fromCharCode(code);
    return `[${ch.toLowerCase()}${ch.toUpperCase()}]`;
  }
  return quoteChar(String.fromCharCode(code));
}

type Fail = (reason: string) => never;

/** Translate the escape at pattern[i] ('\\'); returns [rewritten text, chars consumed]. */
function translateEscape(
  pattern: string,
  i: number,
  inClass: boolean,
  caseless: boolean,
  fail: Fail,
): [string, number] {
  // Inside a class folding happens on the whole class (translateClass).
  const char = (code: number): string => (inClass ? hexEscape(code) : literal(code, caseless));
  const e = pattern[i + 1];
  if (e === undefined) return fail('pattern ends with a lone backslash');
  switch (e) {
    case 's':
      return [inClass ? SPACE_CHARS : `[${SPACE_CHARS}]`, 2];
    case 'S':
      return [inClass ? NOT_SPACE_CHARS : `[^${SPACE_CHARS}]`, 2];
    case 'h':
      return [inClass ? HSPACE_CHARS : `[${HSPACE_CHARS}]`, 2];
    case 'H':
      return [inClass ? NOT_HSPACE_CHARS : `[^${HSPACE_CHARS}]`, 2];
    case 'v':
      return [inClass ? VSPACE_CHARS : `[${VSPACE_CHARS}]`, 2];
    case 'V':
      return [inClass ? NOT_VSPACE_CHARS : `[^${VSPACE_CHARS}]`, 2];
    case 'R':
      if (inClass) return fail('\\R is not allowed in a character class');
      return ['(?:\\r\\n|\\n|\\x0b|\\f|\\r|\\x85)', 2];
    case 'e':
      return ['\\x1b', 2];
    case 'a':
      return ['\\x07', 2];
    case 'b':
      return [inClass ? '\\x08' : '\\b', 2];
    case 'Z':
      if (inClass) return fail('\\Z is not allowed in a character class');
      return ['(?:\\n?\\z)', 2];
    case 'G':
    case 'K':
    case 'X':
    case 'C':
      return fail(`\\${e} is not supported by RE2`);
    case 'c': {
      const ch = pattern[i + 2];
      if (ch === undefined) return fail('\\c at end of pattern');
      return [char(ch.toUpperCase().charCodeAt(0) ^ 0x40), 3];
    }
    case 'x': {
      if (pattern[i + 2] === '{') {
        const end = pattern.indexOf('}', i + 3);
        if (end < 0) return fail('unterminated \\x{');
        const value = Number.parseInt(pattern.slice(i + 3, end), 16);
        if (Number.isNaN(value)) return fail('bad \\x{..} escape');
        return [char(value), end + 1 - i];
      }
      // \x followed by up to two hex digits (zero digits means NUL in PCRE).
      const m = /^[0-9a-fA-F]{1,2}/.exec(pattern.slice(i + 2, i + 4));
      const digits = m ? m[0] : '';
      return [char(digits ? Number.parseInt(digits, 16) : 0), 2 + digits.length];
    }
    case '0': {
      // Octal: \0, \0nn
      const m = /^[0-7]{0,2}/.exec(pattern.slice(i + 2, i + 4));
      const digits = m ? m[0] : '';
      return [char(digits ? Number.parseInt(digits, 8) : 0), 2 + digits.length];
    }
    case 'o': {
      if (pattern[i + 2] !== '{') return fail('bad \\o escape');
      const end = pattern.indexOf('}', i + 3);
      if (end < 0) return fail('unterminated \\o{');
      return [char(Number.parseInt(pattern.slice(i + 3, end), 8)), end + 1 - i];
    }
    default:
      break;
  }
  if (e >= '1' && e <= '9') {
    // PCRE reads \1..\9 as back-references outside classes (and as octal when
    // the digits form a valid octal number of 3 digits).
    const m = /^[0-7]{3}/.exec(pattern.slice(i + 1, i + 4));
    if (m) return [char(Number.parseInt(m[0], 8) & 0xff), 4];
    if (inClass) {
      const oct = /^[0-7]{1,3}/.exec(pattern.slice(i + 1, i + 4));
      if (oct) return [hexEscape(Number.parseInt(oct[0], 8)), 1 + oct[0].length];
    }
    return fail('back-references are not supported by the linear-time RE2 engine');
  }
  if (/[A-Za-z]/.test(e)) {
    // Letters RE2 knows with the same meaning as PCRE.
    if ('dDwWtnrfABzpPQE'.includes(e)) {
      if ((e === 'p' || e === 'P') && pattern[i + 2] === '{') {
        const end = pattern.indexOf('}', i + 3);
        if (end < 0) return fail('unterminated \\p{');
        return [pattern.slice(i, end + 1), end + 1 - i];
      }
      if (e === 'Q') {
        // \Q...\E quoting: emit each char escaped so classes and groups stay balanced.
        const end = pattern.indexOf('\\E', i + 2);
        const quoted = pattern.slice(i + 2, end < 0 ? pattern.length : end);
        const used = (end < 0 ? pattern.length : end + 2) - i;
        return [[...quoted].map((q) => char(q.charCodeAt(0))).join(''), used];
      }
      if (e === 'E') return ['', 2];
      if (inClass && (e === 'A' || e === 'B' || e === 'z')) return fail(`\\${e} is not allowed in a character class`);
      return [`\\${e}`, 2];
    }
    return fail(`unknown escape \\${e}`);
  }
  // Escaped punctuation, space, or a non-ASCII char: literal.
  return [char(e.charCodeAt(0)), 2];
}

function quoteChar(ch: string): string {
  const code = ch.charCodeAt(0);
  if (/[A-Za-z0-9_]/.test(ch)) return ch;
  if (code < 0x20 || code >= 0x7f || ch === ' ') return hexEscape(code);
  return `\\${ch}`;
}

function hexEscape(code: number): string {
  return `\\x{${code.toString(16)}}`;
}

/** Translate a character class starting at pattern[i] ('['); returns [text, chars consumed]. */
function translateClass(pattern: string, start: number, caseless: boolean, fail: Fail): [string, number] {
  let i = start + 1;
  let out = '';
  let negated = false;
  if (pattern[i] === '^') {
    negated = true;
    i += 1;
  }
  // A ']' right after '[' or '[^' is a literal in PCRE.
  if (pattern[i] === ']') {
    out += '\\]';
    i += 1;
  }
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === ']') {
      const body = caseless ? foldClassBody(out) : out;
      // A folded class can come out empty ([^\x00-\xff] on latin1): keep its meaning.
      if (body === '') return [negated ? '[\\x00-\\x{10ffff}]' : '[^\\x00-\\x{10ffff}]', i + 1 - start];
      return [`[${negated ? '^' : ''}${body}]`, i + 1 - start];
    }
    if (c === '\\') {
      const [text, used] = translateEscape(pattern, i, true, false, fail);
      out += text;
      i += used;
      continue;
    }
    if (c === '[') {
      const posix = /^\[:\^?[a-z]+:\]/.exec(pattern.slice(i));
      if (posix) {
        out += posix[0];
        i += posix[0].length;
        continue;
      }
      out += '\\[';
      i += 1;
      continue;
    }
    out += c;
    i += 1;
  }
  return fail('unterminated character class');
}

const foldCache = new Map<string, string>();
const ALL_LATIN1 = Array.from({ length: 256 }, (_v, code) => String.fromCharCode(code)).join('');
const MARKER = '\u0100';

/**
 * ASCII-only case folding of a class body (RE2 syntax): find which of the 256
 * latin1 chars the class holds, add the other case of every ASCII letter, and
 * write the set back out as ranges ('' when empty). Inputs never hold chars
 * above 0xff, so the set over 0..255 is the whole meaning.
 */
function foldClassBody(body: string): string {
  const hit = foldCache.get(body);
  if (hit !== undefined) return hit;
  // One native call: every member of the class is replaced by a marker outside latin1.
  const marked = new RE2(`[${body}]`, 'g').replace(ALL_LATIN1, MARKER);
  const member = new Array<boolean>(256).fill(false);
  for (let code = 0; code < 256; code++) {
    if (marked[code] !== MARKER) continue;
    member[code] = true;
    if (isAsciiLetter(code)) member[code ^ 0x20] = true;
  }
  let folded = '';
  for (let lo = 0; lo < 256; lo++) {
    if (!member[lo]) continue;
    let hi = lo;
    while (hi + 1 < 256 && member[hi + 1]) hi++;
    folded += hi === lo ? hexEscape(lo) : `${hexEscape(lo)}-${hexEscape(hi)}`;
    lo = hi;
  }
  foldCache.set(body, folded);
  return folded;
}
