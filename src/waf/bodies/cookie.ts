// Cookie values as Python's cookie readers give them to the application.
import type { Pair } from './urlencoded.ts';

/** `name="quoted string"`, the quoted string as Python's SimpleCookie and werkzeug match it (`;` inside). */
const QUOTED = /([^\s;,="]+)\s*=\s*"((?:[^\\"]|\\[\s\S])*)"/g;

/**
 * The double-quoted cookie values of a Cookie header as Python reads them: http.cookies
 * (SimpleCookie: aiohttp, Tornado; `_unquote`: Django's parse_cookie) and werkzeug (Flask) match a
 * quoted string that may hold `;`, drop the quotes and decode `\ooo` (octal, first digit 0-3) and
 * `\x` escapes. `q="1\047 OR \0471\047=\0471"` is `1' OR '1'='1` to the view, and
 * `q="1' OR/*;*\/'1'='1"` one value, while a split on `;` gives the CRS escapes and halves
 * (session 24 WAF evasion audit). Only the values that reading changes: one holding `\` or `;`.
 */
export function quotedCookieValues(header: string): Pair[] {
  const out: Pair[] = [];
  QUOTED.lastIndex = 0;
  for (let m = QUOTED.exec(header); m; m = QUOTED.exec(header)) {
    const inner = m[2]!;
    if (inner.indexOf('\\') < 0 && inner.indexOf(';') < 0) continue;
    out.push([m[1]!, inner.replace(/\\([0-3][0-7]{2}|[\s\S])/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(Number.parseInt(e, 8)) : e))]);
  }
  return out;
}

/**
 * A header other cookie readers split where a `;` split does not (see looseCookiePairs): a `,`,
 * `"`, `\` or non-ASCII character, or a blank after a character other than `;` and blanks. A loop,
 * not a regex: it runs on every request with a Cookie header.
 */
function loose(header: string): boolean {
  let prev = 0x3b;
  for (let i = 0; i < header.length; i++) {
    const c = header.charCodeAt(i);
    if (c === 0x2c || c === 0x22 || c === 0x5c || c >= 0x7f) return true;
    if ((c === 0x20 || c === 0x09) && prev !== 0x3b && prev !== 0x20 && prev !== 0x09) return true;
    prev = c;
  }
  return false;
}
/** What those readers end a name=value at: ASP.NET Core's non-cookie-octets, and Python's blanks. */
const LOOSE_SEPARATORS = /[;,\s"\\\u0000-\u001f\u007f-\uffff]+/;

/**
 * `name=value` pairs of a Cookie header that readers other than a `;` split find, where they
 * differ from it (session 28 WAF evasion audit):
 * - ASP.NET Core (`CookieHeaderParserShared`) separates cookies by `,` as well as `;`, and after
 *   a pair it cannot read (a value with a blank, `"`, `\` or a non-ASCII character) moves on one
 *   character at a time and reads the next `token=value` it finds: `c=1\q=x` is `q` = `x` to it;
 * - Python's SimpleCookie (Bottle's `request.cookies`, aiohttp, CherryPy) ends a value at a blank:
 *   `c=1 q=x` is `c` = `1` and `q` = `x`.
 * The `;` split gives `c` = `1 q=x`: an exclusion of REQUEST_COOKIES:c also skipped the value of
 * `q`. Every piece between such separators that holds an `=` after its name is a pair here, a
 * superset of what the two read (values are kept as sent, as REQUEST_COOKIES keeps them).
 */
export function looseCookiePairs(header: string): Pair[] {
  if (!loose(header)) return [];
  const plain = new Set<string>();
  for (const piece of header.split(';')) plain.add(piece.replace(/^[ \t]+/, ''));
  const out: Pair[] = [];
  for (const piece of header.split(LOOSE_SEPARATORS)) {
    const eq = piece.indexOf('=');
    if (eq <= 0 || plain.has(piece)) continue;
    out.push([piece.slice(0, eq), piece.slice(eq + 1)]);
  }
  return out;
}
