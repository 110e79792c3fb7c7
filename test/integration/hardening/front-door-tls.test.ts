// The front door on a TLS listener (HTTP/1.1 by ALPN and HTTP/2): the same normalisation, the
// default port 443, and the parser errors answered by the gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { Pki } from '../../helpers/pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawExchange } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let pki: Pki;
let up: TestUpstream;
let gw: Gateway;
let port: number;

before(async () => {
  pki = await Pki.create();
  const ca = await pki.ca('ca');
  const leaf = await ca.issue('site', { cn: 'public.example.com', dns: ['public.example.com', 'internal.example.com'] });
  up = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "https" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "${leaf.cert}"; key-file "${leaf.key}" } } }
routes {
  route "internal" { priority "high"; matches { host "internal.example.com"; path-prefix "/" }; builtin-handler "not-found" }
  route "admin" { priority "high"; matches { path-prefix "/admin" }; builtin-handler "not-found" }
  route "fallback" { priority "low"; matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "${up.address}" } }
`)
  ).gw;
  port = gw.address('https').port;
});

after(async () => {
  await gw.close();
  await up.close();
  await pki.close();
});

const over11 = (bytes: string) => rawExchange(port, bytes, { tls: true });

test('HTTPS/1.1: unknown method 501 with the JSON body; path and Host spellings normalised', async () => {
  const n = up.seen.length;
  const cust = await over11('CUST /x HTTP/1.1\r\nHost: public.example.com\r\n\r\n');
  assert.deepEqual(cust.statuses, [501]);
  assert.match(cust.text, /\{"error":"Not Implemented[^"]*","status":501,"request_id":"[^"]+"\}/);
  for (const target of ['/%61dmin', '//admin', '/x/../admin']) {
    assert.deepEqual((await over11(`GET ${target} HTTP/1.1\r\nHost: public.example.com\r\nConnection: close\r\n\r\n`)).statuses, [404], target);
  }
  assert.deepEqual((await over11('GET /admin%2f HTTP/1.1\r\nHost: public.example.com\r\nConnection: close\r\n\r\n')).statuses, [400]);
  // :443 is the default port on a TLS listener
  assert.deepEqual((await over11('GET /x HTTP/1.1\r\nHost: internal.example.com.:443\r\nConnection: close\r\n\r\n')).statuses, [404]);
  assert.deepEqual((await over11('GET https://internal.example.com/x HTTP/1.1\r\nHost: public.example.com\r\nConnection: close\r\n\r\n')).statuses, [404]);
  assert.deepEqual((await over11('OPTIONS * HTTP/1.1\r\nHost: public.example.com\r\nConnection: close\r\n\r\n')).statuses, [200]);
  assert.equal(up.seen.length, n, 'nothing reached the upstream');
});

test('HTTP/2 over TLS: :path normalised, :authority normalised', async () => {
  const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, servername: 'public.example.com' });
  const ask = (headers: http2.OutgoingHttpHeaders) =>
    new Promise<number>((resolve, reject) => {
      const req = session.request(headers);
      let status = 0;
      req.on('response', (h) => (status = Number(h[':status'])));
      req.resume();
      req.on('end', () => resolve(status));
      req.on('error', reject);
      req.end();
    });
  try {
    const n = up.seen.length;
    assert.equal(await ask({ ':path': '/x/../admin', ':authority': 'public.example.com' }), 404);
    assert.equal(await ask({ ':path': '/%2e/admin', ':authority': 'public.example.com' }), 404);
    assert.equal(await ask({ ':path': '/admin;x', ':authority': 'public.example.com' }), 400);
    assert.equal(await ask({ ':path': '/x', ':authority': 'Internal.Example.com:443' }), 404);
    assert.equal(up.seen.length, n);
    assert.equal(await ask({ ':path': '//pub/./lic', ':authority': 'public.example.com:443' }), 200);
    assert.equal(up.seen.at(-1)!.url, '/pub/lic');
    assert.equal(up.seen.at(-1)!.headers.host, 'public.example.com');
  } finally {
    session.close();
  }
});
