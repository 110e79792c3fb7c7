// Cache poisoning and deception probes (session 17 audit, docs/security.md "Cache and open findings
// (session 17 audit)"): raw requests to a real gateway with a caching route, an upstream that
// reflects what it received into a cacheable answer. Each probe sends the attacker's request, then
// a victim's plain one: the victim must get an answer for its own request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;
let trusted: Gateway;
let trustedPort: number;
const counts = new Map<string, number>();

before(async () => {
  // reflects what an application builds links and content from, cacheable for a minute
  up = await startUpstream((req, res) => {
    const h = req.headers;
    const q = new URLSearchParams(req.url!.split('?')[1] ?? '');
    const body = JSON.stringify({ url: req.url, host: h.host, xfh: h['x-forwarded-host'], xfp: h['x-forwarded-proto'], fwd: h.forwarded, xou: h['x-original-url'], xfpre: h['x-forwarded-prefix'], xoh: h['x-original-host'], xff: h['x-forwarded-for'], last: q.getAll('p').at(-1) ?? null, first: q.get('p') });
    const cc = req.url!.startsWith('/short') ? 'public, max-age=1' : 'public, max-age=60';
    const n = (counts.get(req.url!) ?? 0) + 1;
    counts.set(req.url!, n);
    // a dynamic page (the application ignores the suffix: /account.css is /account), personal per cookie
    if (req.url!.startsWith('/account')) {
      const who = `user=${h.cookie ?? h.authorization ?? 'anonymous'} n=${n}`;
      const extra: Record<string, string> = req.url!.includes('setcookie') ? { 'set-cookie': 'sid=victim' } : req.url!.includes('private') ? { 'cache-control': 'private, max-age=60' } : req.url!.includes('varystar') ? { vary: '*', 'cache-control': 'max-age=60' } : {};
      res.writeHead(200, { 'content-type': 'text/plain', ...extra });
      res.end(who);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': cc, 'content-length': Buffer.byteLength(body), etag: '"v1"' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  const kdl = (extra: string) => `
system { graceful-shutdown-timeout-secs 1; ${extra} }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend"; cache { enabled #true } } }
upstreams { upstream "backend" { target "${up.address}" } }
cache { enabled #true; status-header #true }
`;
  gw = (await gatewayFrom(kdl(''))).gw;
  port = gw.address('http').port;
  // a proxy that writes these itself (session 22: only listed names are kept from a trusted proxy)
  trusted = (await gatewayFrom(kdl('trusted-proxies "127.0.0.0/8"; trusted-proxy-headers "x-forwarded-host" "x-forwarded-proto" "forwarded" "x-forwarded-prefix" "x-original-host"'))).gw;
  trustedPort = trusted.address('http').port;
});

after(async () => {
  await gw?.close();
  await trusted?.close();
  await up?.close();
});

const get = (p: number, target: string, headers: string[] = [], method = 'GET') => rawRequest(p, http1(method, target, ['Host: shop.example', ...headers, 'Connection: close']));
const json = (body: string) => JSON.parse(body) as Record<string, unknown>;

test('a repeated query parameter in another order is another key (PHP, Rails, Django read the last value, others the first)', async () => {
  const attack = await get(port, '/d?p=evil&p=good');
  assert.equal(json(attack.body).first, 'evil');
  const victim = await get(port, '/d?p=good&p=evil');
  assert.equal(json(victim.body).first, 'good', `the victim's own answer (${victim.headers['cache-status']})`);
  assert.equal(json(victim.body).last, 'evil');
  // other parameters in any order still share one entry
  await get(port, '/o?a=1&b=2');
  assert.match((await get(port, '/o?b=2&a=1')).headers['cache-status'] ?? '', /hit/);
});

test('behind trusted proxies, a forwarded X-Forwarded-Host / -Proto / Forwarded host is keyed: its answer is not served to other clients', async () => {
  for (const [i, h] of [['X-Forwarded-Host: evil.example'], ['X-Forwarded-Proto: http', 'X-Forwarded-Host: evil.example'], ['Forwarded: for=1.2.3.4;host=evil.example;proto=http'], ['X-Forwarded-Prefix: /evil'], ['X-Original-Host: evil.example']].entries()) {
    const target = `/t${i}`;
    const attack = await get(trustedPort, target, h);
    assert.match(attack.body, /evil/, 'the upstream got the forwarded value');
    const victim = await get(trustedPort, target);
    assert.doesNotMatch(victim.body, /evil/, `${h.join(', ')}: ${victim.body} (${victim.headers['cache-status']})`);
    assert.match((await get(trustedPort, target, h)).headers['cache-status'] ?? '', /hit/, 'the forwarded variant is still cached');
  }
  // Forwarded for= differs per client: not keyed
  await get(trustedPort, '/f', ['Forwarded: for=1.2.3.4;proto=https']);
  assert.match((await get(trustedPort, '/f', ['Forwarded: for=5.6.7.8;proto=https'])).headers['cache-status'] ?? '', /hit/);
});

test('from an untrusted client the identity headers and URL overrides never reach the upstream; Host case and default port share the key', async () => {
  const u = json((await get(port, '/u', ['X-Forwarded-Host: evil.example', 'X-Original-URL: /admin', 'X-Rewrite-URL: /admin', 'Forwarded: host=evil', 'X-Forwarded-Proto: gopher'])).body);
  assert.deepEqual([u.xfh, u.xfp, u.fwd, u.xou, u.url], ['shop.example', 'http', undefined, undefined, '/u']);
  const v = await get(port, '/u');
  assert.doesNotMatch(v.body, /evil|admin|gopher/);
  await rawRequest(port, http1('GET', '/hp', ['Host: SHOP.example:80', 'Connection: close']));
  assert.match((await get(port, '/hp')).headers['cache-status'] ?? '', /hit/);
  assert.match((await get(port, 'http://shop.example/hp')).headers['cache-status'] ?? '', /hit/, 'absolute-form');
  const other = await rawRequest(port, http1('GET', '/hp', ['Host: shop.example:8080', 'Connection: close']));
  assert.equal(json(other.body).host, 'shop.example:8080', `another port is another key (${other.headers['cache-status']})`);
  assert.doesNotMatch((await get(port, '/hp')).body, /8080/, 'and is not served for the default port');
});

test('web cache deception and personal answers: nothing personal is stored or served to another client (held)', async () => {
  // the application ignores the suffix; no Cache-Control; a logged-in user's request carries a Cookie
  for (const target of ['/account.css', '/account/x.css', '/account/profile.js?v=1']) {
    const victim = await get(port, target, ['Cookie: sid=victim']);
    assert.match(victim.body, /sid=victim/);
    const attacker = await get(port, target);
    assert.match(attacker.body, /anonymous/, `${target}: ${attacker.body} (${attacker.headers['cache-status']})`);
  }
  // ;-parameters and encoded slashes never reach the cache or the upstream
  for (const target of ['/account/..;/x.css', '/account;x.css', '/account%2f.css', '/account%2F..%2Fx.css', '/account%5cx.css']) {
    assert.equal((await get(port, target, ['Cookie: sid=victim'])).status, 400, target);
  }
  // Set-Cookie, an Authorization request, private, Vary: * (each anonymous, heuristically cacheable)
  const cases: [string, string[]][] = [['/account-setcookie', []], ['/account-auth', ['Authorization: Bearer victim']], ['/account-private', []], ['/account-varystar', []]];
  for (const [target, h] of cases) {
    const first = await get(port, target, h);
    const second = await get(port, target);
    assert.doesNotMatch(second.headers['cache-status'] ?? '', /; hit/, `${target}: ${first.body} then ${second.body}`);
  }
});

test('Range, conditionals and PURGE against a cached entry (held)', async () => {
  await get(port, '/r');
  const range = await get(port, '/r', ['Range: bytes=0-3']);
  assert.match(range.headers['cache-status'] ?? '', /bypass; detail=range/, 'a Range request goes upstream (no slicing of stored entries)');
  const inm = await get(port, '/r', ['If-None-Match: "v1"']);
  assert.equal(inm.status, 304);
  const other = await get(port, '/r', ['If-None-Match: "v0"']);
  assert.equal(other.status, 200, 'another validator gets the stored body');
  // PURGE from an address outside purge-allow (the default: loopback 127.0.0.1 and ::1 only)
  const outside = await new Promise<number>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, localAddress: '127.0.0.2' }, () => s.end('PURGE /r HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: close\r\n\r\n'));
    let text = '';
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
    s.on('end', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)));
    s.on('error', reject);
  });
  assert.equal(outside, 403, 'X-Forwarded-For from an untrusted peer does not make it loopback');
  assert.match((await get(port, '/r')).headers['cache-status'] ?? '', /hit/, 'still cached');
});
