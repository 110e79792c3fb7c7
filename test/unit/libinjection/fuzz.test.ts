// Deterministic random inputs built from SQL/HTML-significant bytes: detection must never
// throw or loop, and its results must keep their invariants. A WAF operator that throws
// on odd input would turn into a bypass or an outage.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { SQLI_FINGERPRINTS } from '../../../src/waf/libinjection/tables.generated.ts';
import { detectSqli, detectXss, html5Tokens, tokenizeAll } from '../../../src/waf/libinjection/index.ts';
import { seededRng } from '../../../plugins/balancing/common.ts'; // mulberry32, fixed seeds so failures reproduce


const PIECES = [
  "'", '"', '`', '\\', '/*', '*/', '/*!', '--', '-', '#', ';', '(', ')', '{', '}', '[', ']', ',', '.', '@', '@@',
  '$', '$$', '$a$', 'q\'[', "N'", "E'", "x'", "b'", "U&'", '0x', '0b', '1', '1.e', '1e5', '2d', ' ', '\t', '\n',
  '\0', '\xa0', '\xff', '\x80', 'UNION', 'SELECT', 'OR', 'AND', 'NOT', 'IN', 'LIKE', 'CHAR', 'IF', 'USER', 'sp_password',
  '=', '<', '>', '<=>', '!', '!!', '|', '&', '&&', '::', ':', '<', '</', '<!--', '-->', '<!', '<?', '<%', '%>',
  '<![CDATA[', ']]>', 'script', 'svg', 'on', 'onload', 'href', 'style', 'src', 'javascript:', '&#', '&#x', ';x', '=',
];

function randomInput(rand: () => number): string {
  const n = Math.floor(rand() * 24);
  let s = '';
  for (let i = 0; i < n; i++) {
    s += rand() < 0.8 ? (PIECES[Math.floor(rand() * PIECES.length)] as string) : String.fromCharCode(Math.floor(rand() * 256));
  }
  return s;
}

const KNOWN = new Set(SQLI_FINGERPRINTS.map((f) => f.toUpperCase()));

test('random SQL/HTML-ish inputs never throw and keep result invariants', () => {
  const rand = seededRng(0x5eed);
  for (let i = 0; i < 20000; i++) {
    const input = randomInput(rand);
    const where = `input ${JSON.stringify(input)}`;
    const r = detectSqli(input);
    assert.ok(r.fingerprint.length <= 5, where);
    if (r.detected) {
      assert.ok(KNOWN.has(r.fingerprint.toUpperCase()), `${where}: fingerprint ${r.fingerprint} is not on the list`);
    } else {
      assert.equal(r.fingerprint, '', where);
    }
    assert.equal(typeof detectXss(input), 'boolean', where);
    for (const t of tokenizeAll(input)) {
      assert.ok(t.len <= 31 && t.val.length === t.len, where);
      assert.ok(t.pos >= 0 && t.pos <= input.length, where);
    }
    for (const [, text] of html5Tokens(input)) assert.ok(text.length <= input.length, where);
  }
});
