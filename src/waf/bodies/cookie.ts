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
