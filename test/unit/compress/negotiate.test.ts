// Table tests of Accept-Encoding parsing and coding choice (RFC 9110 §12.5.3), compressible
// types, Vary merging, ETag weakening and no-transform.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addVary, chooseCoding, hasNoTransform, isCompressible, parseAcceptEncoding, rankCodings, weakenEtag, DEFAULT_COMPRESSIBLE } from '../../../plugins/compress/negotiate.ts';
import type { HeaderMap } from '../../../src/pipeline/types.ts';

test('parseAcceptEncoding', () => {
  assert.deepEqual(parseAcceptEncoding(undefined), []);
  assert.deepEqual(parseAcceptEncoding(''), []);
  assert.deepEqual(parseAcceptEncoding('gzip, br'), [{ coding: 'gzip', q: 1 }, { coding: 'br', q: 1 }]);
  assert.deepEqual(parseAcceptEncoding('GZip;Q=0.5 , *;q=0'), [{ coding: 'gzip', q: 0.5 }, { coding: '*', q: 0 }]);
  assert.deepEqual(parseAcceptEncoding('x-gzip'), [{ coding: 'gzip', q: 1 }]);
  assert.deepEqual(parseAcceptEncoding('br;q=1.0, gzip;q=0.001'), [{ coding: 'br', q: 1 }, { coding: 'gzip', q: 0.001 }]);
  assert.deepEqual(parseAcceptEncoding('br;q=2'), [{ coding: 'br', q: 0 }], 'q above 1 is malformed: refused');
  assert.deepEqual(parseAcceptEncoding('br;q=abc'), [{ coding: 'br', q: 0 }]);
  assert.deepEqual(parseAcceptEncoding(['gzip', 'br;q=0.5']), [{ coding: 'gzip', q: 1 }, { coding: 'br', q: 0.5 }]);
});

test('chooseCoding: q-values, server order on ties, *, identity;q=0', () => {
  const ours = ['br', 'gzip', 'deflate'] as const;
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    ['identity', undefined],
    ['gzip', 'gzip'],
    ['gzip, br', 'br'],
    ['gzip, deflate, br', 'br'],
    ['gzip;q=1, br;q=0.8', 'gzip'],
    ['br;q=0, gzip', 'gzip'],
    ['deflate', 'deflate'],
    ['*', 'br'],
    ['*;q=0.5, gzip', 'gzip'],
    ['*;q=0', undefined],
    ['*, br;q=0', 'gzip'],
    ['gzip;q=0, deflate;q=0, br;q=0', undefined],
    ['identity;q=0, gzip', 'gzip'],
    ['identity;q=0', undefined],
    ['identity;q=1, gzip;q=0.5', undefined],
    ['identity;q=0.5, gzip;q=0.5', 'gzip'],
    ['compress, zstd', undefined],
    ['zstd, gzip;q=0.1', 'gzip'],
    ['x-gzip', 'gzip'],
    ['GZIP', 'gzip'],
  ];
  for (const [header, want] of cases) assert.equal(chooseCoding(header, ours), want, String(header));
  assert.equal(chooseCoding('gzip, br', ['gzip', 'br'] as const), 'gzip', 'the server order breaks ties');
  assert.deepEqual(rankCodings('gzip;q=0.5, br;q=0.9, deflate', ours), ['deflate', 'br', 'gzip']);
});

test('isCompressible: media type without parameters, type/* entries, unknown or missing types are not', () => {
  assert.equal(isCompressible('text/html; charset=utf-8', DEFAULT_COMPRESSIBLE), true);
  assert.equal(isCompressible('Application/JSON', DEFAULT_COMPRESSIBLE), true);
  assert.equal(isCompressible('image/png', DEFAULT_COMPRESSIBLE), false);
  assert.equal(isCompressible(undefined, DEFAULT_COMPRESSIBLE), false);
  assert.equal(isCompressible('', DEFAULT_COMPRESSIBLE), false);
  assert.equal(isCompressible('text/x-custom', ['text/*']), true);
  assert.equal(isCompressible('textual/x', ['text/*']), false);
});

test('addVary, weakenEtag, hasNoTransform', () => {
  const h: HeaderMap = {};
  addVary(h, 'Accept-Encoding');
  assert.equal(h.vary, 'Accept-Encoding');
  addVary(h, 'accept-encoding');
  assert.equal(h.vary, 'Accept-Encoding');
  const h2: HeaderMap = { vary: 'Origin' };
  addVary(h2, 'Accept-Encoding');
  assert.equal(h2.vary, 'Origin, Accept-Encoding');
  const h3: HeaderMap = { vary: '*' };
  addVary(h3, 'Accept-Encoding');
  assert.equal(h3.vary, '*');
  assert.equal(weakenEtag('"abc"'), 'W/"abc"');
  assert.equal(weakenEtag('W/"abc"'), 'W/"abc"');
  assert.equal(weakenEtag(undefined), undefined);
  assert.equal(hasNoTransform('public, no-transform'), true);
  assert.equal(hasNoTransform('No-Transform'), true);
  assert.equal(hasNoTransform('no-transformer'), false);
  assert.equal(hasNoTransform(undefined), false);
});
