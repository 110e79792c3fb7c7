// Session 20 audit, second part (docs/security.md, "Session 20 audit"): the client address behind
// trusted proxies written in IPv6 spellings (zone ids, brackets, IPv4-mapped, mixed case, empty
// elements, an obfuscated trusted address), and `Range`/HEAD against cache entries. Raw requests
// to a real gateway on loopback (peer 127.0.0.1, a trusted proxy) and a real upstream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawExchange, rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

const BODY = 'full body of the entry';
let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  // cacheable, and honours `Range: bytes=a-b` with a 206 as most origins do
  up = await startUpstream((req, res) => {
    const r = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
    const body = r ? BODY.slice(Number(r[1]), Number(r[2]) + 1) : BODY;
    const headers = { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60', 'content-length': Buffer.byteLength(body), 'accept-ranges': 'bytes' };
    res.writeHead(r ? 206 : 200, r ? { ...headers, 'content-range': `bytes ${r[1]}-${r[2]}/${BODY.length}` } : headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  gw = (
    await gatewayFrom(`
system { trusted-proxies "127.0.0.1" "10.0.0.0/8" "fd00::/8" }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "allow" { matches { path-prefix "/allow" }; upstream "app"; allow-from "203.0.113.0/24" "2001:db8::/32" }
  route "limited" { matches { path-prefix "/rl" }; upstream "app"; filters "per-client" }
  route "cached" { matches { path-prefix "/c/" }; upstream "app"; cache { enabled #true } }
  route "main" { matches { path-prefix "/" }; upstream "app" }
}
upstreams { upstream "app" { target "${up.address}" } }
filters { filter "per-client" { type "rate-limit"; max-rps 0.01; burst 0; key "client-ip" } }
cache { enabled #true; status-header #true }
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

/** One request through the trusted 127.0.0.1 peer with these X-Forwarded-For lines. */
const via = (path: string, ...xff: string[]) => rawRequest(port, http1('GET', path, ['Host: a', ...xff.map((v) => `X-Forwarded-For: ${v}`), 'Connection: close']));

test('X-Forwarded-For entries in IPv6 spellings resolve to the address, never past a trusted hop a client wrote', async () => {
  // [X-Forwarded-For lines, the resolved client (X-Real-IP set by the gateway)]
  const table: [string[], string][] = [
    [['fe80::1%eth0'], 'fe80::1%eth0'],
    [['[fe80::1%eth0]:443'], 'fe80::1%eth0'],
    // trusted hops in other spellings are skipped: mapped, mapped in hex and upper case, bracketed with a port, a zone id, uncompressed
    [['203.0.113.5, ::ffff:127.0.0.1'], '203.0.113.5'],
    [['203.0.113.5, ::FFFF:7F00:1'], '203.0.113.5'],
    [['203.0.113.5, ::ffff:7f00:1'], '203.0.113.5'], // before the fix: resolved to `::ffff:7f00:1`, the proxy
    [['203.0.113.5, [::ffff:10.0.0.1]:8080'], '203.0.113.5'],
    [['203.0.113.5, FD00::1%eth0'], '203.0.113.5'],
    [['203.0.113.5, 0:0:0:0:0:ffff:10.0.0.1'], '203.0.113.5'],
    // spaces, tabs and empty elements, and the header sent twice (one list)
    [[' 203.0.113.5 ,, ,\t10.0.0.1 ,'], '203.0.113.5'],
    [['203.0.113.5', '10.0.0.1'], '203.0.113.5'],
    // an obfuscated trusted address (octal-looking, short form) or a zone id with a space or quote
    // is not an address: the walk ends at the proxy that sent it, never skips to the client's text
    [['203.0.113.5, 010.0.0.1'], '127.0.0.1'],
    [['203.0.113.5, 10.1'], '127.0.0.1'],
    [['203.0.113.5, fe80::1%a b'], '127.0.0.1'],
    [['203.0.113.5, fe80::1%eth0"'], '127.0.0.1'],
    [['203.0.113.5, [fe80::1%eth0]x'], '127.0.0.1'],
  ];
  for (const [xff, want] of table) {
    const r = await via('/who', ...xff);
    assert.equal(r.status, 200, xff.join(' | '));
    assert.equal(up.seen.at(-1)!.headers['x-real-ip'], want, xff.join(' | '));
  }
});

test('allow-from compares the resolved address whatever its spelling', async () => {
  const table: [string, number][] = [
    ['203.0.113.9', 200],
    ['::FFFF:203.0.113.9', 200],
    ['::ffff:cb00:7109', 200], // before the fix: 403 (`::ffff:` cut, `cb00:7109` no address)
    ['[2001:DB8::1%x]:80', 200],
    ['203.0.113.9, 10.0.0.1', 200],
    ['fe80::1%eth0', 403],
    ['198.51.100.1', 403],
    ['203.0.113.9, 010.0.0.1', 403], // resolves to the proxy, 127.0.0.1
    ['203.0.113.9, ::ffff:198.51.100.1', 403],
  ];
  for (const [xff, want] of table) assert.equal((await via('/allow', xff)).status, want, xff);
});

test('held: client-ip rate-limit keys do not split on zone ids, brackets or the mapped spelling', async () => {
  assert.equal((await via('/rl', 'fe80::1%a')).status, 200);
  assert.equal((await via('/rl', 'fe80::2%b')).status, 429, 'another zone id, same /64');
  assert.equal((await via('/rl', '[FE80::3%c]:1')).status, 429, 'bracketed, upper case');
  assert.equal((await via('/rl', '203.0.113.77')).status, 200);
  assert.equal((await via('/rl', '::FFFF:CB00:714D')).status, 429, '203.0.113.77 mapped, in hex');
  assert.equal((await via('/rl', '[::ffff:203.0.113.77]:9')).status, 429);
});

const send = (method: string, target: string, extra: string[] = []) => rawExchange(port, http1(method, target, ['Host: a', ...extra, 'Connection: close']));
const ranged = () => up.seen.filter((s) => s.headers.range !== undefined).length;

test('held: Range on a HEAD hit and on a GET after a HEAD miss goes to the upstream; no 206 or bodiless entry is stored', async () => {
  // HEAD miss (never stored), then a Range GET: forwarded, the 206 relayed and not stored
  assert.match((await send('HEAD', '/c/h')).text, /^HTTP\/1\.1 200/);
  let before = ranged();
  const part = await rawRequest(port, http1('GET', '/c/h', ['Host: a', 'Range: bytes=0-3', 'Connection: close']));
  assert.equal(part.status, 206);
  assert.equal(part.body, 'full');
  assert.match(String(part.headers['cache-status']), /fwd=bypass; detail=range/);
  assert.equal(ranged(), before + 1, 'the upstream answered the Range');
  // the next GET is a miss that stores the whole body, then a hit
  const full = await rawRequest(port, http1('GET', '/c/h', ['Host: a', 'Connection: close']));
  assert.equal(full.body, BODY);
  assert.match(String(full.headers['cache-status']), /fwd=uri-miss; fwd-status=200; stored/);
  // Range on a HEAD (the entry is fresh): bypassed, never a HEAD hit that ignores the Range
  before = ranged();
  const headRange = await send('HEAD', '/c/h', ['Range: bytes=0-3']);
  assert.match(headRange.text, /^HTTP\/1\.1 206/);
  assert.match(headRange.text, /detail=range/);
  assert.equal(ranged(), before + 1);
  // a HEAD that forces revalidation (max-age=0) of the GET entry gets a 200 upstream: not stored as the GET's entry
  assert.doesNotMatch((await send('HEAD', '/c/h', ['Cache-Control: max-age=0'])).text, /stored/);
  const hit = await rawRequest(port, http1('GET', '/c/h', ['Host: a', 'Connection: close']));
  assert.match(String(hit.headers['cache-status']), /hit/);
  assert.equal(hit.body, BODY, 'the GET entry keeps its body');
});
