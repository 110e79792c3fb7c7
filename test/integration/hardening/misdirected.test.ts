// Session 12 audit finding, closed in session 13 (docs/tls.md, "SNI and Host"): on a TLS listener a
// request whose Host (or :authority) belongs to another certificate than the one the connection's
// SNI selected gets 421 Misdirected Request (RFC 9110 §15.5.20), unless the served certificate
// covers that Host too (HTTP/2 connection coalescing). Real TLS: openssl-made certificates, node
// https/http2 clients with chosen SNI.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http2 from 'node:http2';
import { h2Request } from '../../helpers/http.ts';
import { readFileSync } from 'node:fs';
import { Pki } from '../../helpers/pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let pki: Pki;
let up: TestUpstream;
let gw: Gateway;
let port: number;
let ca: Buffer;

before(async () => {
  pki = await Pki.create();
  const root = await pki.ca('ca');
  ca = readFileSync(root.cert);
  const www = await root.issue('www', { cn: 'www.example.com', dns: ['www.example.com'] });
  const api = await root.issue('api', { cn: 'api.example.com', dns: ['api.example.com'] });
  const wild = await root.issue('wild', { cn: '*.example.com', dns: ['*.example.com'] });
  const admin = await root.issue('admin', { cn: 'admin.internal.test', dns: ['admin.internal.test'] });
  up = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "https" {
    address "127.0.0.1:0"
    protocol "https"
    tls {
      cert-file "${www.cert}"; key-file "${www.key}"
      sni { hostnames "api.example.com"; cert-file "${api.cert}"; key-file "${api.key}" }
      sni { cert-file "${wild.cert}"; key-file "${wild.key}" }
      sni { cert-file "${admin.cert}"; key-file "${admin.key}" }
    }
  }
}
routes { route "all" { matches { path-prefix "/" }; upstream "backend" } }
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

/** One HTTPS/1.1 request with `sni` as the TLS server name ('' sends none) and `host` as Host. */
function get11(sni: string, host: string): Promise<{ status: number; subject: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: '/x', servername: sni, headers: { host }, ca, checkServerIdentity: () => undefined, agent: false },
      (res) => {
        const subject = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()?.subject ?? '';
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, subject }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function clientErrors(kind: string): Promise<number> {
  return (await gw.metrics.clientErrors.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

test('HTTPS/1.1: a Host of another certificate than the SNI selected gets 421, never the upstream', async () => {
  const n = up.seen.length;
  const before = await clientErrors('misdirected_request');
  const table: [sni: string, host: string, status: number][] = [
    ['api.example.com', 'api.example.com', 200],
    ['api.example.com', 'admin.internal.test', 421],
    ['admin.internal.test', 'api.example.com', 421],
    ['admin.internal.test', 'www.example.com', 421], // the default certificate's name
    ['admin.internal.test', 'ADMIN.internal.test.:443', 200], // normalised Host
    ['api.example.com', 'nobody.claims.this', 200], // no certificate names it: routed as before
    ['api.example.com', '127.0.0.1', 200],
  ];
  for (const [sni, host, status] of table) {
    assert.equal((await get11(sni, host)).status, status, `SNI ${sni}, Host ${host}`);
  }
  assert.equal(await clientErrors('misdirected_request'), before + 3);
  assert.equal(up.seen.length, n + 4, 'only the allowed requests reached the upstream');
});

test('the served certificate covers the Host (wildcard): allowed, as HTTP/2 coalescing needs', async () => {
  // SNI foo.example.com selects the wildcard; api.example.com has its own certificate but the
  // wildcard covers it, so a client may reuse the connection for it
  const r = await get11('foo.example.com', 'api.example.com');
  assert.equal(r.status, 200);
  assert.match(r.subject, /CN=\*\.example\.com/);
  assert.equal((await get11('foo.example.com', 'www.example.com')).status, 200);
  assert.equal((await get11('foo.example.com', 'admin.internal.test')).status, 421);
});

test('no SNI (or an unknown name): the default certificate is the one served, and its names are the allowed ones', async () => {
  const r = await get11('', 'www.example.com');
  assert.equal(r.status, 200);
  assert.match(r.subject, /CN=www\.example\.com/);
  assert.equal((await get11('', 'admin.internal.test')).status, 421);
  assert.equal((await get11('', 'api.example.com')).status, 421);
  assert.equal((await get11('', 'nobody.claims.this')).status, 200);
  assert.equal((await get11('unknown.other', 'admin.internal.test')).status, 421);
});

test('HTTP/2: :authority of another certificate gets 421 on the same session; a covered one is served', async () => {
  const session = http2.connect(`https://127.0.0.1:${port}`, { servername: 'foo.example.com', ca, checkServerIdentity: () => undefined });
  session.on('error', () => undefined);
  const status = async (authority: string) => (await h2Request(session, { ':path': '/h2', ':authority': authority })).status;
  try {
    assert.equal(await status('foo.example.com'), 200);
    assert.equal(await status('api.example.com'), 200); // coalesced: the wildcard covers it
    assert.equal(await status('admin.internal.test'), 421);
    assert.equal(await status('www.example.com'), 200);
  } finally {
    session.close();
  }
});
