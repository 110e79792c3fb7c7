// Table tests for the transformations whose edge cases matter for evasion
// (the full reference set runs in `npm run conformance -- seclang`).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { getTransformation, transformationNames } from '../../../src/waf/transformations/index.ts';

function t(name: string): (input: string) => string {
  const fn = getTransformation(name);
  assert.ok(fn, `transformation ${name} missing`);
  return fn;
}

const TABLE: Record<string, [input: string, want: string][]> = {
  urlDecode: [
    ['a%20b+c', 'a b c'],
    ['%41%4a%4A', 'AJJ'],
    ['%zz%4', '%zz%4'],
    ['%', '%'],
    ['%c3%a9', '\xc3\xa9'],
    ['%u0041', '%u0041'],
  ],
  urlDecodeUni: [
    ['%u0041%u00e9', 'A\xe9'],
    ['%uff1c', '<'], // fullwidth '<' folds to ASCII
    ['%u2215', '\x15'], // only the low byte survives
    ['%U0041', 'A'],
    ['%u00g1', '%u00g1'],
    ['%2e%2E/', '../'],
  ],
  htmlEntityDecode: [
    ['&lt;script&gt;', '<script>'],
    ['&LT;&QuOt;', '<"'],
    ['&#60;&#x3c;&#X3C', '<<<'],
    ['&#0000060;', '<'],
    ['&nbsp;', '\xa0'],
    ['&foo;&', '&foo;&'],
    ['&#;&#x;', '&#;&#x;'],
    ['&#99999999999999999999999;', '\xff'], // saturates like strtol, keeps the low byte
  ],
  jsDecode: [
    ['\\x3cscript\\x3e', '<script>'],
    ['\\u003c\\uff1c', '<<'],
    ['\\101\\1012', 'AA2'],
    ['\\777', '?7'], // > 0377 uses only two octal digits
    ['\\n\\t\\q', '\n\tq'],
    ['\\', '\\'],
  ],
  cssDecode: [
    ['\\3c script\\3e', '<script>'],
    ['java\\\nscript', 'javascript'],
    ['\\000065', 'e'],
    ['\\ff1c', '<'],
    ['\\e9x', '\xe9x'],
    ['\\', ''],
  ],
  escapeSeqDecode: [
    ['\\x41\\101\\n', 'A\x41\n'],
    ['\\xZZ', 'xZZ'],
    ['\\q', 'q'],
  ],
  cmdLine: [
    ['c^at /etc/pa"ss"wd', 'cat/etc/passwd'],
    ["W'h'O;A\\m,I", 'who am i'],
    ['ping  \t ,; (x)', 'ping(x)'],
  ],
  compressWhitespace: [['a \t\r\n\x0b\x0c\xa0b', 'a b']],
  removeWhitespace: [['a \t\xa0b\nc', 'abc']],
  trim: [[' \t\n x y \r\x0b', 'x y']],
  lowercase: [['ABC\xc9', 'abc\xc9']], // C locale: only ASCII letters change
  uppercase: [['abc\xe9', 'ABC\xe9']],
  normalisePath: [
    ['/a/b/../../../etc/./passwd', '/etc/passwd'],
    ['a//b/./c/', 'a/b/c/'],
    ['../../x', '../../x'],
    ['/', '/'],
  ],
  normalisePathWin: [['c:\\windows\\..\\boot.ini', 'c:/boot.ini']],
  removeComments: [
    ['SEL/**/ECT', 'SELECT'],
    ['1 <!-- x --> 2', '1  2'],
    ['1 OR 1=1-- rest', '1 OR 1=1'],
    ['a#b', 'a'],
    ['a/*open', 'a '],
  ],
  replaceComments: [['UNION/**/SELECT/*x', 'UNION SELECT ']],
  removeCommentsChar: [['a/*b*/c--d#e<!--f-->', 'abcdef']],
  replaceNulls: [['a\0b', 'a b']],
  removeNulls: [['a\0b\0', 'ab']],
  base64Decode: [
    ['PHNjcmlwdD4=', '<script>'],
    ['PHNj.cmlwdD4=', '<sc'], // stops at the first char outside the alphabet
  ],
  base64DecodeExt: [['PHNj.cmlw dD4=', '<script>']],
  base64Encode: [['\xff\x00', '/wA=']],
  hexDecode: [['3c7363', '<sc']],
  hexEncode: [['<\xff', '3cff']],
  sqlHexDecode: [
    ['0x3c73 and 0X41', '<s and A'],
    ['0x4', '0x4'],
  ],
  utf8toUnicode: [
    ['caf\xc3\xa9', 'caf%u00e9'],
    ['\xe2\x82\xac', '%u20ac'],
    ['\xc0\xaf', '%u002f'], // overlong '/', decoded so later urlDecodeUni sees it
    ['\xc3', '\xc3'], // truncated sequence kept as is
    ['\xf0\x9f\x98\x80', '%u1f600'],
  ],
  length: [['abc\0', '4']],
  md5: [['', '\xd4\x1d\x8c\xd9\x8f\x00\xb2\x04\xe9\x80\x09\x98\xec\xf8\x42\x7e']],
  sha1: [['abc', Buffer.from('a9993e364706816aba3e25717850c26c9cd0d89d', 'hex').toString('latin1')]],
  phpArgsNames: [
    ['a.b c', 'a_b_c'],
    ['a[b][c]x', 'a[b][c]'],
    ['a[b', 'a_b'],
    ['[x]', ''],
  ],
  parityZero7bit: [['\xc1\x41', 'AA']],
  urlEncode: [['a b&\xe9', 'a+b%26%e9']],
};

describe('transformations (table)', () => {
  for (const [name, rows] of Object.entries(TABLE)) {
    describe(name, () => {
      for (const [input, want] of rows) {
        it(JSON.stringify(input), () => {
          assert.equal(t(name)(input), want);
        });
      }
    });
  }
});

describe('transformation registry', () => {
  it('looks names up case-insensitively (CRS writes t:base64decode)', () => {
    assert.equal(getTransformation('base64decode'), getTransformation('base64Decode'));
    assert.equal(getTransformation('URLDECODEUNI'), getTransformation('urlDecodeUni'));
  });
  it('accepts both spellings of normalisePath', () => {
    assert.equal(getTransformation('normalizePath'), getTransformation('normalisePath'));
    assert.equal(getTransformation('normalizePathWin'), getTransformation('normalisePathWin'));
  });
  it('returns undefined for unknown names and leaves `none` to the engine', () => {
    assert.equal(getTransformation('nope'), undefined);
    assert.equal(getTransformation('none'), undefined);
  });
  it('covers every transformation CRS uses', () => {
    const used = [
      'base64Decode', 'cmdLine', 'compressWhitespace', 'cssDecode', 'escapeSeqDecode', 'hexEncode',
      'htmlEntityDecode', 'jsDecode', 'length', 'lowercase', 'normalizePath', 'normalizePathWin',
      'removeCommentsChar', 'removeNulls', 'removeWhitespace', 'replaceComments', 'sha1', 'urlDecodeUni',
      'utf8toUnicode',
    ];
    for (const name of used) assert.ok(getTransformation(name), name);
    assert.ok(transformationNames.length >= 38);
  });
  it('keeps every output a latin1 binary string', () => {
    const hostile = '%u20ac\xe2\x82\xac&#x20ac;\\u20ac\\x{20ac}';
    for (const name of transformationNames) {
      const out = t(name)(hostile);
      assert.ok(!/[^\x00-\xff]/.test(out), `${name} produced a char above 0xff`);
    }
  });
  it('lowercase / uppercase change ASCII letters only, on the native (ASCII) and byte-wise (latin1) paths alike', () => {
    // Every byte alone, then every byte inside ASCII text (the native path) and next to a high byte (the byte-wise one).
    for (let c = 0; c < 256; c++) {
      const ch = String.fromCharCode(c);
      const lower = c >= 0x41 && c <= 0x5a ? String.fromCharCode(c + 0x20) : ch;
      const upper = c >= 0x61 && c <= 0x7a ? String.fromCharCode(c - 0x20) : ch;
      assert.equal(t('lowercase')(ch), lower, `lowercase 0x${c.toString(16)}`);
      assert.equal(t('uppercase')(ch), upper, `uppercase 0x${c.toString(16)}`);
      assert.equal(t('lowercase')(`Ab${ch}Zz`), `ab${lower}zz`);
      assert.equal(t('uppercase')(`Ab${ch}Zz`), `AB${upper}ZZ`);
      assert.equal(t('lowercase')(`\xb5Q${ch}`), `\xb5q${lower}`); // µ: String#toLowerCase would make it U+03BC
      assert.equal(t('uppercase')(`\xffq${ch}`), `\xffQ${upper}`); // ÿ: String#toUpperCase would make it U+0178
    }
    const body = JSON.stringify({ Name: 'Alice MARTIN', note: 'X'.repeat(2000) });
    assert.equal(t('lowercase')(body), body.replace(/[A-Z]/g, (m) => m.toLowerCase()));
  });
});

describe('transformations that return an unchanged value as it is', () => {
  // Reference definitions (regex-based, slow) against the fast paths, over short strings of the
  // chars that matter to each: the early return must fire exactly when nothing would change.
  const ws = /[\t\n\v\f\r \xa0]/;
  const refs: Record<string, (s: string) => string> = {
    removeWhitespace: (s) => s.replace(new RegExp(ws.source, 'g'), ''),
    compressWhitespace: (s) => s.replace(new RegExp(`${ws.source}+`, 'g'), ' '),
    cmdLine: (s) =>
      s
        .replace(/["'\\^]/g, '')
        .replace(/[ ,;\t\r\n]+/g, ' ')
        .replace(/ (?=[/(])/g, '')
        .replace(/[A-Z]/g, (c) => c.toLowerCase()),
  };
  const alphabet = ['a', 'A', 'Z', 'z', ' ', '\t', '\n', '\r', '\v', '\f', '\xa0', ',', ';', '"', "'", '\\', '^', '/', '(', '\x80', '\xc3', '\xa9', '0'];
  let seed = 12345;
  const next = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  const samples: string[] = [''];
  for (let k = 0; k < 4000; k++) {
    let s = '';
    for (let len = next() % 7; len > 0; len--) s += alphabet[next() % alphabet.length];
    samples.push(s);
  }
  for (const [name, ref] of Object.entries(refs)) {
    it(`${name} matches its reference on ${samples.length} strings`, () => {
      for (const s of samples) assert.equal(t(name)(s), ref(s), JSON.stringify(s));
    });
  }
  it('cmdLine: a lone space stays, runs and long runs collapse, a space before / or ( goes, a char above 0xff keeps its low byte', () => {
    assert.equal(t('cmdLine')('/products/search?q=blue running shoes&size=42'), '/products/search?q=blue running shoes&size=42');
    assert.equal(t('cmdLine')('ls '), 'ls ');
    assert.equal(t('cmdLine')(`A${' ,;\t'.repeat(20000)}/b`), 'a/b');
    assert.equal(t('cmdLine')(`x${' '.repeat(50000)}Y`), 'x y');
    assert.equal(t('cmdLine')('C\u0141 ;(x'), 'c\x41(x');
  });
  it('normalisePath(Win) return the path itself exactly when no segment changes, and agree with the segment walk', () => {
    // The segment walk (split on '/', drop '' and '.', '..' pops) as the reference.
    const walk = (path: string): string => {
      if (path === '') return path;
      const absolute = path.startsWith('/');
      const parts = path.split('/');
      const stack: string[] = [];
      for (const part of parts) {
        if (part === '' || part === '.') continue;
        if (part === '..') {
          if (stack.length > 0 && stack[stack.length - 1] !== '..') stack.pop();
          else if (!absolute) stack.push('..');
          continue;
        }
        stack.push(part);
      }
      const body = stack.join('/');
      const trailing = path.endsWith('/') && parts[parts.length - 1] === '';
      if (absolute) return trailing && body ? `/${body}/` : `/${body}`;
      return trailing && body ? `${body}/` : body;
    };
    const chars = ['/', '/', '.', '.', 'a', 'b', '\\'];
    const paths: string[] = [''];
    for (let k = 0; k < 6000; k++) {
      let s = '';
      for (let len = next() % 8; len > 0; len--) s += chars[next() % chars.length];
      paths.push(s);
    }
    for (const p of paths) {
      assert.equal(t('normalisePath')(p), walk(p), JSON.stringify(p));
      assert.equal(t('normalisePathWin')(p), walk(p.replaceAll('\\', '/')), JSON.stringify(p));
    }
    assert.equal(t('normalisePath')('/products/search'), '/products/search');
  });
  it('urlDecode(Uni) without an escape: + is a space and every char its low byte (the byte path), or the value itself without a +', () => {
    const chars = ['+', 'a', ' ', '\xe9', '\u0141', '\uff0b', '%'];
    for (let k = 0; k < 4000; k++) {
      let s = '';
      for (let len = next() % 7; len > 0; len--) s += chars[next() % chars.length];
      if (s.includes('%')) continue;
      // Nothing to decode: the value as it is (no masking either).
      let want = s;
      if (s.includes('+')) {
        want = '';
        for (let i = 0; i < s.length; i++) want += s[i] === '+' ? ' ' : String.fromCharCode(s.charCodeAt(i) & 0xff);
      }
      assert.equal(t('urlDecodeUni')(s), want, JSON.stringify(s));
      assert.equal(t('urlDecode')(s), want, JSON.stringify(s));
    }
    assert.equal(t('urlDecodeUni')('q=blue+running+shoes&page=7'), 'q=blue running shoes&page=7');
    assert.equal(t('urlDecodeUni')('a+\u0141'), 'a A');
  });
  it('htmlEntityDecode returns values without an entity as they are, and agrees with a regex reference', () => {
    const named = new Map([['quot', 0x22], ['amp', 0x26], ['lt', 0x3c], ['gt', 0x3e], ['nbsp', 0xa0]]);
    const byte = (digits: string, radix: number): string => String.fromCharCode(Number(BigInt(radix === 16 ? `0x${digits}` : digits) & 0xffn));
    const ref = (s: string): string => {
      if (!s.includes('&')) return s;
      const out = s.replace(/&#[xX]([0-9a-fA-F]+);?|&#([0-9]+);?|&([a-zA-Z0-9]+);?/g, (m, hex?: string, dec?: string, name?: string) => {
        if (hex !== undefined) return byte(hex, 16);
        if (dec !== undefined) return byte(dec, 10);
        const code = named.get(name!.toLowerCase());
        return code === undefined ? m : String.fromCharCode(code);
      });
      let masked = '';
      for (let i = 0; i < out.length; i++) masked += String.fromCharCode(out.charCodeAt(i) & 0xff);
      return masked;
    };
    const chars = ['&', '&', '#', 'x', 'l', 't', 'g', 'a', 'm', 'p', ';', '1', 'F', 'Q', 'U', 'O', 's', '=', ' ', '\u0141'];
    for (let k = 0; k < 8000; k++) {
      let s = '';
      for (let len = next() % 8; len > 0; len--) s += chars[next() % chars.length];
      assert.equal(t('htmlEntityDecode')(s), ref(s), JSON.stringify(s));
    }
    const q = 'q=blue running shoes&size=42&page=7';
    assert.equal(t('htmlEntityDecode')(q), q);
    assert.equal(t('htmlEntityDecode')('a&constructor;b&lt;'), 'a&constructor;b<');
  });
  it('utf8toUnicode copies values without a byte >= 0xc0 (and converts those with one)', () => {
    for (const s of samples) {
      if (!/[\xc0-\xff]/.test(s)) assert.equal(t('utf8toUnicode')(s), s, JSON.stringify(s));
    }
    assert.equal(t('utf8toUnicode')('\x80\xbfab'), '\x80\xbfab');
    assert.equal(t('utf8toUnicode')('ab\xc3\xa9'), 'ab%u00e9');
  });
});
