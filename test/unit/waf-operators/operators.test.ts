import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { atoi, clearList, compileOperator, operatorNames, type OperatorContext } from '../../../src/waf/operators/index.ts';
import { dottedQuad } from '../../../src/waf/operators/ip.ts';
import { PhraseMatcher } from '../../../src/waf/operators/pm.ts';
import { prefilter } from '../../../src/waf/regex/prefilter.ts';

function ctx(vars: Record<string, string> = {}, capture = false): OperatorContext {
  return {
    capture,
    captures: [],
    expand: (text) => text.replace(/%\{([^}]+)\}/g, (_m, name: string) => vars[name.toLowerCase()] ?? ''),
  };
}

function run(name: string, param: string, input: string, c: OperatorContext = ctx()): boolean {
  return compileOperator(name, param).evaluate(input, c);
}

describe('atoi (C semantics, used by the numeric operators)', () => {
  const rows: [input: string, want: number][] = [
    ['', 0],
    ['0', 0],
    ['42', 42],
    ['  \t\n\v\f\r7', 7],
    ['+5', 5],
    ['-12', -12],
    ['12abc', 12],
    ['abc', 0],
    ['+', 0],
    ['-', 0],
    [' - 3', 0],
    ['3 4', 3],
    ['\u00a07', 0], // only the C whitespace characters are skipped
    ['007', 7],
    ['123456789012345678901234', Number.parseInt('123456789012345678901234', 10)],
    ['-9007199254740993', Number.parseInt('-9007199254740993', 10)],
  ];
  for (const [input, want] of rows) it(JSON.stringify(input), () => assert.equal(atoi(input), want));
});

describe('string and numeric operators', () => {
  const rows: [op: string, param: string, input: string, want: boolean][] = [
    ['streq', 'POST', 'POST', true],
    ['streq', 'POST', 'post', false],
    ['beginsWith', '/admin', '/admin/x', true],
    ['endsWith', '.php', 'index.php', true],
    ['contains', 'select', 'xselectx', true],
    ['containsWord', 'select', 'a select b', true],
    ['containsWord', 'select', 'selection', false],
    ['containsWord', 'select', '1select2', true], // only letters make a word
    ['within', 'GET HEAD POST', 'HEAD', true],
    ['within', 'GET HEAD POST', 'PUT', false],
    ['strmatch', 'abc', 'xxabcxx', true],
    ['eq', '5', '5', true],
    ['eq', '0', 'abc', true], // non-numbers count as 0, like C atoi
    ['eq', '12', '12abc', true],
    ['gt', '10', '11', true],
    ['ge', '10', '10', true],
    ['lt', '10', '-3', true],
    ['le', '10', '11', false],
    ['unconditionalMatch', '', 'x', true],
    ['noMatch', '', 'x', false],
  ];
  for (const [op, param, input, want] of rows) {
    it(`@${op} ${JSON.stringify(param)} on ${JSON.stringify(input)} -> ${want}`, () => {
      assert.equal(run(op, param, input), want);
    });
  }
});

describe('macros in parameters are expanded at evaluation time', () => {
  it('@eq %{tx.x}', () => {
    const op = compileOperator('eq', '%{tx.x}');
    assert.equal(op.evaluate('3', ctx({ 'tx.x': '3' })), true);
    assert.equal(op.evaluate('3', ctx({ 'tx.x': '4' })), false);
  });
  it('@within %{tx.allowed_methods}', () => {
    const op = compileOperator('within', '%{tx.allowed_methods}');
    assert.equal(op.evaluate('PUT', ctx({ 'tx.allowed_methods': 'GET PUT' })), true);
    assert.equal(op.evaluate('PUT', ctx({ 'tx.allowed_methods': 'GET' })), false);
  });
  it('@rx with a macro compiles the expanded pattern', () => {
    const op = compileOperator('rx', '^%{tx.prefix}\\d+$');
    assert.equal(op.evaluate('id42', ctx({ 'tx.prefix': 'id' })), true);
    assert.equal(op.evaluate('id42', ctx({ 'tx.prefix': 'no' })), false);
  });
  it('@pm with a macro', () => {
    const op = compileOperator('pm', '%{tx.words}');
    assert.equal(op.evaluate('xx bar yy', ctx({ 'tx.words': 'foo bar' })), true);
  });
});

describe('@rx', () => {
  it('runs with DOTALL and MULTILINE like ModSecurity/Coraza', () => {
    assert.equal(run('rx', '^b$', 'a\nb\nc'), true);
    assert.equal(run('rx', 'a.c', 'a\nc'), true);
  });
  it('fills captures (whole match, then groups; unmatched groups empty)', () => {
    const c = ctx({}, true);
    assert.equal(run('rx', '(\\d+)-(x)?(\\d+)', 'id 12-34', c), true);
    assert.deepEqual(c.captures, ['12-34', '12', '', '34']);
  });
  it('keeps at most TX.0..TX.9', () => {
    const c = ctx({}, true);
    run('rx', '(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)', 'abcdefghijk', c);
    assert.equal(c.captures.length, 10);
  });
  it('does not touch captures without the capture action', () => {
    const c = ctx();
    c.captures.push('old');
    run('rx', '(a)', 'a', c);
    assert.deepEqual(c.captures, ['old']);
  });
  it('`^.*$` matches every input whole without joining the prefilter (CRS 920450)', () => {
    const before = prefilter.size;
    const op = compileOperator('rx', '^.*$');
    assert.equal(prefilter.size, before);
    for (const input of ['', 'user-agent', 'a\nb', 'x'.repeat(3000)]) {
      const c = ctx({}, true);
      c.captures.push('old', 'older');
      assert.equal(op.evaluate(input, c), true);
      assert.deepEqual(c.captures, [input]);
      const plain = ctx();
      assert.equal(op.evaluate(input, plain), true);
      assert.deepEqual(plain.captures, []);
    }
  });
  it('clearList empties a list of any length and leaves no value behind (captures, matched data)', () => {
    for (const n of [0, 1, 2, 17, 40]) {
      const list: unknown[] = Array.from({ length: n }, (_, i) => `v${i}`);
      clearList(list);
      assert.equal(list.length, 0);
      assert.equal(0 in list, false);
      list.push('a', 'b');
      assert.deepEqual(list, ['a', 'b']);
    }
    // a capture after a longer one: only the new values
    const c = ctx({}, true);
    run('rx', '(a)(b)(c)', 'abc', c);
    run('rx', '(x)', 'x', c);
    assert.deepEqual(c.captures, ['x', 'x']);
  });
  it('rejects look-ahead with a clear error', () => {
    assert.throws(() => compileOperator('rx', 'a(?!b)'), /@rx .*look-around/);
  });
});

describe('@rxGlobal', () => {
  it('captures every match', () => {
    const c = ctx({}, true);
    assert.equal(run('rxGlobal', '(\\d)', 'a1b2', c), true);
    assert.deepEqual(c.captures, ['1', '1', '2', '2']);
  });
});

describe('@pm', () => {
  it('matches any phrase, ASCII case-insensitively, and captures what matched', () => {
    const c = ctx({}, true);
    assert.equal(run('pm', 'union select', 'x UnIoN y', c), true);
    assert.deepEqual(c.captures, ['UnIoN']);
  });
  it('finds overlapping phrases (Aho-Corasick failure links)', () => {
    assert.equal(run('pm', 'abcd bce', 'xabce'), true);
    assert.equal(run('pm', 'he she his hers', 'ushers'), true);
    assert.equal(run('pm', 'abcd bcf', 'abcf'), true);
    assert.equal(run('pm', 'abcd bcf', 'abce'), false);
  });
  it('decodes |hex| notation', () => {
    assert.equal(run('pm', 'a|0d 0a|b', 'xa\r\nb'), true);
  });
});

describe('file-based operators', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'waf-ops-'));
    writeFileSync(join(dir, 'words.data'), '# comment\n\n/etc/passwd\r\nBoot.ini  \n');
    writeFileSync(join(dir, 'nets.data'), '# trusted\n10.0.0.0/8\n2001:db8::/32\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('@pmFromFile reads phrases relative to rulesDir, skipping comments and blank lines', () => {
    const op = compileOperator('pmFromFile', 'words.data', { rulesDir: dir });
    assert.equal(op.evaluate('GET /../../etc/passwd', ctx()), true);
    assert.equal(op.evaluate('c:\\BOOT.INI', ctx()), true);
    assert.equal(op.evaluate('# comment', ctx()), false);
  });
  it('@pmf is an alias', () => {
    assert.equal(compileOperator('pmf', 'words.data', { rulesDir: dir }).name, 'pmFromFile');
  });
  it('@ipMatchFromFile', () => {
    const op = compileOperator('ipMatchFromFile', 'nets.data', { rulesDir: dir });
    assert.equal(op.evaluate('10.1.2.3', ctx()), true);
    assert.equal(op.evaluate('2001:db8::1', ctx()), true);
    assert.equal(op.evaluate('11.0.0.1', ctx()), false);
  });
  it('a missing file is a compile error naming the path', () => {
    assert.throws(() => compileOperator('pmFromFile', 'nope.data', { rulesDir: dir }), /@pmFromFile: cannot read .*nope\.data/);
  });
});

describe('@ipMatch', () => {
  const rows: [param: string, input: string, want: boolean][] = [
    ['192.168.1.0/24', '192.168.1.77', true],
    ['192.168.1.0/24', '192.168.2.1', false],
    ['127.0.0.1, ::1', '::1', true],
    ['::ffff:0:0/96', '::ffff:10.0.0.1', true],
    ['10.0.0.0/8', '::ffff:10.0.0.1', false], // families do not mix
    ['0.0.0.0/0', '8.8.8.8', true],
    ['10.0.0.1', 'not-an-ip', false],
  ];
  for (const [param, input, want] of rows) {
    it(`${param} vs ${input}`, () => assert.equal(run('ipMatch', param, input), want));
  }
  // IPv4 inputs take dottedQuad's number path; anything it refuses takes the BigInt path (trimmed),
  // so both readings must agree on every edge.
  const edges: [param: string, input: string, want: boolean][] = [
    ['127.0.0.1', '127.0.0.1', true],
    ['127.0.0.1', ' 127.0.0.1 ', true], // trimmed by the slow path, as before
    ['127.0.0.1', '127.0.0.01', true], // leading zeros are decimal, as parseIPv4 reads them
    ['127.0.0.1', '127.000.000.001', true],
    ['127.0.0.1', '127.0.0.0001', false], // four digits
    ['0.0.0.0/0', '255.255.255.255', true],
    ['255.255.255.255', '255.255.255.255', true],
    ['255.255.255.0/24', '255.255.255.7', true],
    ['128.0.0.0/1', '200.1.1.1', true], // top bit set: unsigned compare
    ['128.0.0.0/1', '100.1.1.1', false],
    ['10.0.0.0/8', '10.255.255.255', true],
    ['10.0.0.0/8', '11.0.0.0', false],
    ['0.0.0.0/0', '256.0.0.1', false],
    ['0.0.0.0/0', '1.2.3', false],
    ['0.0.0.0/0', '1.2.3.4.', false],
    ['0.0.0.0/0', '.1.2.3.4', false],
    ['0.0.0.0/0', '1..2.3', false],
    ['0.0.0.0/0', '1.2.3.4.5', false],
    ['0.0.0.0/0', '', false],
    ['0.0.0.0/0', '1.2.3.+4', false],
    ['0.0.0.0/0', '1.2.3.\u0664', false], // a non-ASCII digit
    ['::/0', '1.2.3.4', false], // an IPv4 address against an IPv6 block
    ['0.0.0.0/0', '::1', false],
  ];
  for (const [param, input, want] of edges) {
    it(`edge: ${param} vs ${JSON.stringify(input)}`, () => assert.equal(run('ipMatch', param, input), want));
  }
  it('dottedQuad reads a dotted quad as an unsigned number and refuses the rest', () => {
    assert.equal(dottedQuad('0.0.0.0'), 0);
    assert.equal(dottedQuad('255.255.255.255'), 0xffffffff);
    assert.equal(dottedQuad('1.2.3.4'), 0x01020304);
    for (const bad of ['', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.256', '1.2.3', '1.2.3.4.', '::1', '1.2.3.0004', 'a.b.c.d']) assert.equal(dottedQuad(bad), -1, bad);
  });
  it('rejects a malformed block at compile time', () => {
    assert.throws(() => compileOperator('ipMatch', '10.0.0.0/33'), /invalid IP address or CIDR block/);
  });
});

describe('validation operators (true = invalid input found)', () => {
  const rows: [op: string, param: string, input: string, want: boolean][] = [
    ['validateByteRange', '32-126', 'plain text', false],
    ['validateByteRange', '32-126', 'tab\there', true],
    ['validateByteRange', '9,10,13,32-126', 'tab\there', false],
    ['validateByteRange', '1-255', 'nul\0', true],
    ['validateUrlEncoding', '', 'a%20b', false],
    ['validateUrlEncoding', '', 'a%2', true],
    ['validateUrlEncoding', '', 'a%zz', true],
    ['validateUtf8Encoding', '', 'caf\xc3\xa9', false],
    ['validateUtf8Encoding', '', 'caf\xe9', true],
    ['validateUtf8Encoding', '', '\xc0\xaf', true], // overlong
    ['validateUtf8Encoding', '', '\xed\xa0\x80', true], // surrogate
    ['validateUtf8Encoding', '', '\xf4\x90\x80\x80', true], // above U+10FFFF
  ];
  for (const [op, param, input, want] of rows) {
    it(`@${op} ${JSON.stringify(input)} -> ${want}`, () => assert.equal(run(op, param, input), want));
  }
  it('@validateByteRange refuses a reversed range', () => {
    assert.throws(() => compileOperator('validateByteRange', '100-20'), /invalid range/);
  });
  it('@validateByteRange: long values (one RegExp scan first) answer as the byte loop does, chars above 0xff by their low byte', () => {
    const params = ['1-255', '9,10,13,32-126,128-255', '32-36,38-126', '38,44-46,48-58,61,65-90,95,97-122', '0-255', '0', '255'];
    let seed = 7;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    for (const param of params) {
      const allowed = new Set<number>();
      for (const t of param.split(',')) {
        const [lo, hi = lo] = t.split('-').map(Number) as [number, number?];
        for (let b = lo; b <= hi!; b++) allowed.add(b);
      }
      const want = (s: string): boolean => [...s].some((_, i) => !allowed.has(s.charCodeAt(i) & 0xff));
      const inputs: string[] = [];
      for (const len of [63, 64, 65, 200, 2048]) {
        inputs.push('a'.repeat(len), 'a'.repeat(len - 1) + '\0', 'a'.repeat(len - 1) + '\u0100', 'a'.repeat(len - 1) + '\u0161', '\x7f' + 'b'.repeat(len - 1));
        for (let k = 0; k < 20; k++) {
          let s = '';
          for (let i = 0; i < len; i++) s += String.fromCharCode(k < 10 ? 0x20 + rand(0x5f) : rand(k < 15 ? 0x100 : 0x300));
          inputs.push(s);
        }
      }
      for (const input of inputs) assert.equal(run('validateByteRange', param, input), want(input), `${param} on ${JSON.stringify(input.slice(-4))} (${input.length})`);
    }
  });
});

describe('@verify* checksums', () => {
  it('@verifyCC accepts Luhn-valid numbers only', () => {
    const re = '\\d{13,16}';
    assert.equal(run('verifyCC', re, 'card 4111111111111111 ok'), true);
    assert.equal(run('verifyCC', re, 'card 4111111111111112 ok'), false);
  });
  it('@verifySSN', () => {
    assert.equal(run('verifySSN', '\\d{3}-\\d{2}-\\d{4}', '078-05-1120'), true);
    assert.equal(run('verifySSN', '\\d{3}-\\d{2}-\\d{4}', '666-05-1120'), false);
  });
  it('@verifyCPF', () => {
    assert.equal(run('verifyCPF', '\\d{3}\\.\\d{3}\\.\\d{3}-\\d{2}', '529.982.247-25'), true);
    assert.equal(run('verifyCPF', '\\d{3}\\.\\d{3}\\.\\d{3}-\\d{2}', '529.982.247-26'), false);
  });
});

describe('@detectSQLi / @detectXSS (libinjection)', () => {
  it('detects SQLi and captures the fingerprint', () => {
    const c = ctx({}, true);
    assert.equal(run('detectSQLi', '', "1' OR '1'='1", c), true);
    assert.equal(c.captures.length, 1);
    assert.match(c.captures[0] ?? '', /^[a-zA-Z0-9()&,;.:]{1,8}$/);
    assert.equal(run('detectSQLi', '', 'hello world'), false);
  });
  it('detects XSS', () => {
    assert.equal(run('detectXSS', '', '<script>alert(1)</script>'), true);
    assert.equal(run('detectXSS', '', 'just text'), false);
  });
});

describe('compileOperator', () => {
  it('is case-insensitive and reports the canonical name', () => {
    assert.equal(compileOperator('BEGINSWITH', 'x').name, 'beginsWith');
  });
  it('refuses unknown operators', () => {
    assert.throws(() => compileOperator('fuzzyHash', 'x'), /unknown operator @fuzzyHash/);
  });
  it('implements every operator CRS v4 uses', () => {
    for (const name of [
      'rx', 'pm', 'pmFromFile', 'streq', 'eq', 'ge', 'gt', 'le', 'lt', 'within', 'beginsWith', 'endsWith',
      'contains', 'detectSQLi', 'detectXSS', 'validateByteRange', 'validateUrlEncoding',
      'validateUtf8Encoding', 'ipMatch', 'unconditionalMatch',
    ]) {
      assert.ok(operatorNames.includes(name), name);
    }
  });
});

describe('PhraseMatcher (flattened automaton)', () => {
  it('finds what the Map walk finds, on random phrase lists and inputs', () => {
    let seed = 7;
    const next = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 8;
    };
    const alphabet = ['a', 'b', 'c', 'A', 'B', '\xe9', '\xc9', ' ', '\0'];
    const word = (max: number): string => {
      let s = '';
      for (let len = 1 + (next() % max); len > 0; len--) s += alphabet[next() % alphabet.length];
      return s;
    };
    for (let round = 0; round < 200; round++) {
      const phrases = Array.from({ length: 1 + (next() % 8) }, () => word(4));
      const m = new PhraseMatcher(phrases);
      const walk = (m as unknown as { findWide(s: string): string | null }).findWide.bind(m);
      for (let k = 0; k < 30; k++) {
        const input = next() % 10 === 0 ? `${word(6)}\u0101${word(6)}` : word(12);
        assert.equal(m.find(input), walk(input), `${JSON.stringify(phrases)} in ${JSON.stringify(input)}`);
      }
    }
  });
  it('keeps phrases with chars above 0xff working (the Map walk)', () => {
    const m = new PhraseMatcher(['\u0101b', 'cd']);
    assert.equal(m.find('x\u0101B'), '\u0101B');
    assert.equal(m.find('xCD'), 'CD');
    assert.equal(m.find('xyz'), null);
  });
});
