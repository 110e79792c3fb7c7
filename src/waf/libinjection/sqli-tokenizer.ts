// SQL tokenizer with libinjection's semantics: the input is a latin1 "binary" string
// (one char per byte) and each token gets a one-letter type. Tokens keep at most 31
// characters of their value, like the C original, because folding and the whitelist
// look at those truncated values.
import { CHAR_CLASSES, SQL_KEYWORDS } from './tables.generated.ts';

export const FLAG_QUOTE_NONE = 1;
export const FLAG_QUOTE_SINGLE = 2;
export const FLAG_QUOTE_DOUBLE = 4;
export const FLAG_SQL_ANSI = 8;
export const FLAG_SQL_MYSQL = 16;
/**
 * Not in libinjection at the pinned commit (later upstream behaviour): a number with an
 * 'e' but no exponent digits ("1.e", "10E") is skipped instead of becoming a word, as
 * MySQL does - closing the "1' or 1.e(1)" bypass. Detection sets it; the raw tokenizer
 * cases run without it.
 */
export const FLAG_SKIP_BARE_EXPONENT = 32;

/** Token types (single characters, as they appear in fingerprints). */
export const T = {
  NONE: '',
  KEYWORD: 'k',
  UNION: 'U',
  GROUP: 'B',
  EXPRESSION: 'E',
  SQLTYPE: 't',
  FUNCTION: 'f',
  BAREWORD: 'n',
  NUMBER: '1',
  VARIABLE: 'v',
  STRING: 's',
  OPERATOR: 'o',
  LOGIC_OPERATOR: '&',
  COMMENT: 'c',
  COLLATE: 'A',
  LEFTPARENS: '(',
  RIGHTPARENS: ')',
  LEFTBRACE: '{',
  RIGHTBRACE: '}',
  DOT: '.',
  COMMA: ',',
  COLON: ':',
  SEMICOLON: ';',
  TSQL: 'T',
  UNKNOWN: '?',
  EVIL: 'X',
  BACKSLASH: '\\',
} as const;

/** Longest value a token keeps (the C original stores 32 bytes including the NUL). */
export const TOKEN_VALUE_MAX = 31;

export interface SqliToken {
  type: string;
  pos: number;
  /** Length of `val` (the token's text, truncated to TOKEN_VALUE_MAX). */
  len: number;
  val: string;
  /** Opening/closing quote of a string-like token, '' when absent. */
  strOpen: string;
  strClose: string;
  /** Number of '@' before a variable (1 or 2). */
  count: number;
}

export function newToken(): SqliToken {
  return { type: '', pos: 0, len: 0, val: '', strOpen: '', strClose: '', count: 0 };
}

export function clearToken(t: SqliToken): void {
  t.type = '';
  t.pos = 0;
  t.len = 0;
  t.val = '';
  t.strOpen = '';
  t.strClose = '';
  t.count = 0;
}

export function copyToken(dst: SqliToken, src: SqliToken): void {
  dst.type = src.type;
  dst.pos = src.pos;
  dst.len = src.len;
  dst.val = src.val;
  dst.strOpen = src.strOpen;
  dst.strClose = src.strClose;
  dst.count = src.count;
}

/** Sets type, position and (truncated) value; leaves quote info and count alone. */
function assign(t: SqliToken, type: string, pos: number, len: number, s: string): void {
  const kept = len < TOKEN_VALUE_MAX ? len : TOKEN_VALUE_MAX;
  t.type = type;
  t.pos = pos;
  t.len = kept;
  t.val = s.substr(pos, kept);
}

function assignChar(t: SqliToken, type: string, pos: number, ch: string): void {
  t.type = type;
  t.pos = pos;
  t.len = 1;
  t.val = ch;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** Upper-cases a-z only, leaving latin1 bytes above 127 untouched (C toupper in the C locale). */
export function asciiUpper(s: string): string {
  if (!NON_ASCII.test(s)) return s.toUpperCase();
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x61 && c <= 0x7a ? String.fromCharCode(c - 0x20) : s.charAt(i);
  }
  return out;
}

const KEYWORDS = new Map<string, string>(Object.entries(SQL_KEYWORDS));
const ASCII_WITHOUT_NUL = /^[\x01-\x7f]*$/;

/**
 * Case-insensitive keyword lookup ('' when unknown). Keys are ASCII, so a word holding
 * a NUL or a high byte can never match (the C comparison stops at NUL); that is checked
 * only on a hit, since misses are the common case.
 */
export function lookupWord(word: string): string {
  const type = KEYWORDS.get(word.toUpperCase());
  if (type === undefined || !ASCII_WITHOUT_NUL.test(word)) return '';
  return type;
}

// Byte sets used by the span helpers, as 256-entry membership tables.
function byteSet(chars: string): Uint8Array {
  const set = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) set[chars.charCodeAt(i)] = 1;
  return set;
}
const WHITE = byteSet(' \t\n\v\f\r\xa0\0');
const WORD_STOP = byteSet(' []{}<>:\\?=@!#~+-*/&|^%(),\';\t\n\v\f\r"\xa0\0');
const VAR_STOP = byteSet(' <>:\\?=@!#~+-*/&|^%(),\';\t\n\v\f\r`"\0');
const DIGITS = byteSet('0123456789');
const HEX_DIGITS = byteSet('0123456789ABCDEFabcdef');
const BIN_DIGITS = byteSet('01');
const MONEY_CHARS = byteSet('0123456789.,');
const LETTERS = byteSet('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ');

/** Length of the run starting at `from` whose bytes are all in `set`. */
function spanIn(s: string, from: number, end: number, set: Uint8Array): number {
  let i = from;
  while (i < end && set[s.charCodeAt(i) & 0xff] === 1) i++;
  return i - from;
}

/** Length of the run starting at `from` whose bytes are all outside `set`. */
function spanOut(s: string, from: number, end: number, set: Uint8Array): number {
  let i = from;
  while (i < end && set[s.charCodeAt(i) & 0xff] !== 1) i++;
  return i - from;
}

export function isWhite(code: number): boolean {
  return WHITE[code] === 1;
}

/** Tokenizer state; `tokenvec` and the stats are used by folding and the whitelist. */
export class SqliState {
  s: string;
  slen: number;
  flags: number;
  pos: number;
  readonly tokenvec: SqliToken[];
  current: SqliToken;
  /** scratch token for folding's trailing comment */
  readonly lastComment: SqliToken;
  fingerprint: string;
  statsCommentDdx: number;
  statsCommentHash: number;
  statsFolds: number;
  statsTokens: number;

  constructor(s: string, flags = 0) {
    this.s = s;
    this.slen = s.length;
    this.tokenvec = [newToken(), newToken(), newToken(), newToken(), newToken(), newToken(), newToken(), newToken()];
    this.lastComment = newToken();
    this.current = this.tokenvec[0] as SqliToken;
    this.flags = 0;
    this.pos = 0;
    this.fingerprint = '';
    this.statsCommentDdx = 0;
    this.statsCommentHash = 0;
    this.statsFolds = 0;
    this.statsTokens = 0;
    this.reset(flags);
  }

  /** Reuses this state for another input (avoids allocating tokens per call). */
  setInput(s: string, flags = 0): void {
    this.s = s;
    this.slen = s.length;
    this.reset(flags);
  }

  /** Starts over with new flags (0 means quote-none + ANSI). */
  reset(flags: number): void {
    this.flags = flags === 0 ? FLAG_QUOTE_NONE | FLAG_SQL_ANSI : flags;
    this.pos = 0;
    for (let i = 0; i < this.tokenvec.length; i++) clearToken(this.tokenvec[i] as SqliToken);
    this.current = this.tokenvec[0] as SqliToken;
    this.fingerprint = '';
    this.statsCommentDdx = 0;
    this.statsCommentHash = 0;
    this.statsFolds = 0;
    this.statsTokens = 0;
  }
}

type Parser = (sf: SqliState) => number;

function parseWhite(sf: SqliState): number {
  return sf.pos + 1;
}

function parseOperator1(sf: SqliState): number {
  assignChar(sf.current, T.OPERATOR, sf.pos, sf.s.charAt(sf.pos));
  return sf.pos + 1;
}

function parseOther(sf: SqliState): number {
  assignChar(sf.current, T.UNKNOWN, sf.pos, sf.s.charAt(sf.pos));
  return sf.pos + 1;
}

/** Punctuation whose type is the character itself: ( ) , ; { } */
function parseChar(sf: SqliState): number {
  const ch = sf.s.charAt(sf.pos);
  assignChar(sf.current, ch, sf.pos, ch);
  return sf.pos + 1;
}

function parseEolComment(sf: SqliState): number {
  const { s, slen, pos } = sf;
  const nl = s.indexOf('\n', pos);
  if (nl === -1) {
    assign(sf.current, T.COMMENT, pos, slen - pos, s);
    return slen;
  }
  assign(sf.current, T.COMMENT, pos, nl - pos, s);
  return nl + 1;
}

/** '#' is a comment in MySQL, an operator elsewhere; either way remember we saw one. */
function parseHash(sf: SqliState): number {
  sf.statsCommentHash += 1;
  if (sf.flags & FLAG_SQL_MYSQL) {
    sf.statsCommentHash += 1;
    return parseEolComment(sf);
  }
  assignChar(sf.current, T.OPERATOR, sf.pos, '#');
  return sf.pos + 1;
}

/**
 * '--' followed by white space or the end is always a comment; '--x' is a comment in
 * ANSI mode only (MySQL reads it as two minus signs); a lone '-' is an operator.
 */
function parseDash(sf: SqliState): number {
  const { s, slen, pos } = sf;
  const nextIsDash = pos + 1 < slen && s.charCodeAt(pos + 1) === 0x2d;
  if (nextIsDash && pos + 2 < slen && isWhite(s.charCodeAt(pos + 2))) return parseEolComment(sf);
  if (nextIsDash && pos + 2 === slen) return parseEolComment(sf);
  if (nextIsDash && sf.flags & FLAG_SQL_ANSI) {
    sf.statsCommentDdx += 1;
    return parseEolComment(sf);
  }
  assignChar(sf.current, T.OPERATOR, pos, '-');
  return pos + 1;
}

/** Index of the first `a` immediately followed by `b` at or after `from` (pair must end before `end`). */
function findPair(s: string, from: number, end: number, a: number, b: number): number {
  for (let i = from; i + 1 < end; i++) {
    if (s.charCodeAt(i) === a && s.charCodeAt(i + 1) === b) return i;
  }
  return -1;
}

/**
 * C-style comment. A nested '/*' (PostgreSQL nests them, MySQL does not) or a MySQL
 * version comment '/*!' makes the parse ambiguous, so such comments are typed EVIL.
 */
function parseSlash(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 1 === slen || s.charCodeAt(pos + 1) !== 0x2a) return parseOperator1(sf);
  const close = findPair(s, pos + 2, slen, 0x2a, 0x2f);
  const clen = close === -1 ? slen - pos : close + 2 - pos;
  let type: string = T.COMMENT;
  if (close !== -1 && findPair(s, pos + 2, close + 1, 0x2f, 0x2a) !== -1) {
    type = T.EVIL;
  } else if (pos + 2 < slen && s.charCodeAt(pos + 2) === 0x21) {
    type = T.EVIL;
  }
  assign(sf.current, type, pos, clen, s);
  return pos + clen;
}

/** T-SQL reads '\N' as NULL. */
function parseBackslash(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 1 < slen && s.charCodeAt(pos + 1) === 0x4e) {
    assign(sf.current, T.NUMBER, pos, 2, s);
    return pos + 2;
  }
  assignChar(sf.current, T.BACKSLASH, pos, '\\');
  return pos + 1;
}

function parseOperator2(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 1 >= slen) return parseOperator1(sf);
  if (pos + 2 < slen && s.startsWith('<=>', pos)) {
    assign(sf.current, T.OPERATOR, pos, 3, s);
    return pos + 3;
  }
  const type = lookupWord(s.substr(pos, 2));
  if (type !== '') {
    assign(sf.current, type, pos, 2, s);
    return pos + 2;
  }
  if (s.charCodeAt(pos) === 0x3a) {
    assignChar(sf.current, T.COLON, pos, ':');
    return pos + 1;
  }
  return parseOperator1(sf);
}

/**
 * An odd number of backslashes right before `quoteAt` (counting back no further than
 * the string's first character `from`) escapes the quote.
 */
function isBackslashEscaped(s: string, quoteAt: number, from: number): boolean {
  let i = quoteAt - 1;
  while (i >= from && s.charCodeAt(i) === 0x5c) i--;
  return ((quoteAt - 1 - i) & 1) === 1;
}

/**
 * Reads a string up to an unescaped `delim`. `offset` is how many opening characters to
 * skip (0 when the input is assumed to start inside a string).
 */
function parseStringCore(sf: SqliState, pos: number, delim: string, offset: number): number {
  const { s, slen } = sf;
  const t = sf.current;
  const start = pos + offset;
  t.strOpen = offset > 0 ? delim : '';
  let q = s.indexOf(delim, start);
  while (true) {
    if (q === -1) {
      assign(t, T.STRING, start, slen - start, s);
      t.strClose = '';
      return slen;
    }
    if (isBackslashEscaped(s, q, start)) {
      q = s.indexOf(delim, q + 1);
    } else if (q + 1 < slen && s.charAt(q + 1) === delim) {
      // doubled delimiter is an escaped quote
      q = s.indexOf(delim, q + 2);
    } else {
      assign(t, T.STRING, start, q - start, s);
      t.strClose = delim;
      return q + 1;
    }
  }
}

function parseString(sf: SqliState): number {
  return parseStringCore(sf, sf.pos, sf.s.charAt(sf.pos), 1);
}

/** PostgreSQL E'...' escape string. */
function parseEstring(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 2 >= slen || s.charCodeAt(pos + 1) !== 0x27) return parseWord(sf);
  return parseStringCore(sf, pos, "'", 2);
}

/** Unicode string U&'...'. */
function parseUstring(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 2 < slen && s.charCodeAt(pos + 1) === 0x26 && s.charCodeAt(pos + 2) === 0x27) {
    sf.pos += 2;
    const next = parseString(sf);
    sf.current.strOpen = 'u';
    if (sf.current.strClose === "'") sf.current.strClose = 'u';
    return next;
  }
  return parseWord(sf);
}

const QSTRING_CLOSERS: Record<string, string> = { '(': ')', '[': ']', '{': '}', '<': '>' };

/** Oracle q'<delim>...<delim>' string, starting `offset` characters into the token. */
function parseQstringCore(sf: SqliState, offset: number): number {
  const { s, slen } = sf;
  const pos = sf.pos + offset;
  if (pos >= slen || (s.charAt(pos) !== 'q' && s.charAt(pos) !== 'Q') || pos + 2 >= slen || s.charCodeAt(pos + 1) !== 0x27) {
    return parseWord(sf);
  }
  const open = s.charCodeAt(pos + 2);
  // the C code reads a signed char, so bytes >= 128 are "less than 33" too
  if (open < 33 || open > 127) return parseWord(sf);
  const openCh = s.charAt(pos + 2);
  const close = (QSTRING_CLOSERS[openCh] ?? openCh) + "'";
  const end = s.indexOf(close, pos + 3);
  const t = sf.current;
  t.strOpen = 'q';
  if (end === -1) {
    assign(t, T.STRING, pos + 3, slen - pos - 3, s);
    t.strClose = '';
    return slen;
  }
  assign(t, T.STRING, pos + 3, end - pos - 3, s);
  t.strClose = 'q';
  return end + 2;
}

function parseQstring(sf: SqliState): number {
  return parseQstringCore(sf, 0);
}

/** N'...' national string, or nq'...' */
function parseNqstring(sf: SqliState): number {
  const { s, slen, pos } = sf;
  if (pos + 2 < slen && s.charCodeAt(pos + 1) === 0x27) return parseEstring(sf);
  return parseQstringCore(sf, 1);
}

/** b'0101' and x'BEEF' literals are numbers. */
function parseDigitString(sf: SqliState, digits: Uint8Array): number {
  const { s, slen, pos } = sf;
  if (pos + 2 >= slen || s.charCodeAt(pos + 1) !== 0x27) return parseWord(sf);
  const n = spanIn(s, pos + 2, slen, digits);
  if (pos + 2 + n >= slen || s.charCodeAt(pos + 2 + n) !== 0x27) return parseWord(sf);
  assign(sf.current, T.NUMBER, pos, n + 3, s);
  return pos + n + 3;
}

function parseBstring(sf: SqliState): number {
  return parseDigitString(sf, BIN_DIGITS);
}

function parseXstring(sf: SqliState): number {
  return parseDigitString(sf, HEX_DIGITS);
}

/** MSSQL [bracketed identifier]. */
function parseBword(sf: SqliState): number {
  const { s, slen, pos } = sf;
  const end = s.indexOf(']', pos);
  if (end === -1) {
    assign(sf.current, T.BAREWORD, pos, slen - pos, s);
    return slen;
  }
  assign(sf.current, T.BAREWORD, pos, end - pos + 1, s);
  return end + 1;
}

function parseWord(sf: SqliState): number {
  const { s, slen, pos } = sf;
  const t = sf.current;
  const wlen = spanOut(s, pos, slen, WORD_STOP);
  assign(t, T.BAREWORD, pos, wlen, s);

  // "SELECT.1" or "SELECT`col`": a keyword before '.' or '`' is a token of its own
  for (let i = 0; i < t.len; i++) {
    const c = t.val.charCodeAt(i);
    if (c === 0x2e || c === 0x60) {
      const type = lookupWord(t.val.slice(0, i));
      if (type !== '' && type !== T.BAREWORD) {
        clearToken(t);
        assign(t, type, pos, i, s);
        return pos + i;
      }
    }
  }
  if (wlen <= TOKEN_VALUE_MAX) {
    const type = lookupWord(t.val);
    t.type = type === '' ? T.BAREWORD : type;
  }
  return pos + wlen;
}

/** `quoted identifier`: a function name stays a function, anything else is a bareword. */
function parseTick(sf: SqliState): number {
  const next = parseStringCore(sf, sf.pos, '`', 1);
  const t = sf.current;
  t.type = lookupWord(t.val) === T.FUNCTION ? T.FUNCTION : T.BAREWORD;
  return next;
}

/** @var, @@var, @@`var`, @'var' */
function parseVar(sf: SqliState): number {
  const { s, slen } = sf;
  const t = sf.current;
  let pos = sf.pos + 1;
  if (pos < slen && s.charCodeAt(pos) === 0x40) {
    pos += 1;
    t.count = 2;
  } else {
    t.count = 1;
  }
  if (pos < slen) {
    const c = s.charCodeAt(pos);
    if (c === 0x60) {
      sf.pos = pos;
      const next = parseTick(sf);
      t.type = T.VARIABLE;
      return next;
    }
    if (c === 0x27 || c === 0x22) {
      sf.pos = pos;
      const next = parseString(sf);
      t.type = T.VARIABLE;
      return next;
    }
  }
  const n = spanOut(s, pos, slen, VAR_STOP);
  assign(t, T.VARIABLE, pos, n, s);
  return pos + n;
}

/** $1.00 money, $$dollar quoted$$ and $tag$dollar quoted$tag$ strings (PostgreSQL). */
function parseMoney(sf: SqliState): number {
  const { s, slen, pos } = sf;
  const t = sf.current;
  if (pos + 1 === slen) {
    assignChar(t, T.BAREWORD, pos, '$');
    return slen;
  }
  const n = spanIn(s, pos + 1, slen, MONEY_CHARS);
  if (n === 1 && s.charCodeAt(pos + 1) === 0x2e) return parseWord(sf);
  if (n > 0) {
    assign(t, T.NUMBER, pos, n + 1, s);
    return pos + n + 1;
  }
  if (s.charCodeAt(pos + 1) === 0x24) {
    const start = pos + 2;
    const end = s.indexOf('$$', start);
    t.strOpen = '$';
    if (end === -1) {
      assign(t, T.STRING, start, slen - start, s);
      t.strClose = '';
      return slen;
    }
    assign(t, T.STRING, start, end - start, s);
    t.strClose = '$';
    return end + 2;
  }
  const tagLen = spanIn(s, pos + 1, slen, LETTERS);
  if (tagLen === 0 || pos + tagLen + 1 === slen || s.charCodeAt(pos + tagLen + 1) !== 0x24) {
    assignChar(t, T.BAREWORD, pos, '$');
    return pos + 1;
  }
  const tag = s.substr(pos, tagLen + 2);
  const start = pos + tagLen + 2;
  const end = s.indexOf(tag, start);
  t.strOpen = '$';
  if (end === -1) {
    assign(t, T.STRING, start, slen - start, s);
    t.strClose = '';
    return slen;
  }
  assign(t, T.STRING, start, end - start, s);
  t.strClose = '$';
  return end + tag.length;
}

function parseNumber(sf: SqliState): number {
  const { s, slen } = sf;
  const t = sf.current;
  let pos = sf.pos;
  if (s.charCodeAt(pos) === 0x30 && pos + 1 < slen) {
    const x = s.charCodeAt(pos + 1) | 0x20;
    const digits = x === 0x78 ? HEX_DIGITS : x === 0x62 ? BIN_DIGITS : undefined;
    if (digits) {
      const n = spanIn(s, pos + 2, slen, digits);
      // "0x" alone is a word
      assign(t, n === 0 ? T.BAREWORD : T.NUMBER, pos, n + 2, s);
      return pos + n + 2;
    }
  }
  const start = pos;
  pos += spanIn(s, pos, slen, DIGITS);
  if (pos < slen && s.charCodeAt(pos) === 0x2e) {
    pos += 1;
    pos += spanIn(s, pos, slen, DIGITS);
    if (pos - start === 1) {
      assignChar(t, T.DOT, start, '.');
      return pos;
    }
  }
  let haveE = false;
  let haveExp = false;
  if (pos < slen && (s.charCodeAt(pos) | 0x20) === 0x65) {
    haveE = true;
    pos += 1;
    if (pos < slen && (s.charCodeAt(pos) === 0x2b || s.charCodeAt(pos) === 0x2d)) pos += 1;
    const n = spanIn(s, pos, slen, DIGITS);
    if (n > 0) haveExp = true;
    pos += n;
  }
  // Oracle float/double suffix: "1.2f", but "123FROM" stays "123" + word
  if (pos < slen) {
    const suffix = s.charCodeAt(pos) | 0x20;
    if (suffix === 0x64 || suffix === 0x66) {
      if (pos + 1 === slen) {
        pos += 1;
      } else {
        const after = s.charCodeAt(pos + 1);
        if (isWhite(after) || after === 0x3b || (after | 0x20) === 0x75) pos += 1;
      }
    }
  }
  if (haveE && !haveExp) {
    // "1234.e" or "10.10E" without exponent digits: MySQL ignores it, libinjection's
    // classic tokenizer calls it a word
    if (!(sf.flags & FLAG_SKIP_BARE_EXPONENT)) assign(t, T.BAREWORD, start, pos - start, s);
  } else {
    assign(t, T.NUMBER, start, pos - start, s);
  }
  return pos;
}

const PARSERS_BY_CLASS: Record<string, Parser> = {
  WHITE: parseWhite,
  BANG: parseOperator2,
  STR: parseString,
  HASH: parseHash,
  MONEY: parseMoney,
  OP1: parseOperator1,
  OP2: parseOperator2,
  LEFTPARENS: parseChar,
  RIGHTPARENS: parseChar,
  COMMA: parseChar,
  SEMICOLON: parseChar,
  LEFTBRACE: parseChar,
  RIGHTBRACE: parseChar,
  UNARY: parseOperator1,
  DASH: parseDash,
  NUM: parseNumber,
  SLASH: parseSlash,
  OTHER: parseOther,
  VAR: parseVar,
  WORD: parseWord,
  BSTRING: parseBstring,
  ESTRING: parseEstring,
  NQSTRING: parseNqstring,
  QSTRING: parseQstring,
  USTRING: parseUstring,
  XSTRING: parseXstring,
  BWORD: parseBword,
  BACK: parseBackslash,
  TICK: parseTick,
};

const PARSERS: readonly Parser[] = CHAR_CLASSES.map((cls) => {
  const parser = PARSERS_BY_CLASS[cls];
  if (!parser) throw new Error(`libinjection: no parser for character class ${cls}`);
  return parser;
});

function quoteOf(flags: number): string {
  if (flags & FLAG_QUOTE_SINGLE) return "'";
  if (flags & FLAG_QUOTE_DOUBLE) return '"';
  return '';
}

/**
 * Reads the next token into `sf.current`. Returns false at the end of input.
 * In a quote context the input is first read as the tail of an already-open string.
 */
export function tokenize(sf: SqliState): boolean {
  const { s, slen } = sf;
  if (slen === 0) return false;
  const t = sf.current;
  clearToken(t);
  if (sf.pos === 0 && sf.flags & (FLAG_QUOTE_SINGLE | FLAG_QUOTE_DOUBLE)) {
    sf.pos = parseStringCore(sf, 0, quoteOf(sf.flags), 0);
    sf.statsTokens += 1;
    return true;
  }
  while (sf.pos < slen) {
    const parser = PARSERS[s.charCodeAt(sf.pos) & 0xff] as Parser;
    sf.pos = parser(sf);
    if (t.type !== '') {
      sf.statsTokens += 1;
      return true;
    }
  }
  return false;
}

/** Convenience for tests and debugging: every raw token of `input`. */
export function tokenizeAll(input: string, flags = FLAG_QUOTE_NONE | FLAG_SQL_ANSI): SqliToken[] {
  const sf = new SqliState(input, flags);
  const out: SqliToken[] = [];
  while (tokenize(sf)) {
    const copy = newToken();
    copyToken(copy, sf.current);
    out.push(copy);
  }
  return out;
}
