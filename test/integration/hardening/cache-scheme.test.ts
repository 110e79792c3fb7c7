// Session 23 audit probe: the cache key and the listener's scheme. One caching route served on a
// plain and a TLS listener; the upstream answers by the X-Forwarded-Proto the gateway writes (the
// listener's scheme for a direct client), as Rails' force_ssl, Django's SECURE_SSL_REDIRECT and
// most "redirect to HTTPS" middlewares do, and builds absolute links from it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFile } from 'node:fs/promises';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import { Pki } from '../../helpers/pki.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let pki: Pki;
let caPem: Buffer;

before(async () => {
  pki = await Pki.create();
  const ca = await pki.ca('ca');
  caPem = await readFile(ca.cert);
  const leaf = await ca.issue('shop', { cn: 'shop.test', dns: ['shop.test'] });
  up = await startUpstream((req, res) => {
    if (req.headers['x-forwarded-proto'] !== 'https') {
      res.writeHead(301, { location: `https://shop.test${req.url}`, 'cache-control': 'public, max-age=600' });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=600' });
    res.end('<a href="https://shop.test/cart">secure page</a>');
  });
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "https" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "${leaf.cert}"; key-file "${leaf.key}" } }
}
routes { route "shop" { matches { path-prefix "/" }; upstream "app"; cache { enabled #true } } }
upstreams { upstream "app" { target "${up.address}" } }
cache { enabled #true; status-header #true }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await up.close();
  await pki.close();
});

function tlsGet(path: string): Promise<{ status: number; body: string; cacheStatus: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: gw.address('https').port, servername: 'shop.test', headers: { host: 'shop.test' }, ca: caPem, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, cacheStatus: String(res.headers['cache-status'] ?? '') }));
    });
    req.on('error', reject);
  });
}

test('an answer stored for the plain listener is never served on the TLS listener, nor the other way', async () => {
  // a plain-HTTP client (anyone: an attacker, a stale bookmark) asks first and gets the redirect
  const plain = await rawRequest(gw.address('http').port, http1('GET', '/checkout', ['Host: shop.test', 'Connection: close']));
  assert.equal(plain.status, 301);
  // an HTTPS client must get the page, not the stored redirect to itself (a redirect loop)
  const secure = await tlsGet('/checkout');
  assert.equal(secure.status, 200, `HTTPS got ${secure.status} (${secure.cacheStatus})`);
  assert.match(secure.body, /secure page/);
  // and the other way: the HTTPS answer stored first is not served to plain HTTP
  assert.equal((await tlsGet('/account')).status, 200);
  const plain2 = await rawRequest(gw.address('http').port, http1('GET', '/account', ['Host: shop.test', 'Connection: close']));
  assert.equal(plain2.status, 301, `plain HTTP got ${plain2.status} (${plain2.headers['cache-status']})`);
  // each scheme still caches
  assert.match((await tlsGet('/checkout')).cacheStatus, /hit/);
  assert.match((await rawRequest(gw.address('http').port, http1('GET', '/checkout', ['Host: shop.test', 'Connection: close']))).headers['cache-status'] ?? '', /hit/);
});
