import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { compileRegex, RegexTranslationError } from '../../../src/waf/regex/index.ts';

const RX = { dotAll: true, multiline: true } as const;

describe('compileRegex: PCRE semantics on latin1 input', () => {
  const cases: {
    what: string;
    pattern: string;
    opts?: { caseless?: boolean; multiline?: boolean; dotAll?: boolean };
    input: string;
    want: string[] | null;
  }[] = [
    { what: 'byte range class matches single latin1 chars', pattern: '[\\x80-\\xff]+', input: 'ab\xe9\xff\x80c', want: ['\xe9\xff\x80'] },
    { what: '\\x{..} escape', pattern: '\\x{41}\\x{e9}', input: 'A\xe9', want: ['A\xe9'] },
    { what: 'dot matches one byte, even >= 0x80', pattern: '^a.c$', input: 'a\xffc', want: ['a\xffc'] },
    { what: 'PCRE \\s includes vertical tab', pattern: 'a\\sb', input: 'a\x0bb', want: ['a\x0bb'] },
    { what: 'PCRE \\s inside a class', pattern: 'a[\\s,]b', input: 'a\x0bb', want: ['a\x0bb'] },
    { what: '\\S excludes vertical tab', pattern: 'a\\Sb', input: 'a\x0bb', want: null },
    { what: '\\S inside a class excludes whitespace but takes high bytes', pattern: '^[\\S]+$', input: 'x\xff', want: ['x\xff'] },
    { what: '\\h horizontal space', pattern: 'a\\hb', input: 'a\xa0b', want: ['a\xa0b'] },
    { what: '\\v is vertical whitespace in PCRE', pattern: 'a\\vb', input: 'a\nb', want: ['a\nb'] },
    { what: '\\R any newline', pattern: 'a\\Rb', input: 'a\r\nb', want: ['a\r\nb'] },
    { what: '\\e escape char', pattern: '\\e\\[', input: '\x1b[', want: ['\x1b['] },
    { what: '\\cA control char', pattern: '\\cA', input: 'x\x01', want: ['\x01'] },
    { what: 'octal escape', pattern: '\\101\\0', input: 'A\0', want: ['A\0'] },
    { what: 'non-multiline $ also matches before a final newline', pattern: 'abc$', opts: {}, input: 'abc\n', want: ['abc\n'] },
    { what: 'non-multiline $ does not match before an inner newline', pattern: 'abc$', opts: {}, input: 'abc\nx', want: null },
    { what: 'multiline $ matches at every line end', pattern: 'abc$', opts: RX, input: 'abc\nx', want: ['abc'] },
    { what: '\\Z end or before final newline', pattern: 'c\\Z', input: 'abc\n', want: ['c\n'] },
    { what: '\\z only at the very end', pattern: 'c\\z', input: 'abc\n', want: null },
    { what: '\\A start of subject even in multiline mode', pattern: '\\Ab', opts: RX, input: 'a\nb', want: null },
    { what: '(?i) flag applies to the rest of the group', pattern: '(a(?i)b)c', input: 'aBc', want: ['aBc', 'aB'] },
    { what: '(?i) scope ends with its group', pattern: '(a(?i)b)c', input: 'aBC', want: null },
    { what: '(?i:...) group', pattern: '(?i:select)\\s', input: 'SeLeCt ', want: ['SeLeCt '] },
    { what: 'caseless option', pattern: 'union', opts: { caseless: true }, input: 'UNION', want: ['UNION'] },
    { what: 'caseless folds ASCII only, like PCRE without UTF (\xe9 is not \xc9)', pattern: '(?i)caf\xe9', input: 'CAF\xc9', want: null },
    { what: 'caseless ASCII letters', pattern: '(?i)caf\xe9', input: 'CaF\xe9', want: ['CaF\xe9'] },
    { what: 'caseless class ranges fold', pattern: '(?i)^[a-c]+$', input: 'aBC', want: ['aBC'] },
    { what: 'caseless negated class excludes both cases', pattern: '(?i)^[^a]$', input: 'A', want: null },
    { what: 'caseless byte ranges stay byte ranges', pattern: '(?i)\\x{e2}\\x80', input: '\xc2\x80', want: null },
    { what: 'caseless hex escapes fold', pattern: '(?i)\x41', input: 'a', want: ['a'] },
    { what: '(?-i) turns folding off', pattern: '(?i)a(?-i)b', input: 'AB', want: null },
    { what: '(?-i:...) group', pattern: '(?i)a(?-i:b)c', input: 'AbC', want: ['AbC'] },
    { what: 'caseless keeps metacharacters', pattern: '(?i:a|b.)', input: 'Bx', want: ['Bx'] },
    { what: 'atomic group degrades to a plain group', pattern: '(?>ab|a)c', input: 'abc', want: ['abc'] },
    { what: 'possessive quantifier degrades to greedy', pattern: 'a++b', input: 'aab', want: ['aab'] },
    { what: 'possessive counted repeat', pattern: 'a{2}+b', input: 'aab', want: ['aab'] },
    { what: "a '}' that closes no repeat is a literal, and a '+' after it repeats it", pattern: 'x}+', input: 'x}}', want: ['x}}'] },
    { what: "a '{' that opens no repeat is a literal", pattern: 'a{,2}{x', input: 'a{,2}{x', want: ['a{,2}{x'] },
    { what: 'named groups (?<n>..) and (?P<n>..)', pattern: '(?<x>a)(?P<y>b)', input: 'ab', want: ['ab', 'a', 'b'] },
    { what: "]' first in a class is literal", pattern: '[]a]+', input: 'x]a]', want: [']a]'] },
    { what: "'[' inside a class is literal", pattern: '[[a]+', input: '[a', want: ['[a'] },
    { what: 'POSIX class inside a class', pattern: '[[:digit:]x]+', input: 'a1x2', want: ['1x2'] },
    { what: '\\Q..\\E quotes metacharacters', pattern: '\\Qa.b*\\E', input: 'a.b*', want: ['a.b*'] },
    { what: '\\Q..\\E does not match the unquoted meaning', pattern: '^\\Qa.b\\E$', input: 'axb', want: null },
    { what: 'comment group is dropped', pattern: 'a(?#note)b', input: 'ab', want: ['ab'] },
    { what: 'unmatched groups become empty strings', pattern: '(a)|(b)', input: 'b', want: ['b', '', 'b'] },
    { what: 'escaped slash and dash', pattern: '\\/\\-', input: '/-', want: ['/-'] },
    { what: '\\b word boundary, [\\b] backspace', pattern: '\\bx[\\b]', input: ' x\b', want: ['x\b'] },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const re = compileRegex(c.pattern, c.opts ?? {});
      assert.deepEqual(re.exec(c.input), c.want);
      assert.equal(re.test(c.input), c.want !== null);
    });
  }
});

describe('compileRegex: constructs RE2 cannot run in linear time are refused clearly', () => {
  for (const pattern of ['a(?=b)', 'a(?!b)', '(?<=a)b', '(?<!a)b', '(a)\\1', '(?P=n)', '(?R)', 'a\\G']) {
    it(pattern, () => {
      assert.throws(() => compileRegex(pattern), RegexTranslationError);
    });
  }
  it('names the pattern in the message', () => {
    assert.throws(() => compileRegex('x(?=y)'), /x\(\?=y\).*look-around/);
  });
});

describe('execAll', () => {
  it('returns every non-empty match with its groups', () => {
    assert.deepEqual(compileRegex('(a|b)(\\d)').execAll('a1-b2-c3'), [
      ['a1', 'a', '1'],
      ['b2', 'b', '2'],
    ]);
  });
  it('skips empty matches unless nothing else matched', () => {
    assert.deepEqual(compileRegex('[a-z]*').execAll('aaa0bbb'), [['aaa'], ['bbb']]);
    assert.deepEqual(compileRegex('([a-z]*)').execAll(''), [['', '']]);
  });
  it('is repeatable (no state leaks between calls)', () => {
    const re = compileRegex('x');
    assert.equal(re.execAll('xx').length, 2);
    assert.equal(re.execAll('xx').length, 2);
  });
});

describe('compileRegex cache', () => {
  it('returns the same compiled object for the same pattern and flags', () => {
    assert.equal(compileRegex('abc', RX), compileRegex('abc', RX));
    assert.notEqual(compileRegex('abc', RX), compileRegex('abc', { caseless: true }));
  });
});

describe('compileRegex: the `^.*$` fast path answers as RE2 does', () => {
  // Same pattern, different spelling: not the fast path, so RE2 answers.
  const re2 = compileRegex('^(?:.*)$', RX);
  const fast = compileRegex('^.*$', RX);
  for (const input of ['', 'user-agent', 'a\nb', '\r\n', 'x\xff\x00y', ' ']) {
    it(JSON.stringify(input), () => {
      assert.equal(fast.test(input), re2.test(input));
      assert.deepEqual(fast.exec(input), re2.exec(input));
      assert.deepEqual(fast.execAll(input), re2.execAll(input));
    });
  }
});
