// Table tests of the static-files pure core: path segments, conditional requests, ranges, If-Range,
// content types and the listing's escaping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conditionalStatus, evaluateRange, ifRangeAllows, resolveSegments, validatorsOf } from '../../../plugins/static-files/request.ts';
import { contentTypeOf } from '../../../plugins/static-files/mime.ts';
import { escapeHtml, renderListing } from '../../../plugins/static-files/listing.ts';

test('resolveSegments: decoded once, traversal / NUL / backslash / separators refused, dotfiles hidden', () => {
  const ok = (path: string, segments: string[], trailingSlash = false) => assert.deepEqual(resolveSegments(path, false), { ok: true, segments, trailingSlash }, path);
  const bad = (path: string, reason: string, status = 400, dotfiles = false) => {
    const v = resolveSegments(path, dotfiles);
    assert.equal(v.ok, false, path);
    if (!v.ok) {
      assert.equal(v.reason, reason, path);
      assert.equal(v.status, status, path);
    }
  };
  ok('/', [], true);
  ok('/a/b.txt', ['a', 'b.txt']);
  ok('/a/', ['a'], true);
  ok('/a%20b.txt', ['a b.txt']);
  ok('/%252e%252e/x', ['%2e%2e', 'x']); // double-encoded: a literal name, never a parent
  ok('/.well-known/acme', ['.well-known', 'acme']);
  ok('/a..b', ['a..b']);
  bad('/%2e%2e/x', 'dot_segment');
  bad('/.%2e/x', 'dot_segment');
  bad('/../x', 'dot_segment');
  bad('/./x', 'dot_segment');
  bad('/a%2fb', 'slash');
  bad('/..%2fx', 'slash');
  bad('/a%5cb', 'backslash');
  bad('/a\\b', 'backslash');
  bad('/a%00.html', 'nul');
  bad('/%e0%a4%a', 'bad_encoding');
  bad('/%c0%ae%c0%ae/x', 'bad_encoding'); // overlong UTF-8 is not valid UTF-8
  bad('/.env', 'dotfile', 404);
  bad('/a/.git/config', 'dotfile', 404);
  bad('/%2eenv', 'dotfile', 404);
  assert.deepEqual(resolveSegments('/.env', true), { ok: true, segments: ['.env'], trailingSlash: false });
  bad('/../x', 'dot_segment', 400, true);
});

const v = validatorsOf(10, Date.parse('2026-01-02T03:04:05.678Z'));
const LM = 'Fri, 02 Jan 2026 03:04:05 GMT';
const EARLIER = 'Fri, 02 Jan 2026 03:04:04 GMT';
const LATER = 'Fri, 02 Jan 2026 03:04:06 GMT';

test('validatorsOf: strong ETag from size and mtime, Last-Modified to the second', () => {
  assert.match(v.etag, /^"a-[0-9a-f]+"$/);
  assert.equal(v.lastModified, LM);
  assert.notEqual(validatorsOf(10, 1000).etag, validatorsOf(11, 1000).etag);
  assert.notEqual(validatorsOf(10, 1000).etag, validatorsOf(10, 2000).etag);
  assert.notEqual(validatorsOf(10, 1000).etag, validatorsOf(10, 1000, '-br').etag);
});

test('conditionalStatus: RFC 9110 §13.2.2 order and comparison functions', () => {
  const cases: [Record<string, string>, 304 | 412 | undefined][] = [
    [{}, undefined],
    [{ 'if-none-match': v.etag }, 304],
    [{ 'if-none-match': `W/${v.etag}` }, 304],
    [{ 'if-none-match': `"x", ${v.etag}` }, 304],
    [{ 'if-none-match': '*' }, 304],
    [{ 'if-none-match': '"x"' }, undefined],
    [{ 'if-none-match': 'garbage' }, undefined],
    [{ 'if-modified-since': LM }, 304],
    [{ 'if-modified-since': LATER }, 304],
    [{ 'if-modified-since': EARLIER }, undefined],
    [{ 'if-modified-since': 'not a date' }, undefined],
    [{ 'if-none-match': '"x"', 'if-modified-since': LM }, undefined],
    [{ 'if-match': v.etag }, undefined],
    [{ 'if-match': '*' }, undefined],
    [{ 'if-match': `W/${v.etag}` }, 412],
    [{ 'if-match': '"x"' }, 412],
    [{ 'if-unmodified-since': EARLIER }, 412],
    [{ 'if-unmodified-since': LM }, undefined],
    [{ 'if-match': v.etag, 'if-unmodified-since': EARLIER }, undefined],
    [{ 'if-match': v.etag, 'if-none-match': v.etag }, 304],
  ];
  for (const [headers, want] of cases) assert.equal(conditionalStatus(headers, v), want, JSON.stringify(headers));
});

test('evaluateRange: one range, suffix, open end, several ranges -> full, unsatisfiable, malformed ignored', () => {
  const cases: [string | undefined, number, ReturnType<typeof evaluateRange>][] = [
    [undefined, 10, { kind: 'full' }],
    ['bytes=0-0', 10, { kind: 'partial', start: 0, end: 0 }],
    ['bytes=2-5', 10, { kind: 'partial', start: 2, end: 5 }],
    ['bytes = 2 - 5', 10, { kind: 'partial', start: 2, end: 5 }],
    ['BYTES=2-5', 10, { kind: 'partial', start: 2, end: 5 }],
    ['bytes=7-', 10, { kind: 'partial', start: 7, end: 9 }],
    ['bytes=-3', 10, { kind: 'partial', start: 7, end: 9 }],
    ['bytes=-30', 10, { kind: 'partial', start: 0, end: 9 }],
    ['bytes=5-1000', 10, { kind: 'partial', start: 5, end: 9 }],
    ['bytes=0-1,3-4', 10, { kind: 'full' }],
    ['bytes=0-1,50-60', 10, { kind: 'full' }],
    ['bytes=10-', 10, { kind: 'unsatisfiable' }],
    ['bytes=10-20,30-40', 10, { kind: 'unsatisfiable' }],
    ['bytes=-0', 10, { kind: 'unsatisfiable' }],
    ['bytes=0-', 0, { kind: 'unsatisfiable' }],
    ['bytes=-5', 0, { kind: 'unsatisfiable' }],
    ['bytes=5-2', 10, { kind: 'full' }],
    ['bytes=-', 10, { kind: 'full' }],
    ['bytes=a-b', 10, { kind: 'full' }],
    ['bytes=', 10, { kind: 'full' }],
    ['items=0-1', 10, { kind: 'full' }],
  ];
  for (const [range, size, want] of cases) assert.deepEqual(evaluateRange(range, size), want, `${range} / ${size}`);
});

test('ifRangeAllows: strong ETag or exact date', () => {
  assert.equal(ifRangeAllows(undefined, v), true);
  assert.equal(ifRangeAllows(v.etag, v), true);
  assert.equal(ifRangeAllows(`W/${v.etag}`, v), false);
  assert.equal(ifRangeAllows('"other"', v), false);
  assert.equal(ifRangeAllows(LM, v), true);
  assert.equal(ifRangeAllows(EARLIER, v), false);
  assert.equal(ifRangeAllows(LATER, v), false);
  assert.equal(ifRangeAllows('garbage', v), false);
});

test('contentTypeOf', () => {
  const cases: [string, string][] = [
    ['index.html', 'text/html; charset=utf-8'],
    ['A.HTML', 'text/html; charset=utf-8'],
    ['app.min.js', 'text/javascript; charset=utf-8'],
    ['x.svg', 'image/svg+xml'],
    ['font.woff2', 'font/woff2'],
    ['archive.tar.gz', 'application/gzip'],
    ['Makefile', 'application/octet-stream'],
    ['.bashrc', 'application/octet-stream'],
    ['trailingdot.', 'application/octet-stream'],
  ];
  for (const [name, want] of cases) assert.equal(contentTypeOf(name), want, name);
});

test('listing: names HTML-escaped and links percent-encoded', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  const html = renderListing('/d%3Cx%3E/', [{ name: '"><img src=x onerror=alert(1)>', dir: false }, { name: 'sub', dir: true }], true);
  assert.ok(!html.includes('<img'));
  assert.ok(!html.includes('<x>'), 'the decoded request path is escaped in the title');
  assert.ok(html.includes('href="%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"'));
  assert.ok(html.indexOf('sub/') < html.indexOf('&quot;&gt;'), 'directories first');
  assert.ok(html.includes('(listing truncated)'));
});
