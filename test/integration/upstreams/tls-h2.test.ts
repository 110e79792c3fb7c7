// Upstream TLS (SNI, custom CA, mTLS client certificates, insecure-skip-verify) and HTTP/2 to
// upstreams (allowH2 via ALPN) with GOAWAY and stream-reset handling.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import { classifyUpstreamError } from '../../../src/errors/index.ts';
import { attempt, fakeServices } from './helpers.ts';
import { makePki, type Pki } from './pki.ts';
import { closeServer } from '../../helpers/upstream.ts';

let pki: Pki;
let mtlsPort: number;
let mtlsServer: https.Server;
const cleanups: (() => Promise<void> | void)[] = [];

before(async () => {
  pki = makePki();
  mtlsServer = https.createServer(
    { key: pki.read('serverKey'), cert: pki.read('serverCert'), ca: pki.read('ca'), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const sock = req.socket as TLSSocket;
      res.end(JSON.stringify({ client: sock.getPeerCertificate().subject?.CN, sni: (sock as TLSSocket & { servername?: string }).servername }));
    },
  );
  await new Promise<void>((r) => mtlsServer.listen(0, '127.0.0.1', r));
  mtlsPort = (mtlsServer.address() as AddressInfo).port;
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await closeServer(mtlsServer);
  pki.cleanup();
});

function group(port: number, extra: Partial<RawUpstream>): UpstreamGroup {
  const g = new UpstreamGroup({ id: 'tls', config: { id: 'tls', target: [{ address: `127.0.0.1:${port}`, weight: 1 }], ...extra } as RawUpstream, baseDir: pki.dir, services: fakeServices() });
  cleanups.push(() => g.close());
  return g;
}

async function get(g: UpstreamGroup, path = '/'): Promise<{ status: number; body: string }> {
  const { status, text } = await attempt(g, 'GET', path);
  return { status, body: text };
}

const fails = (p: Promise<unknown>) =>
  p.then(
    () => assert.fail('expected the request to fail'),
    (e: unknown) => e,
  );

test('mTLS: CA from ca-cert (relative to the config dir), client certificate presented, SNI sent', async () => {
  const g = group(mtlsPort, { tls: { sni: 'backend.test', 'ca-cert': 'ca.crt', 'client-cert': 'client.crt', 'client-key': 'client.key' } } as Partial<RawUpstream>);
  assert.match(g.origin(g.targets[0]!), /^https:\/\/127\.0\.0\.1:\d+$/);
  const r = await get(g);
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { client: 'sentinel-gateway', sni: 'backend.test' });
});

test('mTLS: a backend that requires client certs rejects the gateway without one', async () => {
  const g = group(mtlsPort, { tls: { sni: 'backend.test', 'ca-cert': 'ca.crt' } } as Partial<RawUpstream>);
  const err = await fails(get(g));
  assert.ok(['tls', 'reset', 'other'].includes(classifyUpstreamError(err).reason), String(err));
});

test('verification: wrong CA fails as a TLS error; insecure-skip-verify accepts it', async () => {
  const strict = group(mtlsPort, { tls: { sni: 'backend.test', 'ca-cert': 'other-ca.crt', 'client-cert': 'client.crt', 'client-key': 'client.key' } } as Partial<RawUpstream>);
  const err = await fails(get(strict));
  assert.equal(classifyUpstreamError(err).reason, 'tls');
  assert.equal(strict.snapshot().targets[0]!.last_error, 'tls');
  const insecure = group(mtlsPort, { tls: { 'insecure-skip-verify': true, 'client-cert': 'client.crt', 'client-key': 'client.key' } } as Partial<RawUpstream>);
  assert.equal((await get(insecure)).status, 200);
});

test('SNI must match the certificate: a wrong name fails verification', async () => {
  const g = group(mtlsPort, { tls: { sni: 'wrong.test', 'ca-cert': 'ca.crt', 'client-cert': 'client.crt', 'client-key': 'client.key' } } as Partial<RawUpstream>);
  const err = await fails(get(g));
  assert.equal(classifyUpstreamError(err).reason, 'tls');
});

test('HTTP/2 to upstreams: negotiated via ALPN, multiplexed; GOAWAY and stream resets do not poison later requests', async () => {
  const sessions = new Set<http2.ServerHttp2Session>();
  let sessionCount = 0;
  const server = http2.createSecureServer({ key: pki.read('serverKey'), cert: pki.read('serverCert'), allowHTTP1: false });
  server.on('session', (s) => {
    sessionCount++;
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const path = headers[':path'];
    if (path === '/reset') {
      stream.on('error', () => undefined); // the server side sees its own reset as a stream error
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (path === '/goaway') {
      stream.respond({ ':status': 200 });
      stream.end('bye');
      stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR);
      return;
    }
    stream.respond({ ':status': 200, 'x-proto': 'h2' });
    stream.end(`h2 ${sessionCount}`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(server, sessions));
  const port = (server.address() as AddressInfo).port;
  const g = group(port, { tls: { sni: 'backend.test', 'ca-cert': 'ca.crt' }, 'http-version': { 'min-version': 1, 'max-version': 2 } } as Partial<RawUpstream>);

  assert.equal((await get(g)).status, 200);
  await new Promise((r) => setTimeout(r, 20));
  const parallel = await Promise.all(Array.from({ length: 10 }, () => get(g)));
  assert.ok(parallel.every((r) => r.status === 200 && r.body.startsWith('h2 ')));
  assert.equal(sessionCount, 1, 'ten concurrent requests share one HTTP/2 session');

  const err = await fails(get(g, '/reset'));
  assert.ok(['reset', 'protocol', 'other'].includes(classifyUpstreamError(err).reason), String(err));
  assert.equal((await get(g)).status, 200, 'a reset stream does not break the session for others');

  // undici fails the request in flight when a GOAWAY arrives (even NO_ERROR after its response);
  // the forwarder retries that as a reset. What must hold: the next requests are not poisoned.
  await get(g, '/goaway').catch((e: unknown) => assert.equal(classifyUpstreamError(e).reason, 'reset'));
  const afterGoaway = await Promise.all(Array.from({ length: 5 }, () => get(g)));
  assert.ok(afterGoaway.every((r) => r.status === 200), 'requests after GOAWAY succeed on a new session');
  assert.ok(sessionCount >= 2, 'a new session was opened after GOAWAY');
});

test('http-version max 1 keeps HTTP/1.1 even when the upstream offers h2', async () => {
  const server = http2.createSecureServer({ key: pki.read('serverKey'), cert: pki.read('serverCert'), allowHTTP1: true }, (req, res) => {
    res.end(req.httpVersion);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => closeServer(server));
  const port = (server.address() as AddressInfo).port;
  const h1 = group(port, { tls: { sni: 'backend.test', 'ca-cert': 'ca.crt' } } as Partial<RawUpstream>);
  assert.equal((await get(h1)).body, '1.1');
  const h2 = group(port, { tls: { sni: 'backend.test', 'ca-cert': 'ca.crt' }, 'http-version': { 'max-version': 2 } } as Partial<RawUpstream>);
  assert.equal((await get(h2)).body, '2.0');
});
