// SQLi detection in libinjection's manner: tokenize, fold the token stream down to at
// most five tokens, take their types as a fingerprint, and look the fingerprint up in
// the known-attack list, then apply the false-positive whitelist.
import { SQLI_FINGERPRINTS } from './tables.generated.ts';
import {
  FLAG_QUOTE_DOUBLE,
  FLAG_QUOTE_NONE,
  FLAG_QUOTE_SINGLE,
  FLAG_SQL_ANSI,
  FLAG_SQL_MYSQL,
  SqliState,
  T,
  TOKEN_VALUE_MAX,
  clearToken,
  copyToken,
  asciiUpper,
  lookupWord,
  newToken,
  tokenize,
  type SqliToken,
} from './sqli-tokenizer.ts';

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

/** Shapes of five/six tokens that are common harmless input and are folded away. */
function isHarmlessLongPrefix(sf: SqliState): boolean {
  const ty = (i: number): string => tok(sf, i).type;
  return (
    (ty(0) === T.NUMBER && (ty(1) === T.OPERATOR || ty(1) === T.COMMA) && ty(2) === T.LEFTPARENS &&
      ty(3) === T.NUMBER && ty(4) === T.RIGHTPARENS) ||
    (ty(0) === T.BAREWORD && ty(1) === T.OPERATOR && ty(2) === T.LEFTPARENS &&
      (ty(3) === T.BAREWORD || ty(3) === T.NUMBER) && ty(4) === T.RIGHTPARENS) ||
    (ty(0) === T.NUMBER && ty(1) === T.RIGHTPARENS && ty(2) === T.COMMA && ty(3) === T.LEFTPARENS &&
      ty(4) === T.NUMBER) ||
    (ty(0) === T.BAREWORD && ty(1) === T.RIGHTPARENS && ty(2) === T.OPERATOR && ty(3) === T.LEFTPARENS &&
      ty(4) === T.BAREWORD)
  );
}

const VALUE_TYPES = new Set<string>([T.BAREWORD, T.NUMBER, T.STRING, T.VARIABLE]);

/**
 * Folds the token stream of `sf` into sf.tokenvec and returns how many tokens are
 * meaningful (at most MAX_TOKENS). Comments are dropped except a trailing one.
 */
export function fold(sf: SqliState): number {
  const lastComment = newToken();
  let pos = 0; // where the next token goes
  let left = 0; // tokens already final
  let more = true;

  // skip leading comments, '(' , SQL types and unary operators
  sf.current = tok(sf, 0);
  while (more) {
    more = tokenize(sf);
    const t = sf.current;
    if (!(t.type === T.COMMENT || t.type === T.LEFTPARENS || t.type === T.SQLTYPE || isUnaryOp(t))) break;
  }
  if (!more) return 0;
  pos += 1;

  // Pulls tokens until `want` are pending past `left`; comments are remembered, not kept.
  const fill = (want: number): void => {
    while (more && pos <= MAX_TOKENS && pos - left < want) {
      sf.current = tok(sf, pos);
      more = tokenize(sf);
      if (more) {
        if (sf.current.type === T.COMMENT) {
          copyToken(lastComment, sf.current);
        } else {
          lastComment.type = '';
          pos += 1;
        }
      }
    }
  };

  while (true) {
    if (pos >= MAX_TOKENS && isHarmlessLongPrefix(sf)) {
      if (pos > MAX_TOKENS) {
        copyToken(tok(sf, 1), tok(sf, MAX_TOKENS));
        pos = 2;
      } else {
        pos = 1;
      }
      left = 0;
    }

    if (!more || left >= MAX_TOKENS) {
      left = pos;
      break;
    }

    fill(2);
    if (pos - left < 2) {
      left = pos;
      continue;
    }

    const a = tok(sf, left);
    const b = tok(sf, left + 1);

    // --- two-token folds ---
    if (a.type === T.STRING && b.type === T.STRING) {
      // "foo" "bar" concatenates: keep the first
      pos -= 1;
      sf.statsFolds += 1;
      continue;
    }
    if (a.type === T.SEMICOLON && b.type === T.SEMICOLON) {
      pos -= 1;
      sf.statsFolds += 1;
      continue;
    }
    if ((a.type === T.OPERATOR || a.type === T.LOGIC_OPERATOR) && (isUnaryOp(b) || b.type === T.SQLTYPE)) {
      pos -= 1;
      sf.statsFolds += 1;
      left = 0;
      continue;
    }
    if (a.type === T.LEFTPARENS && isUnaryOp(b)) {
      pos -= 1;
      sf.statsFolds += 1;
      if (left > 0) left -= 1;
      continue;
    }
    if (mergeWords(a, b)) {
      pos -= 1;
      sf.statsFolds += 1;
      if (left > 0) left -= 1;
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
      pos -= 1;
      sf.statsFolds += 1;
      left = 0;
      continue;
    } else if (a.type === T.COLLATE && b.type === T.BAREWORD) {
      // collation names are too many to list; ones with '_' are taken as types
      if (b.val.includes('_')) {
        b.type = T.SQLTYPE;
        left = 0;
      }
    } else if (a.type === T.BACKSLASH) {
      // T-SQL reads '\%1' as '0 % 1' and '\1' as '1'
      if (isArithmeticOp(b)) {
        a.type = T.NUMBER;
      } else {
        copyToken(a, b);
        pos -= 1;
        sf.statsFolds += 1;
      }
      left = 0;
      continue;
    } else if ((a.type === T.LEFTPARENS && b.type === T.LEFTPARENS) || (a.type === T.RIGHTPARENS && b.type === T.RIGHTPARENS)) {
      pos -= 1;
      left = 0;
      sf.statsFolds += 1;
      continue;
    } else if (a.type === T.LEFTBRACE && b.type === T.BAREWORD) {
      // MySQL "{ ``.``.id }" is too odd to fold: flag it
      if (b.len === 0) {
        b.type = T.EVIL;
        return left + 2;
      }
      // ODBC "{foo expr}" -> expr
      left = 0;
      pos -= 2;
      sf.statsFolds += 2;
      continue;
    } else if (b.type === T.RIGHTBRACE) {
      pos -= 1;
      left = 0;
      sf.statsFolds += 1;
      continue;
    }

    // --- three-token folds ---
    fill(3);
    if (pos - left < 3) {
      left = pos;
      continue;
    }
    const c = tok(sf, left + 2);
    if (
      (a.type === T.NUMBER && b.type === T.OPERATOR && c.type === T.NUMBER) ||
      (a.type === T.OPERATOR && b.type !== T.LEFTPARENS && c.type === T.OPERATOR) ||
      (a.type === T.LOGIC_OPERATOR && c.type === T.LOGIC_OPERATOR) ||
      (a.type === T.VARIABLE && b.type === T.OPERATOR && (c.type === T.VARIABLE || c.type === T.NUMBER || c.type === T.BAREWORD)) ||
      ((a.type === T.BAREWORD || a.type === T.NUMBER) && b.type === T.OPERATOR && (c.type === T.NUMBER || c.type === T.BAREWORD))
    ) {
      // "1+2", "a=b", "@x:=1" ... an expression reduces to its first operand
      pos -= 2;
      left = 0;
      continue;
    }
    if (VALUE_TYPES.has(a.type) && b.type === T.OPERATOR && b.val === '::' && c.type === T.SQLTYPE) {
      // PostgreSQL cast "x::int"
      pos -= 2;
      left = 0;
      sf.statsFolds += 2;
      continue;
    }
    if (VALUE_TYPES.has(a.type) && b.type === T.COMMA && VALUE_TYPES.has(c.type)) {
      pos -= 2;
      left = 0;
      continue;
    }
    if ((a.type === T.EXPRESSION || a.type === T.GROUP || a.type === T.COMMA) && isUnaryOp(b) && c.type === T.LEFTPARENS) {
      // "SELECT + (" -> "SELECT ("
      copyToken(b, c);
      pos -= 1;
      left = 0;
      continue;
    }
    if ((a.type === T.KEYWORD || a.type === T.EXPRESSION || a.type === T.GROUP) && isUnaryOp(b) && (VALUE_TYPES.has(c.type) || c.type === T.FUNCTION)) {
      // "SELECT - 1" -> "SELECT 1"
      copyToken(b, c);
      pos -= 1;
      left = 0;
      continue;
    }
    if (a.type === T.COMMA && isUnaryOp(b) && VALUE_TYPES.has(c.type)) {
      // ", -1": drop the sign and back up so "1,-1" can fold further
      copyToken(b, c);
      left = 0;
      pos -= 3;
      continue;
    }
    if (a.type === T.COMMA && isUnaryOp(b) && c.type === T.FUNCTION) {
      copyToken(b, c);
      pos -= 1;
      left = 0;
      continue;
    }
    if (a.type === T.BAREWORD && b.type === T.DOT && c.type === T.BAREWORD) {
      // database.table
      pos -= 2;
      left = 0;
      continue;
    }
    if (a.type === T.EXPRESSION && b.type === T.DOT && c.type === T.BAREWORD) {
      // "SELECT . `foo`" -> "SELECT `foo`"
      copyToken(b, c);
      pos -= 1;
      left = 0;
      continue;
    }
    if (a.type === T.FUNCTION && b.type === T.LEFTPARENS && c.type !== T.RIGHTPARENS) {
      // USER() takes no arguments, so USER(x) is not that function
      if (valIs(a, 'USER')) a.type = T.BAREWORD;
    }

    left += 1;
  }

  // keep a trailing comment when there is room for it
  if (left < MAX_TOKENS && lastComment.type === T.COMMENT) {
    copyToken(tok(sf, left), lastComment);
    left += 1;
  }
  return left > MAX_TOKENS ? MAX_TOKENS : left;
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
export function isSqli(sf: SqliState): boolean {
  if (sf.slen === 0) return false;
  const tryFlags = (flags: number): boolean => {
    fingerprint(sf, flags);
    return checkFingerprint(sf);
  };
  if (tryFlags(FLAG_QUOTE_NONE | FLAG_SQL_ANSI)) return true;
  if (reparseAsMysql(sf) && tryFlags(FLAG_QUOTE_NONE | FLAG_SQL_MYSQL)) return true;
  if (sf.s.includes("'")) {
    if (tryFlags(FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI)) return true;
    if (reparseAsMysql(sf) && tryFlags(FLAG_QUOTE_SINGLE | FLAG_SQL_MYSQL)) return true;
  }
  if (sf.s.includes('"') && tryFlags(FLAG_QUOTE_DOUBLE | FLAG_SQL_MYSQL)) return true;
  return false;
}
