import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normalisePath, normaliseQuery, primaryKey, variantKey, varyNames } from '../../../plugins/caching/key.ts';
import { globToRegExp, globsMatcher } from '../../../plugins/caching/glob.ts';

test('normalisePath: equivalent spellings share a key, distinct paths do not', () => {
  const cases: [string, string][] = [
    ['/a/b', '/a/b'],
    ['/a/%7Eb', '/a/~b'],
    ['/a/%7eb', '/a/~b'],
    ['/a%2fb', '/a%2Fb'], // an encoded slash stays encoded: it is not a segment boundary
    ['/a/./b', '/a/b'],
    ['/a/x/../b', '/a/b'],
    ['/a/..', '/'],
    ['/../../etc', '/etc'],
    ['/a/b/.', '/a/b/'],
    ['/%41%42', '/AB'],
    ['/a%20b', '/a%20b'],
  ];
  for (const [input, want] of cases) assert.equal(normalisePath(input), want, input);
});

test('normaliseQuery: sorted, ignored params dropped, encoding kept', () => {
  const cases: [string, string[], string][] = [
    ['', [], ''],
    ['b=2&a=1', [], 'a=1&b=2'],
    // a repeated name keeps the order of its values: first-wins and last-wins frameworks differ
    ['a=2&a=1', [], 'a=2&a=1'],
    ['b=1&a=2&a=1', [], 'a=2&a=1&b=1'],
    ['a=1&b=1&a=2', [], 'a=1&a=2&b=1'],
    ['utm_source=x&id=3', ['utm_source'], 'id=3'],
    ['utm%5Fsource=x&id=3', ['utm_source'], 'id=3'],
    ['q=a%20b&&', [], 'q=a%20b'],
    ['flag&x=1', [], 'flag&x=1'],
    // parameter cloaking: Rack and old Python split on ';' too, so an ignored param that hides
    // another behind ';' stays in the key
    ['utm_source=a;cb=evil&id=3', ['utm_source'], 'id=3&utm_source=a;cb=evil'],
  ];
  for (const [q, ignore, want] of cases) assert.equal(normaliseQuery(q, ignore), want, q);
});

test('primaryKey: HEAD shares GET, host and query are part of it', () => {
  const k = (method: string, host: string, path: string, query: string) => primaryKey({ method, host, path, query }, ['fbclid']);
  assert.equal(k('GET', 'a.test', '/x', ''), k('HEAD', 'a.test', '/x', ''));
  assert.equal(k('GET', 'a.test', '/x', 'b=1&a=2'), k('GET', 'a.test', '/x', 'a=2&b=1&fbclid=zz'));
  assert.notEqual(k('GET', 'a.test', '/x', ''), k('GET', 'b.test', '/x', ''));
  assert.notEqual(k('GET', 'a.test', '/x', 'a=1'), k('GET', 'a.test', '/x', 'a=2'));
  assert.notEqual(k('GET', 'a.test', '/x', 'a=1&a=2'), k('GET', 'a.test', '/x', 'a=2&a=1'));
  // session 21: the route that caches is part of the key
  const r = (route: string) => primaryKey({ method: 'GET', host: 'a.test', path: '/x', query: '' }, [], undefined, route);
  assert.notEqual(r('main'), r('beta'));
  assert.equal(r('main'), r('main'));
});

test('primaryKey: the Host port and the URL-shaping forwarded headers are keyed as the upstream gets them', () => {
  const k = (headers: Record<string, string>) => primaryKey({ method: 'GET', host: 'a.test', path: '/x', query: '' }, [], { host: 'a.test', ...headers });
  const plain = k({});
  assert.equal(plain, primaryKey({ method: 'GET', host: 'a.test', path: '/x', query: '' }, []), 'nothing added for a plain request');
  assert.notEqual(k({ host: 'a.test:8080' }), plain);
  for (const n of ['x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-original-host', 'x-host', 'x-forwarded-scheme', 'front-end-https']) {
    assert.notEqual(k({ [n]: 'evil' }), plain, n);
  }
  assert.notEqual(k({ forwarded: 'host=evil' }), plain);
  assert.equal(k({ forwarded: 'for=1.2.3.4;proto=https' }), k({ forwarded: 'for=5.6.7.8; proto=https' }), 'for= is not keyed');
  assert.equal(k({ 'x-forwarded-for': '1.2.3.4' }), plain, 'X-Forwarded-For is not keyed');
});

test('varyNames and variantKey', () => {
  assert.deepEqual(varyNames(['x-tenant'], { vary: 'Accept-Encoding, Accept-Language' }), ['accept-encoding', 'accept-language', 'x-tenant']);
  assert.deepEqual(varyNames([], {}), []);
  assert.equal(varyNames([], { vary: 'Accept, *' }), undefined);
  // written anew for every request: never reusable (session 18)
  assert.equal(varyNames([], { vary: 'Accept, X-Correlation-Id' }), undefined);
  assert.equal(varyNames(['traceparent'], {}), undefined);
  assert.deepEqual(varyNames([], { vary: 'X-Forwarded-For' }), ['x-forwarded-for']);
  const h = (v: Record<string, string>) => (n: string) => v[n];
  const a = variantKey('GET a/x', ['accept-encoding'], h({ 'accept-encoding': 'gzip,  br' }));
  const b = variantKey('GET a/x', ['accept-encoding'], h({ 'accept-encoding': 'gzip, br' }));
  const c = variantKey('GET a/x', ['accept-encoding'], h({ 'accept-encoding': 'identity' }));
  const none = variantKey('GET a/x', ['accept-encoding'], h({}));
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.notEqual(a, none);
  assert.equal(variantKey('GET a/x', [], h({ 'accept-encoding': 'gzip' })), 'GET a/x');
});

test('globs: * within a segment, ** across, ? one character', () => {
  const cases: [string, string, boolean][] = [
    ['/wp-admin/**', '/wp-admin', true],
    ['/wp-admin/**', '/wp-admin/a/b.php', true],
    ['/wp-admin/**', '/wp-administrator', false],
    ['/assets/*.js', '/assets/app.js', true],
    ['/assets/*.js', '/assets/x/app.js', false],
    ['/a?c', '/abc', true],
    ['/a?c', '/a/c', false],
    ['/v1.0/x', '/v1x0/x', false],
    ['/**', '/anything/at/all', true],
  ];
  for (const [glob, path, want] of cases) assert.equal(globToRegExp(glob).test(path), want, `${glob} ~ ${path}`);
  assert.equal(globsMatcher([])('/x'), false);
  assert.equal(globsMatcher(['/a/**', '/b'])('/b'), true);
});

test('varyNames: the headers a response was chosen by without naming them (session 23)', () => {
  assert.deepEqual(varyNames([], { 'content-encoding': 'gzip' }), ['accept-encoding']);
  assert.deepEqual(varyNames([], { vary: 'Accept-Encoding', 'content-encoding': 'br' }), ['accept-encoding']);
  assert.deepEqual(varyNames([], { 'content-encoding': 'identity', 'access-control-allow-origin': '*' }), []);
  assert.deepEqual(varyNames(['x-tenant'], { 'access-control-allow-origin': 'https://a.example' }), ['origin', 'x-tenant']);
  assert.equal(varyNames([], { vary: '*', 'content-encoding': 'gzip' }), undefined);
  // the scheme of a TLS listener is keyed, a plain one's key is unchanged
  const req = { method: 'GET', host: 'a', path: '/x', query: '' };
  assert.equal(primaryKey({ ...req, protocol: 'http' }, []), primaryKey(req, []));
  assert.notEqual(primaryKey({ ...req, protocol: 'https' }, []), primaryKey(req, []));
});
