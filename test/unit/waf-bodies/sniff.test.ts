// Bodies without a processor read as the applications that ignore their type read them
// (src/waf/bodies/sniff.ts): JSON (session 16 audit), JSON Lines (session 23), XML and text forms
// (session 24 WAF evasion audit).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { sniffBody } from '../../../src/waf/bodies/sniff.ts';
import { processBody } from '../../../src/waf/engine/body.ts';

describe('sniffBody', () => {
  const rows: [what: string, body: string, args: [string, string][], xmlTexts?: string[], type?: string][] = [
    ['a JSON document: its values only', '{"q":"a=b"}', [['json.q', 'a=b']]],
    ['JSON Lines, then the whole as a form (Bottle reads any body as one)', '{"a":1}\nq=x', [['json.a', '1'], ['{"a":1}\nq', 'x']]],
    ['a broken JSON start does not hide a form', '{=1&q=x', [['{', '1'], ['q', 'x']]],
    ['a well-formed XML document: XML:/*, not a form', '<r a="1"><q>x</q></r>', [], ['x']],
    ['XML that does not parse: a form if it has an =', '<r a="1"><q>x</r>', [['<r a', '"1"><q>x</r>']]],
    ['a text form', 'a=1&q=x+y', [['a', '1'], ['q', 'x y']]],
    ['text without =', 'hello world', []],
    ['text/plain: a form', 'a=1&q=x', [['a', '1'], ['q', 'x']], undefined, 'text/plain; charset=utf-8'],
    ['other types: not a form (uploads)', 'a=1&q=x', [], undefined, 'application/octet-stream'],
    ['the pairs with control bytes left out', 'PK\x03\x04a=1&q=x&\x00=1', [['q', 'x']]],
    // session 26 WAF evasion audit: JSON only lenient parsers read (Python's json, Gson lenient)
    ["NaN (Python's json)", '{"n":NaN,"q":"x"}', [['json.n', 'NaN'], ['json.q', 'x']]],
    ['comments, single quotes, unquoted keys and a trailing comma (Gson lenient)', "{/*c*/'q':'1\\' x', r: 2, # t\n}", [['json.q', "1' x"], ['json.r', '2']]],
    ['a leading comment, = and ; (Gson lenient)', "// c\n{q = 'x'; r => y}", [['json.q', 'x'], ['json.r', 'y']]],
    ['lenient JSON that still does not parse: JSON Lines and the form as before', '{"q": a b}\n{"r":1}', [['json.r', '1']]],
    // session 31 WAF evasion audit: GraphQL's own type, the body is the query document
    ['application/graphql: the document as ARGS:query', '{ user(name: "x") { id } }', [['query', '{ user(name: "x") { id } }']], undefined, 'application/graphql; charset=utf-8'],
    ['application/graphql-response+json is not it', '{"a":1}', [['json.a', '1']], undefined, 'application/graphql-response+json'],
  ];
  for (const [what, body, args, xmlTexts, type] of rows) {
    it(what, () => {
      const s = sniffBody(body, '&', type ?? '');
      assert.deepEqual(s.args, args);
      assert.deepEqual(s.xml?.texts, xmlTexts);
    });
  }
});

describe('sniffBody: JSON in UTF-16 or UTF-32 (session 29 WAF evasion audit)', () => {
  // Python's json.loads(bytes) detects these (a BOM, or NULs among the first four bytes): Flask's
  // get_json(force=True) read `1' UNION ...` where the WAF saw bytes with NULs
  const doc = `{"q":"1' é ☃ \u{1F600}"}`;
  const le16 = Buffer.from(doc, 'utf16le');
  const be16 = Buffer.from(le16).swap16();
  const u32 = (le: boolean) => {
    const cps = [...doc].map((c) => c.codePointAt(0)!);
    const b = Buffer.alloc(cps.length * 4);
    cps.forEach((cp, i) => (le ? b.writeUInt32LE(cp, i * 4) : b.writeUInt32BE(cp, i * 4)));
    return b;
  };
  const want: [string, string][] = [['json.q', Buffer.from("1' é ☃ \u{1F600}", 'utf8').toString('latin1')]];
  const rows: [string, Buffer][] = [
    ['UTF-16LE', le16],
    ['UTF-16LE with a BOM', Buffer.concat([Buffer.from([0xff, 0xfe]), le16])],
    ['UTF-16BE', be16],
    ['UTF-16BE with a BOM', Buffer.concat([Buffer.from([0xfe, 0xff]), be16])],
    ['UTF-32LE', u32(true)],
    ['UTF-32LE with a BOM', Buffer.concat([Buffer.from([0xff, 0xfe, 0, 0]), u32(true)])],
    ['UTF-32BE', u32(false)],
    ['UTF-32BE with a BOM', Buffer.concat([Buffer.from([0, 0, 0xfe, 0xff]), u32(false)])],
  ];
  for (const [what, bytes] of rows) {
    it(what, () => {
      for (const type of ['', 'text/plain']) assert.deepEqual(sniffBody(bytes.toString('latin1'), '&', type).args, want, `${what} ${type}`);
    });
  }
  it('wide text that is not JSON, an odd length or a code point past U+10FFFF: nothing, and UTF-16 XML still XML', () => {
    assert.deepEqual(sniffBody(Buffer.from('hello world', 'utf16le').toString('latin1'), '&', '').args, []);
    assert.deepEqual(sniffBody(Buffer.concat([le16, Buffer.from([0x20])]).toString('latin1'), '&', '').args, []);
    assert.deepEqual(sniffBody(Buffer.from([0x7b, 0, 0, 0, 0, 0, 0x11, 0]).toString('latin1'), '&', '').args, []);
    assert.deepEqual(sniffBody(Buffer.from('<r><q>x</q></r>', 'utf16le').toString('latin1'), '&', '').xml?.texts, ['x']);
  });
});

// Session 31 WAF evasion audit: a JSON or XML document typed as a form is read as the document too
// (Go's json.NewDecoder(r.Body), PHP's json_decode(php://input) and Flask's get_json(force=True)
// ignore the type); the form reading cut `{"q":"1' OR '1'='1"}` at `=` into pieces the CRS passes.
describe('a document typed as a form (the URLENCODED processor)', () => {
  const rows: [what: string, body: string, args: [string, string][], xmlTexts?: string[]][] = [
    ['a form: its pairs only', 'a=1&q=x', [['a', '1'], ['q', 'x']]],
    ['a JSON document: the form pieces and its values', `{"q":"1' OR '1'='1"}`, [[`{"q":"1' OR '1'`, `'1"}`], ['json.q', "1' OR '1'='1"]]],
    ['a JSON array after blanks', ` [{"q":"a&b"}]`, [[' [{"q":"a', ''], ['b"}]', ''], ['json.0.q', 'a&b']]],
    ['an XML document: XML:/* as well (and the `;` readers\' pieces)', '<q>1&#39; OR 1</q>', [['<q>1', ''], ['#39; OR 1</q>', ''], ['#39', ''], ['OR 1</q>', '']], ["1' OR 1"]],
    ['a form whose first name starts with { but is no document', '{a=1&q=x', [['{a', '1'], ['q', 'x']]],
  ];
  for (const [what, body, args, xmlTexts] of rows) {
    it(what, () => {
      const r = processBody('URLENCODED', body, 'application/x-www-form-urlencoded', '&');
      assert.deepEqual(r.args, args);
      assert.deepEqual(r.xmlTexts, xmlTexts);
      assert.equal(r.error, undefined);
    });
  }
});
