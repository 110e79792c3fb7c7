// Quoted cookie values as Python's cookie readers give them (session 24 WAF evasion audit):
// http.cookies (SimpleCookie, _unquote: Django, aiohttp, Tornado) and werkzeug (Flask).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { looseCookiePairs, quotedCookieValues } from '../../../src/waf/bodies/cookie.ts';

describe('quotedCookieValues', () => {
  const rows: [string, [string, string][]][] = [
    ['a=plain; b=2', []],
    ['q="quoted, no escape"', []],
    ['q="1\\047 OR \\0471\\047=\\0471"', [['q', "1' OR '1'='1"]]],
    ['a=1; q="a\\"b\\\\c\\=d\\n"; z=2', [['q', 'a"b\\c=dn']]],
    ['q="\\012\\400"', [['q', '\n400']]], // \4xx is not octal to Python: the backslash goes, the digits stay
    ["q=\"1' OR/*;*/'1'='1\"", [['q', "1' OR/*;*/'1'='1"]]], // one value across ';'
    ['a="x;y"; b="p\\047"', [['a', 'x;y'], ['b', "p'"]]],
    ['q="unclosed\\047; z=1', []], // not a quoted string to Python either
  ];
  for (const [header, want] of rows) it(JSON.stringify(header), () => assert.deepEqual(quotedCookieValues(header), want));
});

// Pairs ASP.NET Core (`,`, and reading on past what it cannot) and Python's SimpleCookie (blanks)
// read where a `;` split does not (session 28 WAF evasion audit).
describe('looseCookiePairs', () => {
  const rows: [string, [string, string][]][] = [
    ['a=plain; b=2', []],
    ['_ga=GA1.2.3; sid=abc==', []],
    ['c=1,q=x', [['c', '1'], ['q', 'x']]],
    ['c=1, q=x; d=2', [['c', '1'], ['q', 'x']]],
    ['c=1 q=x', [['c', '1'], ['q', 'x']]],
    ['c=1\tq=x', [['c', '1'], ['q', 'x']]],
    ['c="1" q=x', [['c', ''], ['q', 'x']]], // a superset: pieces between any of the separators
    ['c=1\\q=x', [['c', '1'], ['q', 'x']]],
    ['c=1\u00e9q=x', [['c', '1'], ['q', 'x']]],
    ['c=hello world', [['c', 'hello']]], // SimpleCookie refuses the header; the superset reads on
    ['c=a b=', [['c', 'a'], ['b', '']]],
  ];
  for (const [header, want] of rows) it(JSON.stringify(header), () => assert.deepEqual(looseCookiePairs(header), want));
});
