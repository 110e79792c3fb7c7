import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseJson, parseUrlEncoded, parseXml } from '../../../src/waf/bodies/index.ts';
import { urlDecode } from '../../../src/waf/transformations/decode.ts';
import { semicolonPairs } from '../../../src/waf/bodies/urlencoded.ts';
import { MIN_EXPANSION_BUDGET } from '../../../src/waf/bodies/dtd.ts';
import { MAX_ERRORS } from '../../../src/waf/bodies/xml.ts';
import { SaxesParser } from 'saxes';

describe('parseJson', () => {
  it('flattens objects and arrays with the json. prefix (json.a.b, json.list.0)', () => {
    const r = parseJson('{"a":{"b":"x"},"list":[1,{"k":true}],"n":null,"f":-1.5e3}');
    assert.equal(r.error, undefined);
    assert.deepEqual(r.args, [
      ['json.a.b', 'x'],
      ['json.list.0', '1'],
      ['json.list.1.k', 'true'],
      ['json.n', ''],
      ['json.f', '-1.5e3'],
    ]);
  });
  it('names a top-level array and scalar', () => {
    assert.deepEqual(parseJson('["x", 2]').args, [
      ['json.0', 'x'],
      ['json.1', '2'],
    ]);
    assert.deepEqual(parseJson('"s"').args, [['json', 's']]);
  });
  it('keys may hold attack text (CRS inspects ARGS_NAMES)', () => {
    assert.deepEqual(parseJson('{ "; select": "foo" }').args, [['json.; select', 'foo']]);
  });
  it('decodes escapes; \\u escapes become UTF-8 bytes, raw bytes stay', () => {
    const r = parseJson('{"s":"a\\"b\\\\c\\n\\u003c\\u00e9\\ud83d\\ude00\xc3\xa9"}');
    assert.deepEqual(r.args, [['json.s', 'a"b\\c\n<\xc3\xa9\xf0\x9f\x98\x80\xc3\xa9']]);
  });
  it('ignores empty containers and whitespace', () => {
    assert.deepEqual(parseJson(' { "a" : [ ] , "b" : { } } ').args, []);
  });
  const malformed: [string, RegExp][] = [
    ['{"a":1', /expected ',' or '}'/],
    ['{"a" 1}', /expected ':'/],
    ['{a:1}', /expected a string key/],
    ['{"a":tru}', /bad number/],
    ['{"a":"x}', /unterminated string/],
    ['{"a":"\\q"}', /bad escape/],
    ['{"a":1} x', /trailing data/],
    ['', /unexpected end/],
  ];
  for (const [body, error] of malformed) {
    it(`reports malformed ${JSON.stringify(body)}`, () => {
      const r = parseJson(body);
      assert.match(r.error ?? '', error);
    });
  }
  it('keeps the values parsed before an error', () => {
    const r = parseJson('{"a":"1","b":');
    assert.deepEqual(r.args, [['json.a', '1']]);
    assert.ok(r.error);
  });
  it('limits nesting depth instead of overflowing the stack', () => {
    const deep = `${'['.repeat(100000)}${']'.repeat(100000)}`;
    assert.match(parseJson(deep).error ?? '', /nesting deeper than 1000/);
    assert.match(parseJson('[[[1]]]', { maxDepth: 2 }).error ?? '', /nesting deeper than 2/);
  });
});

describe('parseXml', () => {
  it('collects element texts (XML:/*) and attribute values (XML://@*)', () => {
    const r = parseXml('<?xml version="1.0"?><a id="1"><b x="y">hi <i>there</i></b><![CDATA[<raw>]]></a>');
    assert.equal(r.error, undefined);
    // each run of text between tags, then the whole document's text (ModSecurity's XML:/*)
    assert.deepEqual(r.texts, ['hi', 'there', '<raw>', 'hi there<raw>']);
    assert.deepEqual(r.attrs, ['1', 'y']);
  });
  it('one text: no second copy of the whole', () => {
    assert.deepEqual(parseXml('<a>\n  <b> one </b>\n</a>').texts, ['one']);
  });
  // session 24 WAF evasion audit: the application reads one string (textContent, JAXB, lxml itertext)
  const splits: [string, string, string[]][] = [
    ['a comment', "<r><q>1' UN<!--x-->ION SEL<!---->ECT 1</q></r>", ["1' UNION SELECT 1"]],
    ['a processing instruction', "<r><q>1' UN<?pi x?>ION SELECT 1</q></r>", ["1' UNION SELECT 1"]],
    ['CDATA sections', "<r><q>1' UN<![CDATA[ION SEL]]>ECT 1</q></r>", ["1' UNION SELECT 1"]],
    ['child elements', "<r><q>1' UN<b/>ION SEL<b></b>ECT 1</q></r>", ["1' UN", 'ION SEL', 'ECT 1', "1' UNION SELECT 1"]],
  ];
  for (const [what, body, texts] of splits) {
    it(`text split by ${what} is also read joined`, () => assert.deepEqual(parseXml(body).texts, texts));
  }
  it('decodes the predefined entities', () => {
    assert.deepEqual(parseXml('<a>&lt;script&gt;&amp;</a>').texts, ['<script>&']);
  });
  it('does not expand external entities (no XXE)', () => {
    const r = parseXml('<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>');
    assert.ok(!r.texts.some((t) => t.includes('root:')));
  });
  const malformed = ['<a><b></a>', '<a>', 'not xml', '<a x="1></a>', ''];
  for (const body of malformed) {
    it(`reports malformed ${JSON.stringify(body)}`, () => {
      assert.match(parseXml(body).error ?? '', /XML parse error/);
    });
  }
  it('keeps what it saw before an error', () => {
    const r = parseXml('<a>one<b>two</a>');
    assert.ok(r.error);
    assert.ok(r.texts.includes('one'));
  });
});

describe('parseUrlEncoded', () => {
  const rows: [string, [string, string][]][] = [
    ['a=1&b=2', [['a', '1'], ['b', '2']]],
    ['a+b=c+d', [['a b', 'c d']]],
    ['x=%41%zz%', [['x', 'A%zz%']]],
    ['flag&=v&&k=', [['flag', ''], ['', 'v'], ['k', '']]],
    ['k=a=b', [['k', 'a=b']]],
    ['', []],
  ];
  for (const [body, want] of rows) {
    it(JSON.stringify(body), () => assert.deepEqual(parseUrlEncoded(body), want));
  }
  it("semicolonPairs: the pairs of '&'-pieces holding ';' as Rack 2.2, CGI.pm and Plack split them (session 28)", () => {
    assert.deepEqual(semicolonPairs('a=1&b=2'), []);
    assert.deepEqual(semicolonPairs('a=1;q=%27x&b=2'), [['a', '1'], ['q', "'x"]]);
    assert.deepEqual(semicolonPairs('b=2&a=1;  q+r=x;;flag'), [['a', '1'], ['q r', 'x'], ['flag', '']]);
    assert.deepEqual(semicolonPairs('a=1;+q=x'), [['a', '1'], [' q', 'x']]); // an encoded blank stays: Rack's ` q`
  });
  it('honours a custom argument separator', () => {
    assert.deepEqual(parseUrlEncoded('a=1;b=2', ';'), [['a', '1'], ['b', '2']]);
  });
  it('reads pieces in place as split() cut them (session 23), any separator', () => {
    // The reference: the split() version the in-place reader replaced.
    const reference = (body: string, sep: string): [string, string][] => {
      const out: [string, string][] = [];
      if (body === '') return out;
      for (const piece of body.split(sep)) {
        if (piece === '') continue;
        const eq = piece.indexOf('=');
        out.push([urlDecode(eq < 0 ? piece : piece.slice(0, eq)), urlDecode(eq < 0 ? '' : piece.slice(eq + 1))]);
      }
      return out;
    };
    const alphabet = ['a', 'b', '=', '&', ';', '+', '%', '%41', '%z', '==', '&&', '\u00e9', '\ud83d\ude00'];
    let seed = 11;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648);
    for (const sep of ['&', ';', '=', 'aa', '=&', '&&', '']) {
      for (let i = 0; i < 3000; i++) {
        let body = '';
        const n = next() % 12;
        for (let j = 0; j < n; j++) body += alphabet[next() % alphabet.length];
        assert.deepEqual(parseUrlEncoded(body, sep), reference(body, sep), `${JSON.stringify(body)} split on ${JSON.stringify(sep)}`);
      }
    }
  });
  it('looks for each piece\'s = once over the whole body, not once a piece', () => {
    // 2,000 pieces without '=' (then one with): a search for '=' from each piece would scan the
    // rest of the body every time (quadratic in the body's length).
    const body = `${'k&'.repeat(2000)}x=1`;
    const original = String.prototype.indexOf;
    let equalsSearches = 0;
    String.prototype.indexOf = function (this: string, search: string, from?: number): number {
      if (search === '=') equalsSearches++;
      return original.call(this, search, from);
    };
    let pairs: [string, string][];
    try {
      pairs = parseUrlEncoded(body);
    } finally {
      String.prototype.indexOf = original;
    }
    assert.equal(pairs.length, 2001);
    assert.deepEqual(pairs.at(-1), ['x', '1']);
    assert.ok(equalsSearches <= 2, `${equalsSearches} searches for '='`);
  });
});

describe('JSON numbers (scanned by hand)', () => {
  it('reads what the grammar regex reads, at any length (a 600-digit number was a parse error until session 25)', () => {
    const grammar = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/;
    const pieces = ['-', '0', '1', '9', '.', 'e', 'E', '+', '-', 'x', '00', '12'];
    let seed = 3;
    const next = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    const samples = ['0', '-0', '1.5e+3', '1.e3', '01', '1e', '1E-', '-', '.5', '1.5.5', `${'9'.repeat(600)}`, `1.${'2'.repeat(520)}`, `1e${'3'.repeat(530)}`];
    for (let k = 0; k < 3000; k++) {
      let s = '';
      for (let n = 1 + (next() % 6); n > 0; n--) s += pieces[next() % pieces.length];
      samples.push(s);
    }
    for (const s of samples) {
      const r = parseJson(`[${s}]`);
      const m = grammar.exec(s);
      if (!m) {
        assert.deepEqual(r.args, [], s);
        assert.match(r.error ?? '', /bad number/, s);
        continue;
      }
      assert.deepEqual(r.args, [['json.0', m[0]]], s);
      assert.equal(r.error === undefined, m[0] === s, s);
    }
  });
  it('true, false and null', () => {
    assert.deepEqual(parseJson('[true,false,null,nul]').args, [['json.0', 'true'], ['json.1', 'false'], ['json.2', '']]);
  });
});

describe('parseXml: byte order marks and UTF-16 (session 26 WAF evasion audit)', () => {
  const utf16le = (s: string): string => Buffer.from(s, 'utf16le').toString('latin1');
  it('a UTF-8 BOM is read past (a 400 before)', () => {
    assert.deepEqual(parseXml('\xef\xbb\xbf<r><q>a</q></r>'), { texts: ['a'], attrs: [] });
  });
  it('UTF-16 with a BOM, either order, or detected by `<` and NUL: its text as UTF-8 bytes', () => {
    assert.deepEqual(parseXml(utf16le('\ufeff<?xml version="1.0" encoding="utf-16"?><r q="1\'">x</r>')), { texts: ['x'], attrs: ["1'"] });
    assert.deepEqual(parseXml(Buffer.from(utf16le('\ufeff<r>b</r>'), 'latin1').swap16().toString('latin1')), { texts: ['b'], attrs: [] });
    assert.deepEqual(parseXml(utf16le('<r>é</r>')).texts, ['\xc3\xa9']);
  });
  it('an odd number of UTF-16 bytes stays a parse error', () => {
    assert.ok(parseXml('\xff\xfe<\x00r').error);
  });
});

describe('parseXml: the internal DTD subset (session 27 WAF evasion audit)', () => {
  const U = "1' UNION SELECT password FROM users--";
  it('internal entities expand where the document refers to them, in text and attributes (a 400 before)', () => {
    assert.deepEqual(parseXml('<!DOCTYPE r [<!ENTITY e "hello">]><r><q>&e;</q></r>'), { texts: ['hello'], attrs: [] });
    assert.deepEqual(parseXml(`<!DOCTYPE r [<!ENTITY e "${U}">]><r><q>&e;</q></r>`).texts, [U]);
    assert.deepEqual(parseXml(`<!DOCTYPE r [<!ENTITY e "x' OR 1=1">]><r a="&e;"/>`).attrs, ["x' OR 1=1"]);
  });
  it('as an XML parser reads them: nested references, character references, the first declaration binds', () => {
    assert.deepEqual(parseXml(`<!DOCTYPE r [<!ENTITY u "UNI"><!ENTITY v "&u;ON">]><r>1' &v; SELECT</r>`).texts, ["1' UNION SELECT"]);
    assert.deepEqual(parseXml('<!DOCTYPE r [<!ENTITY q "&#39;">]><r>1&q; OR</r>').texts, ["1' OR"]);
    assert.deepEqual(parseXml('<!DOCTYPE r [<!ENTITY e "a&amp;b &#38;#60;c">]><r>&e;</r>').texts, ['a&b <c']);
    assert.deepEqual(parseXml('<!DOCTYPE r [<!ENTITY e "one"><!ENTITY e "two">]><r>&e;</r>').texts, ['one']);
    assert.deepEqual(parseXml('<!DOCTYPE r PUBLIC "-//x//y" "y.dtd" [<!-- "[" --><!ENTITY e "ok">]><r>&e;</r>').texts, ['ok']);
  });
  it('ATTLIST default values are attributes (expat and Java DOM add them to the element)', () => {
    assert.deepEqual(parseXml(`<!DOCTYPE r [<!ATTLIST q id CDATA "${U}">]><r><q>x</q></r>`).attrs, [U]);
  });
  const refused: [string, string, RegExp][] = [
    ['markup in an entity (read as elements by the application)', `<!DOCTYPE r [<!ENTITY m "UN<b/>ION">]><r>1' &m; SELECT</r>`, /markup/],
    ['a parameter entity reference (its declarations bind first)', `<!DOCTYPE r [<!ENTITY % p '<!ENTITY e "x">'> %p; <!ENTITY e 'ok'>]><r>&e;</r>`, /parameter entity/],
    ['an external entity (never fetched)', '<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>', /undefined entity/],
    ['a recursive entity', '<!DOCTYPE r [<!ENTITY a "&b;"><!ENTITY b "&a;">]><r>&a;</r>', /nested too deep/],
    ['a name on Object.prototype is not an entity', '<!DOCTYPE r [<!ENTITY e "x">]><r>&constructor;</r>', /undefined entity/],
  ];
  for (const [what, doc, error] of refused) {
    it(`refuses ${what}`, () => {
      assert.match(parseXml(doc).error ?? '', error);
    });
  }
  it('billion laughs and quadratic blowup stop at the budget (the document\'s length, at least 64 KiB)', () => {
    const levels = ['<!ENTITY a "aaaaaaaaaa">'];
    for (let i = 1; i < 8; i++) levels.push(`<!ENTITY ${'abcdefgh'[i]} "${`&${'abcdefgh'[i - 1]};`.repeat(10)}">`);
    const laughs = parseXml(`<!DOCTYPE r [${levels.join('')}]><r>&h;</r>`); // 10^9 characters
    assert.match(laughs.error ?? '', /over the limit/);
    assert.ok(laughs.texts.every((t) => t.length <= MIN_EXPANSION_BUDGET));
    const quadratic = parseXml(`<!DOCTYPE r [<!ENTITY a "${'x'.repeat(50_000)}">]><r>${'&a;'.repeat(20_000)}</r>`);
    assert.match(quadratic.error ?? '', /over the limit/);
    assert.ok(quadratic.texts.reduce((n, t) => n + t.length, 0) <= 2 * 110_000);
    // within the budget: read whole
    assert.equal(parseXml(`<!DOCTYPE r [<!ENTITY a "${'x'.repeat(100)}">]><r>${'&a;'.repeat(600)}</r>`).texts[0]!.length, 60_000);
  });
});

describe('parseXml: an error flood (session 27)', () => {
  it('stops after MAX_ERRORS errors: 20,000 bad references make 64 errors, not 20,000', () => {
    // counted, not timed: saxes makes an Error (with a stack trace) per error it reports
    const proto = SaxesParser.prototype as unknown as { makeError: (m: string) => Error };
    const made = proto.makeError;
    let count = 0;
    proto.makeError = function (this: unknown, m: string): Error {
      count++;
      return made.call(this, m);
    };
    try {
      for (const doc of [`<r>${'&x;'.repeat(20_000)}</r>`, `<r>${'<<'.repeat(20_000)}</r>`]) {
        count = 0;
        assert.match(parseXml(doc).error ?? '', /XML parse error/);
        assert.ok(count <= MAX_ERRORS, `${count} errors made`);
      }
    } finally {
      proto.makeError = made;
    }
  });
});
