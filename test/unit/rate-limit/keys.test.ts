import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKeySpec, keyFunction, pathKey, type KeySpec } from '../../../plugins/rate-limit/keys.ts';
import { normalizePath } from '../../../src/server/request-target.ts';
import { fakeCtx } from './fixtures.ts';

test('parseKeySpec accepts Sentinel spellings', () => {
  const rows: Array<[string, KeySpec]> = [
    ['client-ip', { kind: 'client-ip' }],
    ['client_ip', { kind: 'client-ip' }],
    ['ip', { kind: 'client-ip' }],
    ['Client-IP', { kind: 'client-ip' }],
    ['path', { kind: 'path' }],
    ['route', { kind: 'route' }],
    ['client-ip-and-path', { kind: 'client-ip-and-path' }],
    ['header:X-Custom-Key', { kind: 'header', name: 'x-custom-key' }],
    ['header: X-Api-Key ', { kind: 'header', name: 'x-api-key' }],
  ];
  for (const [raw, want] of rows) assert.deepEqual(parseKeySpec(raw), want, raw);
});

test('parseKeySpec rejects invalid keys with a clear message', () => {
  const rows: Array<[string, RegExp]> = [
    ['cookie', /invalid key "cookie": expected one of client-ip, path, route, client-ip-and-path, header:<Name>/],
    ['header:', /header:<Name> needs a header name/],
    ['header:X Api', /header:<Name> needs a header name/],
    ['', /invalid key ""/],
  ];
  for (const [raw, re] of rows) {
    const r = parseKeySpec(raw);
    assert.ok('error' in r, raw);
    assert.match(r.error, re);
  }
});

test('key functions pick the right request facts', () => {
  const ctx = fakeCtx({ ip: '198.51.100.7', path: '/v1/items', routeId: 'items', headers: { 'x-api-key': 'k1' } });
  assert.equal(keyFunction({ kind: 'client-ip' })(ctx), 'i:198.51.100.7');
  assert.equal(keyFunction({ kind: 'path' })(ctx), 'p:/v1/items');
  assert.equal(keyFunction({ kind: 'route' })(ctx), 'r:items');
  assert.equal(keyFunction({ kind: 'client-ip-and-path' })(ctx), 'ip:198.51.100.7 /v1/items');
  assert.equal(keyFunction({ kind: 'header', name: 'x-api-key' })(ctx), 'h:k1');
  assert.equal(keyFunction({ kind: 'global' })(ctx), 'g');
});

test('client-ip keys: IPv6 per /64 by default, IPv4-mapped as IPv4, prefixes configurable (behaviour change, session 13)', () => {
  const rows: [ip: string, prefixes: { v4: number; v6: number } | undefined, ipKey: string][] = [
    ['2001:db8:0:1::a', undefined, 'i:2001:db8:0:1::/64'],
    ['2001:db8:0:1:ffff::1', undefined, 'i:2001:db8:0:1::/64'],
    ['::ffff:198.51.100.7', undefined, 'i:198.51.100.7'],
    ['198.51.100.7', undefined, 'i:198.51.100.7'],
    ['2001:db8:0:1::a', { v4: 32, v6: 128 }, 'i:2001:db8:0:1::a'],
    ['2001:db8:0:1::a', { v4: 32, v6: 48 }, 'i:2001:db8::/48'],
    ['198.51.100.7', { v4: 24, v6: 64 }, 'i:198.51.100.0/24'],
  ];
  for (const [ip, prefixes, want] of rows) {
    const ctx = fakeCtx({ ip, path: '/x' });
    assert.equal(keyFunction({ kind: 'client-ip' }, prefixes)(ctx), want, `${ip} ${JSON.stringify(prefixes)}`);
    assert.equal(keyFunction({ kind: 'client-ip-and-path' }, prefixes)(ctx), `ip:${want.slice(2)} /x`);
  }
});

test('a missing header has its own bucket that no header value can reach', () => {
  const f = keyFunction({ kind: 'header', name: 'x-api-key' });
  const missing = f(fakeCtx());
  const values = ['', 'unknown', '-', 'h-', 'null'].map((v) => f(fakeCtx({ headers: { 'x-api-key': v } })));
  assert.ok(!values.includes(missing));
  assert.equal(new Set(values).size, values.length);
});

test('long values are hashed so stored keys stay small, and stay distinct', () => {
  const f = keyFunction({ kind: 'header', name: 'x-api-key' });
  const a = f(fakeCtx({ headers: { 'x-api-key': 'a'.repeat(8000) } }));
  const b = f(fakeCtx({ headers: { 'x-api-key': 'a'.repeat(7999) + 'b' } }));
  assert.ok(a.length < 64 && b.length < 64, `${a.length} ${b.length}`);
  assert.notEqual(a, b);
  const p = keyFunction({ kind: 'path' })(fakeCtx({ path: '/' + 'x'.repeat(5000) }));
  assert.ok(p.length < 64);
});

test('path keys: spellings the normaliser keeps apart but applications read as one share a bucket (session 14)', () => {
  // each row: spellings as sent -> the key of all of them (after the front door's normalisation)
  const rows: [spellings: string[], key: string][] = [
    [['/x', '/x/', '//x//', '/x/.', '/y/../x/', '/%78', '/%78/'], '/x'],
    [['/login', '/Login', '/LOGIN/', '/l%4Fgin'], '/login'],
    [['/a!b', '/a%21b', '/A%21B/'], '/a!b'],
    [['/a:b@c', '/a%3Ab%40c', '/a%3ab%40c'], '/a:b@c'],
    [['/a%7Cb', '/a|b', '/A%7cB/'], '/a|b'],
    [['/', '//', '/./'], '/'],
    // session 21: the Windows reading (trailing dots and spaces, best-fit forms; not the `:` of a stream)
    [['/caf%C3%A9', '/caf%c3%a9', '/CAF%C3%A9/', '/cafe', '/caf%EF%BD%85', '/cafe.', '/cafe%20'], '/cafe'],
    [['/login.aspx', '/LOGIN.ASPX.', '/login.aspx%20.', '/%EF%BD%8Cogin.aspx'], '/login.aspx'],
    [['/a.b./c', '/a.b/c.'], '/a.b/c'],
    [['/a%2541'], '/a%41'],
    [['/a%20b', '/a%20B/'], '/a%20b'],
    // session 23: an NTFS stream suffix (a `:` and a `$` type), on any route
    [['/logon.aspx::$DATA', '/LOGON.ASPX:$DATA', '/logon.aspx%3A%3A%24DATA', '/logon.aspx:s:$DATA', '/logon.aspx.::$DATA'], '/logon.aspx'],
    [['/d::$INDEX_ALLOCATION/f', '/d:$I30:$INDEX_ALLOCATION/f'], '/d/f'],
  ];
  const f = keyFunction({ kind: 'path' });
  for (const [spellings, key] of rows) {
    for (const sent of spellings) {
      const n = normalizePath(sent);
      assert.ok(n.ok, sent);
      assert.equal(pathKey(n.path), key, sent);
      assert.equal(f(fakeCtx({ path: n.path })), 'p:' + key, sent);
      assert.equal(keyFunction({ kind: 'client-ip-and-path' })(fakeCtx({ ip: '198.51.100.7', path: n.path })), 'ip:198.51.100.7 ' + key, sent);
    }
  }
  // still distinct: other paths, a deeper segment, the query is not part of the path (`/x.` is
  // `/x` since session 21, as Windows reads it; a `:` custom method is not cut)
  const keys = ['/x', '/xy', '/x/y', '/x.y', '/x:y', '/x:$', '/x:$1', '/x$y', '/a%2541', '/aA'].map((p) => pathKey(p));
  assert.equal(new Set(keys).size, keys.length, keys.join(' '));
});

test('a key on a client-identity header warns with its file:line (session 18 audit); other header keys do not', async () => {
  const { loadConfigText } = await import('../../../src/config/load.ts');
  const { formatDiagnostic } = await import('../../../src/config/diagnostics.ts');
  const { pluginValidators } = await import('../../../src/server/validators.ts');
  const text = `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; filters "a" "b" "c" } }
upstreams { upstream "u" { target "127.0.0.1:1" } }
filters {
  filter "a" { type "rate-limit"; max-rps 1; key "header:X-Forwarded-For" }
  filter "b" { type "rate-limit"; max-rps 1; key "header:True-Client-IP" }
  filter "c" { type "rate-limit"; max-rps 1; key "header:X-Api-Key" }
}
rate-limits { default-rps 10; key "header:X-Real-IP" }
`;
  const warnings = loadConfigText(text, { name: 'gw.kdl', validators: pluginValidators }).warnings.filter((w) => w.message.includes('reads the value the upstream gets')).map(formatDiagnostic);
  assert.equal(warnings.length, 3, warnings.join('\n'));
  assert.match(warnings.join('\n'), /filter "a" > key: key "header:x-forwarded-for"/);
  assert.match(warnings.join('\n'), /filter "b" > key: key "header:true-client-ip"/);
  assert.match(warnings.join('\n'), /rate-limits > key: key "header:x-real-ip"/);
  for (const w of warnings) assert.match(w, /gw\.kdl:\d+/, `file:line in ${w}`);
});
