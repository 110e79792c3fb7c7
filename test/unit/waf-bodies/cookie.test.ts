// Cookie values with backslash escapes, decoded as Python's cookie readers do (session 24 WAF
// evasion audit): http.cookies._unquote, used by Django's parse_cookie, werkzeug and Tornado.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { unescapedCookieValue } from '../../../src/waf/bodies/cookie.ts';

describe('unescapedCookieValue', () => {
  const rows: [string, string | undefined][] = [
    ['plain', undefined],
    ['"quoted, no escape"', undefined],
    ['"1\\047 OR \\0471\\047=\\0471"', "1' OR '1'='1"],
    ['"a\\"b\\\\c\\=d\\n"', 'a"b\\c=dn'],
    ['"\\012\\400"', '\n400'], // \4xx is not octal to Python: the backslash goes, the digits stay
    [' "x\\047y" ', "x'y"],
    ['"open\\047 quote', "open' quote"], // the WAF's piece of a quoted value werkzeug reads across ';'
    ['bare\\047', "bare'"],
  ];
  for (const [value, want] of rows) it(JSON.stringify(value), () => assert.equal(unescapedCookieValue(value), want));
});
