// Behaviour of the public API beyond libinjection's own case files: contexts, byte
// semantics, and the lower-level exports the WAF operators and tests rely on.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  FLAG_QUOTE_NONE,
  FLAG_QUOTE_SINGLE,
  FLAG_SQL_ANSI,
  FLAG_SQL_MYSQL,
  H5Start,
  SqliState,
  detectSqli,
  detectXss,
  fingerprint,
  html5Tokens,
  isXss,
  isXssInContext,
  tokenizeAll,
} from '../../../src/waf/libinjection/index.ts';
import { run } from '../../conformance/suites/libinjection.ts';

const types = (input: string, flags: number): string =>
  tokenizeAll(input, flags)
    .map((t) => t.type)
    .join('');

test('detectSqli reports the matching fingerprint, or an empty one', () => {
  assert.deepEqual(detectSqli('1 UNION SELECT password FROM users'), { detected: true, fingerprint: '1UEnk' });
  assert.deepEqual(detectSqli('hello world'), { detected: false, fingerprint: '' });
  assert.deepEqual(detectSqli(''), { detected: false, fingerprint: '' });
});

test('detectSqli tries the single-quote context for input that breaks out of a string', () => {
  const r = detectSqli("x' OR '1'='1");
  assert.equal(r.detected, true);
  // as-is the input starts with a bare word; only the quote context yields s&sos
  assert.equal(r.fingerprint, 's&sos');
  assert.equal(detectSqli("O'Reilly").detected, false);
});

test('consecutive calls do not leak state between inputs', () => {
  assert.equal(detectSqli('1; DROP TABLE users--').detected, true);
  assert.equal(detectSqli('plain').detected, false);
  assert.equal(detectSqli('1; DROP TABLE users--').fingerprint, detectSqli('1; DROP TABLE users--').fingerprint);
});

test("'#' and '--x' are comments only in MySQL mode / ANSI mode respectively", () => {
  assert.equal(types('1 # x', FLAG_QUOTE_NONE | FLAG_SQL_ANSI), '1on');
  assert.equal(types('1 # x', FLAG_QUOTE_NONE | FLAG_SQL_MYSQL), '1c');
  assert.equal(types('1 --x', FLAG_QUOTE_NONE | FLAG_SQL_ANSI), '1c');
  assert.equal(types('1 --x', FLAG_QUOTE_NONE | FLAG_SQL_MYSQL), '1oon');
});

test('a quote context reads the input as the tail of an open string', () => {
  const tokens = tokenizeAll("abc' OR 1", FLAG_QUOTE_SINGLE | FLAG_SQL_ANSI);
  assert.equal(tokens[0]?.type, 's');
  assert.equal(tokens[0]?.val, 'abc');
  assert.equal(tokens[0]?.strOpen, '');
  assert.equal(tokens[0]?.strClose, "'");
});

test('bytes are latin1 chars: 0xA0 separates words, high bytes are word characters', () => {
  assert.equal(types('1\xa0UNION\xa0SELECT', FLAG_QUOTE_NONE | FLAG_SQL_ANSI), '1UE');
  const word = tokenizeAll('SEL\xe9CT', FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
  assert.equal(word.length, 1);
  assert.equal(word[0]?.type, 'n');
});

test('nested or MySQL-versioned C comments make the fingerprint X', () => {
  const sf = new SqliState('1 /*! UNION */ SELECT 1');
  assert.equal(fingerprint(sf, FLAG_QUOTE_NONE | FLAG_SQL_ANSI), 'X');
  sf.setInput('1 /* a /* b */ 2');
  assert.equal(fingerprint(sf, FLAG_QUOTE_NONE | FLAG_SQL_ANSI), 'X');
});

test("a number with a bare exponent ('1.e') is skipped during detection, closing the 1.e( bypass", () => {
  // the raw tokenizer keeps libinjection's classic reading (a word) ...
  assert.equal(types('1.e(1)', FLAG_QUOTE_NONE | FLAG_SQL_ANSI), 'n(1)');
  // ... but detection reads it as MySQL does, where "1.e(1)" is just "(1)"
  assert.equal(detectSqli("1' or 1.e(1) or '1'='1").detected, true);
  assert.equal(detectSqli('Suite 2e').detected, false);
});

test('long tokens keep only 31 characters of their value', () => {
  const long = 'a'.repeat(40);
  const [t] = tokenizeAll(long);
  assert.equal(t?.len, 31);
  assert.equal(t?.val, long.slice(0, 31));
});

test('detectXss flags script tags, handlers, dangerous URLs and style', () => {
  assert.equal(detectXss('<script>alert(1)</script>'), true);
  assert.equal(detectXss('<img src=x onerror=alert(1)>'), true);
  assert.equal(detectXss('<a href="javascript:alert(1)">x</a>'), true);
  assert.equal(detectXss('<a href="&#106;avascript:alert(1)">x</a>'), true, 'numeric entities are decoded');
  assert.equal(detectXss('<a href=" vbscript:x">x</a>'), true);
  assert.equal(detectXss('<div style="color:red">'), true);
  assert.equal(detectXss('<!DOCTYPE html>'), true);
  assert.equal(detectXss('<b>bold</b> and <a href="https://example.com/">link</a>'), false);
  assert.equal(detectXss('5 < 6 and 7 > 3'), false);
});

test('detectXss checks attribute-value contexts too', () => {
  const payload = '" onmouseover="alert(1)';
  assert.equal(isXssInContext(payload, H5Start.DATA), false);
  assert.equal(isXssInContext(payload, H5Start.VALUE_DOUBLE_QUOTE), true);
  assert.equal(detectXss(payload), true);
});

test('the HTML5 tokenizer emits tag, attribute and comment tokens', () => {
  assert.deepEqual(html5Tokens('<a href=x>t</a><!-- c -->'), [
    ['TAG_NAME_OPEN', 'a'],
    ['ATTR_NAME', 'href'],
    ['ATTR_VALUE', 'x'],
    ['TAG_NAME_CLOSE', '>'],
    ['DATA_TEXT', 't'],
    ['TAG_CLOSE', 'a'],
    ['TAG_COMMENT', ' c '],
  ]);
});

test('the conformance suite fails, naming the path, when the data is missing', async () => {
  const saved = process.env.LIBINJECTION_DIR;
  const lines: string[] = [];
  const origLog = console.log;
  process.env.LIBINJECTION_DIR = '/nonexistent/libinjection-data';
  console.log = (...args: unknown[]) => void lines.push(args.join(' '));
  try {
    const r = await run();
    assert.equal(r.failed, 1);
    assert.equal(r.passed, 0);
  } finally {
    console.log = origLog;
    if (saved === undefined) delete process.env.LIBINJECTION_DIR;
    else process.env.LIBINJECTION_DIR = saved;
  }
  assert.ok(lines.some((l) => l.includes('/nonexistent/libinjection-data')), lines.join('\n'));
});

test('isXss skips the tokenizers only where every context would find nothing', () => {
  // Random strings over letters that spell dangerous names and the chars that break tokens:
  // the shortcut must agree with running every context.
  const contexts = [H5Start.DATA, H5Start.VALUE_NO_QUOTE, H5Start.VALUE_SINGLE_QUOTE, H5Start.VALUE_DOUBLE_QUOTE, H5Start.VALUE_BACK_QUOTE];
  const pieces = ['onload', 'script', 'javascript:', 'style', 'x', '1', ' ', '\0', '\t', '"', "'", '`', '<', '>', '/', '=', '!DOCTYPE', '-', ':', '(', ')'];
  let seed = 99;
  const next = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed >>> 8;
  };
  let flagged = 0;
  for (let k = 0; k < 5000; k++) {
    let s = '';
    for (let n = 1 + (next() % 5); n > 0; n--) s += pieces[next() % pieces.length];
    const full = contexts.some((c) => isXssInContext(s, c));
    assert.equal(isXss(s), full, JSON.stringify(s));
    if (full) flagged++;
  }
  assert.ok(flagged > 30, `only ${flagged} flagged samples`);
  for (const plain of ['1234', 'onload', 'javascript:alert(1)', 'script', '%3Cscript%3E']) {
    assert.equal(isXss(plain), false);
    assert.equal(contexts.some((c) => isXssInContext(plain, c)), false);
  }
});
