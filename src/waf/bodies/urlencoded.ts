// application/x-www-form-urlencoded bodies (and query strings).
import { urlDecode } from '../transformations/decode.ts';

export type Pair = [name: string, value: string];

/**
 * ModSecurity semantics: split on the separator, '+' is a space, %HH decoded
 * (invalid escapes kept as they are), a piece without '=' is a name with an
 * empty value, empty pieces are ignored.
 */
export function parseUrlEncoded(body: string, separator = '&'): Pair[] {
  const pairs: Pair[] = [];
  if (body === '') return pairs;
  if (separator === '') {
    // split('') cuts between every character: each is a piece of its own.
    for (const piece of body.split(separator)) pairs.push(piece === '=' ? ['', ''] : [urlDecode(piece), '']);
    return pairs;
  }
  // The pieces are read in place (no split() array of pieces): a query string is parsed on every
  // request. `eq` is the first '=' at or after `start` (-1: none left, -2: not looked for yet),
  // looked for again only once passed: one scan of the body in all, however many pieces lack '='.
  const n = body.length;
  let start = 0;
  let eq = -2;
  for (;;) {
    let end = body.indexOf(separator, start);
    if (end < 0) end = n;
    if (end > start) {
      if (eq !== -1 && eq < start) eq = body.indexOf('=', start);
      if (eq >= 0 && eq < end) pairs.push([urlDecode(body.slice(start, eq)), urlDecode(body.slice(eq + 1, end))]);
      else pairs.push([urlDecode(body.slice(start, end)), '']);
    }
    if (end === n) return pairs;
    start = end + separator.length;
  }
}

/**
 * The pairs a query string or form gives where `;` also separates: Rack 2.2's `Request#GET` (and
 * so Rails up to 7.0 and Sinatra on it: `[&;]` and the blanks after one are a separator), Perl's
 * CGI.pm and Plack (WWW::Form::UrlEncoded) for queries and form bodies. Only the `&`-pieces that
 * hold a `;` give pairs: `a=1;q=x` is `a` = `1;q=x` to the WAF and `a` = `1`, `q` = `x` to such an
 * application; without these an exclusion of `ARGS:a` also skipped an attack in `q`.
 */
export function semicolonPairs(query: string): Pair[] {
  const pairs: Pair[] = [];
  for (const piece of query.split('&')) {
    if (piece.indexOf(';') < 0) continue;
    for (let sub of piece.split(';')) {
      let s = 0;
      while (s < sub.length && sub.charCodeAt(s) === 0x20) s++;
      sub = sub.slice(s);
      if (sub === '') continue;
      const eq = sub.indexOf('=');
      pairs.push(eq < 0 ? [urlDecode(sub), ''] : [urlDecode(sub.slice(0, eq)), urlDecode(sub.slice(eq + 1))]);
    }
  }
  return pairs;
}

/**
 * A form body's pairs as every reader sees them: the `separator` split, and with `&` the pairs of
 * readers that split on `;` too (semicolonPairs) wherever the body holds one.
 */
export function formPairs(body: string, separator = '&'): Pair[] {
  const pairs = parseUrlEncoded(body, separator);
  return separator === '&' && body.indexOf(';') >= 0 ? pairs.concat(semicolonPairs(body)) : pairs;
}
