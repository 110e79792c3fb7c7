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
  for (const piece of body.split(separator)) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = eq < 0 ? piece : piece.slice(0, eq);
    const value = eq < 0 ? '' : piece.slice(eq + 1);
    pairs.push([urlDecode(name), urlDecode(value)]);
  }
  return pairs;
}
