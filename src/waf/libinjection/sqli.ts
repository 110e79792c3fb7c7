// SQLi detection in libinjection's manner: tokenize, fold the token stream down to at
// most five tokens, take their types as a fingerprint, and look the fingerprint up in
// the known-attack list, then apply the false-positive whitelist.
import { SQLI_FINGERPRINTS } from './tables.generated.ts';
import * as tokenizer from './sqli-tokenizer.ts';
import type { SqliState, SqliToken } from './sqli-tokenizer.ts';

// Under tsx every use of an imported binding goes through a getter, which dominates
// this hot code; so the imports are read once into module constants.
const {
  FLAG_QUOTE_DOUBLE,
  FLAG_QUOTE_NONE,
  FLAG_QUOTE_SINGLE,
  FLAG_SQL_ANSI,
  FLAG_SQL_MYSQL,
  FLAG_SKIP_BARE_EXPONENT,
  T,
  TOKEN_VALUE_MAX,
  clearToken,
  copyToken,
  asciiUpper,
  lookupWord,
  tokenize,
} = tokenizer;

/** Fingerprints fold to at most this many tokens. */
export const MAX_TOKENS = 5;

const FINGERPRINTS = new Set(SQLI_FINGERPRINTS.map((f) => f.toUpperCase()));

function tok(sf: SqliState, i: number): SqliToken {
  return sf.tokenvec[i] as SqliToken;
}

/** Case-insensitive equality of a (truncated) token value with an upper-case word. */
function valIs(t: SqliToken, upperWord: string): boolean {
  return t.len === upperWord.length && asciiUpper(t.val) === upperWord;
}

function isUnaryOp(t: SqliToken): boolean {
  if (t.type !== T.OPERATOR) return false;
  switch (t.len) {
    case 1:
      return t.val === '+' || t.val === '-' || t.val === '!' || t.val === '~';
    case 2:
      return t.val === '!!';
    case 3:
      return asciiUpper(t.val) === 'NOT';
    default:
      return false;
  }
}

function isArithmeticOp(t: SqliToken): boolean {
  return t.type === T.OPERATOR && t.len === 1 && '*/-+%'.includes(t.val);
}

const MERGEABLE_LEFT = new Set<string>([T.KEYWORD, T.BAREWORD, T.OPERATOR, T.UNION, T.FUNCTION, T.EXPRESSION, T.TSQL, T.SQLTYPE]);
const MERGEABLE_RIGHT = new Set<string>([...MERGEABLE_LEFT, T.LOGIC_OPERATOR]);

/** "UNION" + "ALL" -> "UNION ALL" when the two-word phrase is itself a keyword. */
function mergeWords(a: SqliToken, b: SqliToken): boolean {
  if (!MERGEABLE_LEFT.has(a.type) || !MERGEABLE_RIGHT.has(b.type)) return false;
  const merged = a.val + ' ' + b.val;
  if (merged.length > TOKEN_VALUE_MAX) return false;
  const type = lookupWord(merged);
  if (type === '') return false;
  a.type = type;
  a.len = merged.length;
  a.val = merged;
  return true;
}

/** Words that read as functions when followed by '(' (MySQL/T-SQL niladic functions). */
const FUNCTION_LIKE_WORDS = new Set([
  'USER_ID', 'USER_NAME', 'DATABASE', 'PASSWORD', 'USER', 'CURRENT_USER', 'CURRENT_DATE',
  'CURRENT_TIME', 'CURRENT_TIMESTAMP', 'LOCALTIME', 'LOCALTIMESTAMP',
]);

/** Five-token shapes that are common harmless input (lists, simple expressions) and are folded away. */
function isHarmlessLongPrefix(sf: SqliState): boolean {
  const v = sf.tokenvec;
  const t0 = (v[0] as SqliToken).type;
  const t1 = (v[1] as SqliToken).type;
  const t2 = (v[2] as SqliToken).type;
  const t3 = (v[3] as SqliToken).type;
  const t4 = (v[4] as SqliToken).type;
  return (
    (t0 === T.NUMBER && (t1 === T.OPERATOR || t1 === T.COMMA) && t2 === T.LEFTPARENS && t3 === T.NUMBER &&
      t4 === T.RIGHTPARENS) ||
    (t0 === T.BAREWORD && t1 === T.OPERATOR && t2 === T.LEFTPARENS && (t3 === T.BAREWORD || t3 === T.NUMBER) &&
      t4 === T.RIGHTPARENS) ||
    (t0 === T.NUMBER && t1 === T.RIGHTPARENS && t2 === T.COMMA && t3 === T.LEFTPARENS && t4 === T.NUMBER) ||
    (t0 === T.BAREWORD && t1 === T.RIGHTPARENS && t2 === T.OPERATOR && t3 === T.LEFTPARENS && t4 === T.BAREWORD)
  );
}

const VALUE_TYPES = new Set<string>([T.BAREWORD, T.NUMBER, T.STRING, T.VARIABLE]);

/** Folding progress; kept in an object so the token pulling helper can update it. */
interface FoldCursor {
  /** where the next token goes */
  pos: number;
  /** how many tokens are final */
  left: number;
  /** false once the tokenizer is exhausted */
  more: boolean;
  /** the latest comment seen since the last kept token */
  lastComment: SqliToken;
}

/** Pulls tokens until `want` are pending past `c.left`; comments are remembered, not kept. */
function pullTokens(sf: SqliState, c: FoldCursor, want: number): void {
  while (c.more && c.pos <= MAX_TOKENS && c.pos - c.left < want) {
    sf.current = tok(sf, c.pos);
    c.more = tokenize(sf);
    if (c.more) {
      if (sf.current.type === T.COMMENT) {
        copyToken(c.lastComment, sf.current);
      } else {
        c.lastComment.type = '';
        c.pos += 1;
      }
    }
  }
}

/**
 * Folds the token stream of `sf` into sf.tokenvec and returns how many tokens are
 * meaningful (at most MAX_TOKENS). Comments are dropped except a trailing one.
 */
export function fold(sf: SqliState): number {
  const c: FoldCursor = { pos: 0, left: 0, more: true, lastComment: sf.lastComment };
  clearToken(c.lastComment);

  // skip leading comments, '(' , SQL types and unary operators
  sf.current = tok(sf, 0);
  while (c.more) {
    c.more = tokenize(sf);
    const t = sf.current;
    if (!(t.type === T.COMMENT || t.type === T.LEFTPARENS || t.type === T.SQLTYPE || isUnaryOp(t))) break;
  }
  if (!c.more) return 0;
  c.pos += 1;

  while (true) {
    if (c.pos >= MAX_TOKENS && isHarmlessLongPrefix(sf)) {
      if (c.pos > MAX_TOKENS) {
        copyToken(tok(sf, 1), tok(sf, MAX_TOKENS));
        c.pos = 2;
      } else {
        c.pos = 1;
      }
      c.left = 0;
    }

    if (!c.more || c.left >= MAX_TOKENS) {
      c.left = c.pos;
      break;
    }

    pullTokens(sf, c, 2);
    if (c.pos - c.left < 2) {
      c.left = c.pos;
      continue;
    }

    const a = tok(sf, c.left);
    const b = tok(sf, c.left + 1);

    // --- two-token folds ---
    if (a.type === T.STRING && b.type === T.STRING) {
      // "foo" "bar" concatenates: keep the first
      c.pos -= 1;
      sf.statsFolds += 1;
      continue;
    }
    if (a.type === T.SEMICOLON && b.type === T.SEMICOLON) {
      c.pos -= 1;
      sf.statsFolds += 1;
      continue;
    }
    if ((a.type === T.OPERATOR || a.type === T.LOGIC_OPERATOR) && (isUnaryOp(b) || b.type === T.SQLTYPE)) {
      c.pos -= 1;
      sf.statsFolds += 1;
      c.left = 0;
      continue;
    }
    if (a.type === T.LEFTPARENS && isUnaryOp(b)) {
      c.pos -= 1;
      sf.statsFolds += 1;
      if (c.left > 0) c.left -= 1;
      continue;
    }
    if (mergeWords(a, b)) {
      c.pos -= 1;
      sf.statsFolds += 1;
      if (c.left > 0) c.left -= 1;
      continue;
    }
    if (a.type === T.SEMICOLON && b.type === T.FUNCTION && asciiUpper(b.val.slice(0, 2)) === 'IF') {
      // "; IF ..." is T-SQL control flow, not the IF() function
      b.type = T.TSQL;
      continue;
    }
    if ((a.type === T.BAREWORD || a.type === T.VARIABLE) && b.type === T.LEFTPARENS && FUNCTION_LIKE_WORDS.has(upperVal(a))) {
      a.type = T.FUNCTION;
      continue;
    }
    if (a.type === T.KEYWORD && (valIs(a, 'IN') || valIs(a, 'NOT IN'))) {
      // "IN (" is a comparison; otherwise (e.g. "IN BOOLEAN MODE") just a word
      a.type = b.type === T.LEFTPARENS ? T.OPERATOR : T.BAREWORD;
      continue;
    }
    if (a.type === T.OPERATOR && (valIs(a, 'LIKE') || valIs(a, 'NOT LIKE'))) {
      if (b.type === T.LEFTPARENS) a.type = T.FUNCTION; // LIKE(...)
    } else if (a.type === T.SQLTYPE && (VALUE_TYPES.has(b.type) || b.type === T.SQLTYPE || b.type === T.LEFTPARENS || b.type === T.FUNCTION)) {
      // a cast type in front of a value is noise
      copyToken(a, b);
      c.pos -= 1;
      sf.statsFolds += 1;
      c.left = 0;
      continue;
    } else if (a.type === T.COLLATE && b.type === T.BAREWORD) {
      // collation names are too many to list; ones with '_' are taken as types
      if (b.val.includes('_')) {
        b.type = T.SQLTYPE;
        c.left = 0;
      }
    } else if (a.type === T.BACKSLASH) {
      // T-SQL reads '\%1' as '0 % 1' and '\1' as '1'
      if (isArithmeticOp(b)) {
        a.type = T.NUMBER;
      } else {
        copyToken(a, b);
        c.pos -= 1;
        sf.statsFolds += 1;
      }
      c.left = 0;
      continue;
    } else if ((a.type === T.LEFTPARENS && b.type === T.LEFTPARENS) || (a.type === T.RIGHTPARENS && b.type === T.RIGHTPARENS)) {
      c.pos -= 1;
      c.left = 0;
      sf.statsFolds += 1;
      continue;
    } else if (a.type === T.LEFTBRACE && b.type === T.BAREWORD) {
      // MySQL "{ ``.``.id }" is too odd to fold: flag it
      if (b.len === 0) {
        b.type = T.EVIL;
        return c.left + 2;
      }
      // ODBC "{foo expr}" -> expr
      c.left = 0;
      c.pos -= 2;
      sf.statsFolds += 2;
      continue;
    } else if (b.type === T.RIGHTBRACE) {
      c.pos -= 1;
      c.left = 0;
      sf.statsFolds += 1;
      continue;
    }

    // --- three-token folds ---
    pullTokens(sf, c, 3);
    if (c.pos - c.left < 3) {
      c.left = c.pos;
      continue;
    }
    const third = tok(sf, c.left + 2);
    if (
      (a.type === T.NUMBER && b.type === T.OPERATOR && third.type === T.NUMBER) ||
      (a.type === T.OPERATOR && b.type !== T.LEFTPARENS && third.type === T.OPERATOR) ||
      (a.type === T.LOGIC_OPERATOR && third.type === T.LOGIC_OPERATOR) ||
      (a.type === T.VARIABLE && b.type === T.OPERATOR && (third.type === T.VARIABLE || third.type === T.NUMBER || third.type === T.BAREWORD)) ||
      ((a.type === T.BAREWORD || a.type === T.NUMBER) && b.type === T.OPERATOR && (third.type === T.NUMBER || third.type === T.BAREWORD))
    ) {
      // "1+2", "a=b", "@x:=1" ... an expression reduces to its first operand
      c.pos -= 2;
      c.left = 0;
      continue;
    }
    if (VALUE_TYPES.has(a.type) && b.type === T.OPERATOR && b.val === '::' && third.type === T.SQLTYPE) {
      // PostgreSQL cast "x::int"
      c.pos -= 2;
      c.left = 0;
      sf.statsFolds += 2;
      continue;
    }
    if (VALUE_TYPES.has(a.type) && b.type === T.COMMA && VALUE_TYPES.has(third.type)) {
      c.pos -= 2;
      c.left = 0;
      continue;
    }
    if ((a.type === T.EXPRESSION || a.type === T.GROUP || a.type === T.COMMA) && isUnaryOp(b) && third.type === T.LEFTPARENS) {
      // "SELECT + (" -> "SELECT ("
      copyToken(b, third);
      c.pos -= 1;
      c.left = 0;
      continue;
    }
    if ((a.type === T.KEYWORD || a.type === T.EXPRESSION || a.type === T.GROUP) && isUnaryOp(b) && (VALUE_TYPES.has(third.type) || third.type === T.FUNCTION)) {
      // "SELECT - 1" -> "SELECT 1"
      copyToken(b, third);
      c.pos -= 1;
      c.left = 0;
      continue;
    }
    if (a.type === T.COMMA && isUnaryOp(b) && VALUE_TYPES.has(third.type)) {
      // ", -1": drop the sign and back up so "1,-1" can fold further
      copyToken(b, third);
      c.left = 0;
      c.pos -= 3;
      continue;
    }
    if (a.type === T.COMMA && isUnaryOp(b) && third.type === T.FUNCTION) {
      copyToken(b, third);
      c.pos -= 1;
      c.left = 0;
      continue;
    }
    if (a.type === T.BAREWORD && b.type === T.DOT && third.type === T.BAREWORD) {
      // database.table
      c.pos -= 2;
      c.left = 0;
      continue;
    }
    if (a.type === T.EXPRESSION && b.type === T.DOT && third.type === T.BAREWORD) {
      // "SELECT . `foo`" -> "SELECT `foo`"
      copyToken(b, third);
      c.pos -= 1;
      c.left = 0;
      continue;
    }
    if (a.type === T.FUNCTION && b.type === T.LEFTPARENS && third.type !== T.RIGHTPARENS) {
      // USER() takes no arguments, so USER(x) is not that function
      if (valIs(a, 'USER')) a.type = T.BAREWORD;
    }

    c.left += 1;
  }

  // keep a trailing comment when there is room for it
  if (c.left < MAX_TOKENS && c.lastComment.type === T.COMMENT) {
    copyToken(tok(sf, c.left), c.lastComment);
    c.left += 1;
  }
  return c.left > MAX_TOKENS ? MAX_TOKENS : c.left;
}

function upperVal(t: SqliToken): string {
  return asciiUpper(t.val);
}

/** Tokenizes and folds `sf` under `flags`, setting and returning sf.fingerprint. */
export function fingerprint(sf: SqliState, flags: number): string {
  sf.reset(flags);
  const n = fold(sf);

  // PHP's unclosed empty backtick at the end acts as a comment
  if (n > 2) {
    const last = tok(sf, n - 1);
    if (last.type === T.BAREWORD && last.strOpen === '`' && last.len === 0 && last.strClose === '') {
      last.type = T.COMMENT;
    }
  }
  let fp = '';
  for (let i = 0; i < n; i++) fp += tok(sf, i).type;

  // an EVIL token means the input could not be parsed reliably: report just 'X'
  if (fp.includes(T.EVIL)) {
    fp = T.EVIL;
    const first = tok(sf, 0);
    clearToken(first);
    first.type = T.EVIL;
    first.val = T.EVIL;
    first.len = 1;
    tok(sf, 1).type = '';
  }
  sf.fingerprint = fp;
  return fp;
}

/** Is the fingerprint on the list of SQLi shapes? */
export function isBlacklisted(fp: string): boolean {
  return fp.length > 0 && FINGERPRINTS.has(fp.toUpperCase());
}

/**
 * Whitelist for fingerprints that are on the list but too short or too common to be
 * trusted alone. Returns true when the match still looks like SQLi.
 */
export function notWhitelisted(sf: SqliState): boolean {
  const fp = sf.fingerprint;
  const n = fp.length;
  const t0 = tok(sf, 0);
  const t1 = tok(sf, 1);

  // MSSQL audit logs skip statements mentioning sp_password: a known evasion
  if (n > 1 && fp[n - 1] === T.COMMENT && sf.s.includes('sp_password')) return true;

  if (n === 2) {
    if (fp[1] === T.UNION) {
      // "1 union" alone is plausible text; with folding or comments it is not
      return sf.statsTokens !== 2;
    }
    if (t1.val.charAt(0) === '#') return false;
    // "word --" / "word #": only a /* comment makes it SQL
    if (t0.type === T.BAREWORD && t1.type === T.COMMENT && t1.val.charAt(0) !== '/') return false;
    if (t0.type === T.NUMBER && t1.type === T.COMMENT) {
      if (t1.val.charAt(0) === '/') return true;
      if (sf.statsTokens > 2) return true;
      // base64-ish "1234-ABCD--" is not SQLi; "1234 --", "1234/*", "1234--" are
      const after = sf.s.charCodeAt(t0.len);
      if (Number.isNaN(after) || after <= 32 || after >= 128) return true;
      const next = sf.s.charAt(t0.len + 1);
      if (after === 0x2f && next === '*') return true;
      if (after === 0x2d && next === '-') return true;
      return false;
    }
    // "foo --x": a long dash comment is usually decoration
    if (t1.len > 2 && t1.val.charAt(0) === '-') return false;
    return true;
  }

  if (n === 3) {
    if (fp === 'sos' || fp === 's&s') {
      const t2 = tok(sf, 2);
      // ...foo' + 'bar... : unopened and unclosed strings joined by an operator
      return t0.strOpen === '' && t2.strClose === '' && t0.strClose === t2.strOpen;
    }
    if (fp === 's&n' || fp === 'n&1' || fp === '1&1' || fp === '1&v' || fp === '1&s') {
      // 'sexy and 17' is text; more tokens folded into it is not
      return sf.statsTokens !== 3;
    }
    if (t1.type === T.KEYWORD) {
      // only "INTO OUTFILE"/"INTO DUMPFILE" style keywords count here
      return t1.len >= 5 && asciiUpper(t1.val.slice(0, 4)) === 'INTO';
    }
  }
  return true;
}

export function checkFingerprint(sf: SqliState): boolean {
  return isBlacklisted(sf.fingerprint) && notWhitelisted(sf);
}

function reparseAsMysql(sf: SqliState): boolean {
  return sf.statsCommentDdx > 0 || sf.statsCommentHash > 0;
}

/**
 * Full detection over the contexts libinjection tries: as-is, then as if inside a
 * single-quoted string, then a double-quoted one; ANSI comments first and MySQL
 * comments when the input had '#' or '--x'.
 */
export function isSqli(sf: SqliState, extraFlags: number = FLAG_SKIP_BARE_EXPONENT): boolean {
  if (sf.slen === 0) return false;
  const x = extraFlags;
  if (matchesUnder(sf, x | FLAG_QUOTE_NONE | FLAG_SQL_ANSI)) return true;
  if (reparseAsMysql(sf) && matchesUnder(sf, x | FLAG_QUOTE_NONE | FLAG_SQL_MYSQL)) return true;
  if (sf.s.includes("'")) {
    if (matchesUnder(sf, x | FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI)) return true;
    if (reparseAsMysql(sf) && matchesUnder(sf, x | FLAG_QUOTE_SINGLE | FLAG_SQL_MYSQL)) return true;
  }
  if (sf.s.includes('"') && matchesUnder(sf, x | FLAG_QUOTE_DOUBLE | FLAG_SQL_MYSQL)) return true;
  return false;
}

function matchesUnder(sf: SqliState, flags: number): boolean {
  fingerprint(sf, flags);
  return checkFingerprint(sf);
}
