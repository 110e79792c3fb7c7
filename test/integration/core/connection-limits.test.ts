// Listener limits on every listener kind (issue 17 item 4): HTTPS (HTTP/1.1 and h2 by ALPN) and
// h2c apply the same header timeout, keep-alive timeout and header size limit as plain HTTP;
// HTTP/2 sessions have an idle timeout; one client cannot hold every connection slot.
// Timing assertions are upper bounds only (a close must happen within a generous bound, far
// below the 60-300 s Node defaults the listeners had), never speed checks. The bounds count
// event-loop time (until.ts turningTimeout; the gateway runs in this process), so a loaded
// machine that leaves the process unscheduled cannot run them out before the gateway's own
// timers fire; an idle loop counts wall time, so a close that never comes still fails.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { Pki } from '../../helpers/pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { holdOpen, rawExchange, type RawReply } from '../../helpers/raw-http.ts';
import { h2Request } from '../../helpers/http.ts';
import { orAfterTurning, turningTimeout } from '../../helpers/until.ts';

const HEADER_TIMEOUT_S = 1;
const KEEPALIVE_S = 1;
/** a close must come within this much event-loop time (Node's own defaults are 60 s and more) */
const BOUND_MS = 10_000;

const config = (dir: string, upstream: string, extraLimits = '', extraSystem = '') => `
system { graceful-shutdown-timeout-secs 1; ${extraSystem} }
listeners {
  listener "http" { address "127.0.0.1:0"; request-timeout-secs 3; keepalive-timeout-secs ${KEEPALIVE_S}; keepalive-max-requests 2 }
  listener "https" {
    address "127.0.0.1:0"
    protocol "https"
    request-timeout-secs 3
    keepalive-max-requests 2
    keepalive-timeout-secs ${KEEPALIVE_S}
    tls { cert-file "${dir}/site.crt"; key-file "${dir}/site.key" }
  }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2"; request-timeout-secs 3; keepalive-timeout-secs ${KEEPALIVE_S} }
}
limits { client-header-timeout-secs ${HEADER_TIMEOUT_S}; max-header-size-bytes 8192; ${extraLimits} }
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${upstream}" } }
`;

let pki: Pki;
let up: TestUpstream;

before(async () => {
  pki = await Pki.create();
  const ca = await pki.ca('ca');
  await ca.issue('site', { cn: 'localhost', dns: ['localhost'], ip: ['127.0.0.1'] });
  up = await startUpstream();
});
after(async () => {
  await up.close();
  await pki.close();
});

function h2connect(port: number, tls: boolean): http2.ClientHttp2Session {
  return tls ? http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false }) : http2.connect(`http://127.0.0.1:${port}`);
}

describe('listener limits on HTTPS and h2c', () => {
  let gw: Gateway;
  before(async () => {
    gw = await startGateway({ configText: config(pki.dir, up.address), logLevel: 'silent' });
  });
  after(async () => {
    await gw.close();
  });

  test('slowloris over TLS (HTTP/1.1) is closed by the header timeout', async () => {
    const r = await holdOpen(gw.address('https').port, { tls: true, send: 'GET / HTTP/1.1\r\nHost: a\r\nX-Drip: ', dripMs: 200, maxWaitMs: BOUND_MS });
    assert.notEqual(r.closedAfterMs, undefined, `still open after ${BOUND_MS} ms`);
    assert.doesNotMatch(r.text, /HTTP\/1\.1 200/);
  });

  test('slowloris over plain HTTP is closed the same way', async () => {
    const r = await holdOpen(gw.address('http').port, { send: 'GET / HTTP/1.1\r\nHost: a\r\nX-Drip: ', dripMs: 200, maxWaitMs: BOUND_MS });
    assert.notEqual(r.closedAfterMs, undefined, `still open after ${BOUND_MS} ms`);
  });

  test('an idle keep-alive connection over TLS is closed after keepalive-timeout-secs', async () => {
    const r = await holdOpen(gw.address('https').port, { tls: true, send: 'GET /idle HTTP/1.1\r\nHost: a\r\n\r\n', maxWaitMs: BOUND_MS });
    assert.match(r.text, /^HTTP\/1\.1 200 /, 'the request was answered first');
    assert.match(r.text, /keep-alive/i);
    assert.notEqual(r.closedAfterMs, undefined, `idle connection still open after ${BOUND_MS} ms`);
  });

  test('keepalive-max-requests closes the connection after that many requests, HTTP and HTTPS/1.1', async () => {
    const three = 'GET /ka1 HTTP/1.1\r\nHost: a\r\n\r\nGET /ka2 HTTP/1.1\r\nHost: a\r\n\r\nGET /ka3 HTTP/1.1\r\nHost: a\r\n\r\n';
    for (const [name, tls] of [['http', false], ['https', true]] as const) {
      const r = await rawExchange(gw.address(name).port, three, { tls, responses: 4, waitMs: BOUND_MS });
      // the second answer says close; a third request pipelined behind it is not served (Node: 503)
      assert.deepEqual(r.statuses.slice(0, 2), [200, 200], `${name}: ${r.text}`);
      assert.ok(r.statuses[2] === undefined || r.statuses[2] === 503, `${name}: ${r.text}`);
      assert.equal(r.closed, true, `${name}: closed after the second answer`);
      assert.match(r.text.split('HTTP/1.1 200')[2] ?? '', /connection: close/i);
    }
    assert.equal(up.seen.filter((x) => x.url === '/ka3').length, 0);
  });

  test('an idle h2c session is closed after its last stream (GOAWAY)', async () => {
    const session = h2connect(gw.address('h2c').port, false);
    const closed = new Promise<number>((resolve) => session.once('close', () => resolve(performance.now())));
    let goaway = false;
    session.on('goaway', () => (goaway = true));
    session.on('error', () => undefined);
    const r = await h2Request(session, { ':path': '/h2c-idle' });
    assert.equal(r.status, 200);
    const t = await orAfterTurning(closed, BOUND_MS, undefined);
    assert.notEqual(t, undefined, `h2c session still open after ${BOUND_MS} ms`);
    assert.equal(goaway, true, 'closed with a GOAWAY');
    assert.match(await gw.metrics.render(), /sentinel_connections_closed_total\{listener="h2c",reason="h2_idle"\} [1-9]/);
  });

  test('an h2 session over TLS that never sends a request is closed', async () => {
    const session = h2connect(gw.address('https').port, true);
    session.on('error', () => undefined);
    const closed = await orAfterTurning(new Promise<boolean>((resolve) => session.once('close', () => resolve(true))), BOUND_MS, false);
    session.destroy();
    assert.equal(closed, true, `h2 session still open after ${BOUND_MS} ms`);
  });

  test('a 9,000-byte header: 431 over HTTPS/1.1 and plain HTTP, never 200 over h2c or h2', async () => {
    const big = 'a'.repeat(9000);
    for (const [name, tls] of [['https', true], ['http', false]] as const) {
      const r = await rawExchange(gw.address(name).port, `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${big}\r\nConnection: close\r\n\r\n`, { tls });
      assert.equal(r.statuses[0], 431, `${name}: ${r.text.slice(0, 200)}`);
    }
    for (const [name, tls] of [['h2c', false], ['https', true]] as const) {
      const session = h2connect(gw.address(name).port, tls);
      session.on('error', () => undefined);
      const r = await h2Request(session, { ':path': '/big', 'x-big': big });
      session.destroy();
      assert.ok(r.status === undefined || r.status === 431, `${name} h2: ${JSON.stringify(r)}`);
    }
    // 15 KB over HTTPS/1.1 (the reported case) as well
    const r = await rawExchange(gw.address('https').port, `GET /big HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(15_000)}\r\nConnection: close\r\n\r\n`, { tls: true });
    assert.equal(r.statuses[0], 431);
    assert.equal(up.seen.filter((s) => s.url === '/big').length, 0, 'nothing oversized reached the upstream');
  });

  test('an h2c request whose body never finishes is reset after request-timeout-secs', async () => {
    const session = h2connect(gw.address('h2c').port, false);
    session.on('error', () => undefined);
    const s = session.request({ ':path': '/slow-body', ':method': 'POST', 'content-length': '10' });
    s.on('error', () => undefined);
    s.on('response', () => undefined);
    s.write('hello');
    const closed = await orAfterTurning(new Promise<boolean>((resolve) => s.once('close', () => resolve(true))), BOUND_MS, false);
    session.destroy();
    assert.equal(closed, true, `stream still open after ${BOUND_MS} ms`);
  });
});

/**
 * A request on a new connection, repeated until one is answered or BOUND_MS of event-loop time ran
 * out: the gateway frees a client's slot when its own socket closes, which comes after the client's close.
 */
async function untilAnswered(port: number, request: string): Promise<RawReply> {
  let expired = false;
  const cancel = turningTimeout(BOUND_MS, () => (expired = true));
  try {
    for (;;) {
      const r = await rawExchange(port, request, { waitMs: BOUND_MS });
      if (r.statuses.length > 0 || expired) return r;
      await new Promise((res) => setTimeout(res, 50));
    }
  } finally {
    cancel();
  }
}

describe('connection caps', () => {
  test('max-connections-per-client: one client cannot hold every slot; others still connect', async () => {
    const gw = await startGateway({ configText: config(pki.dir, up.address, 'max-connections-per-client 3'), logLevel: 'silent' });
    const sockets: net.Socket[] = [];
    try {
      const port = gw.address('http').port;
      const open = () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1', () => resolve(s));
          s.on('error', reject);
        });
      for (let i = 0; i < 3; i++) sockets.push(await open());
      // the fourth from the same address is closed on arrival, before any byte is answered
      const r = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { waitMs: BOUND_MS });
      assert.equal(r.closed, true);
      assert.deepEqual(r.statuses, []);
      // the cap counts across listeners (same client)
      const tlsTry = await rawExchange(gw.address('https').port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { tls: true, waitMs: BOUND_MS }).catch((err: Error) => ({ closed: true, statuses: [] as number[], err }));
      assert.equal(tlsTry.closed, true);
      assert.deepEqual(tlsTry.statuses, []);
      const metrics = await gw.metrics.render();
      assert.match(metrics, /sentinel_connections_rejected_total\{listener="http",reason="max_connections_per_client"\} [1-9]/);
      // a held slot given back is usable again
      sockets[0]!.destroy();
      const ok = await untilAnswered(port, 'GET /again HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
      assert.equal(ok.statuses[0], 200, ok.text);
    } finally {
      for (const s of sockets) s.destroy();
      await gw.close();
    }
  });

  for (const overTls of [false, true]) {
    const kind = overTls ? 'a TLS peer that chose h2 (ALPN)' : 'an h2c peer';
    test(`${kind} that never ends its side after the idle GOAWAY does not keep its connection (nor its slot)`, async () => {
      const gw = await startGateway({ configText: config(pki.dir, up.address, 'max-connections-per-client 1'), logLevel: 'silent' });
      // allowHalfOpen: the gateway's FIN does not end this side; it sends the preface and SETTINGS, then nothing
      const peer: net.Socket = overTls
        ? tls.connect({ socket: net.connect({ port: gw.address('https').port, host: '127.0.0.1', allowHalfOpen: true }), ALPNProtocols: ['h2'], rejectUnauthorized: false })
        : net.connect({ port: gw.address('h2c').port, host: '127.0.0.1', allowHalfOpen: true });
      peer.on('error', () => undefined);
      try {
        const gatewayEnded = orAfterTurning(new Promise<boolean>((r) => peer.once('end', () => r(true))), BOUND_MS, false);
        peer.on('data', () => undefined);
        if (overTls) {
          await once(peer, 'secureConnect');
          assert.equal((peer as tls.TLSSocket).alpnProtocol, 'h2');
        }
        peer.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]));
        assert.equal(await gatewayEnded, true, 'GOAWAY and FIN after the idle timeout');
        // The peer still holds its side open. The gateway's socket must go all the same: the
        // client's one slot becomes free (the cap counts across listeners).
        const ok = await untilAnswered(gw.address('http').port, 'GET /after-half-open HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
        assert.equal(ok.statuses[0], 200, `the slot is still held: ${ok.text}`);
      } finally {
        peer.destroy();
        await gw.close();
      }
    });
  }

  test('trusted proxies are exempt from the per-client cap (their clients share the address)', async () => {
    const gw = await startGateway({ configText: config(pki.dir, up.address, 'max-connections-per-client 2', 'trusted-proxies "127.0.0.1"'), logLevel: 'silent' });
    const sockets: net.Socket[] = [];
    try {
      const port = gw.address('http').port;
      for (let i = 0; i < 3; i++) sockets.push(await new Promise<net.Socket>((resolve) => { const s = net.connect(port, '127.0.0.1', () => resolve(s)); }));
      const r = await rawExchange(port, 'GET /via-proxy HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n', { waitMs: BOUND_MS });
      assert.equal(r.statuses[0], 200, r.text);
    } finally {
      for (const s of sockets) s.destroy();
      await gw.close();
    }
  });

  test('max-total-connections caps every listener together', async () => {
    const gw = await startGateway({ configText: config(pki.dir, up.address, 'max-total-connections 2'), logLevel: 'silent' });
    const sockets: net.Socket[] = [];
    try {
      for (const name of ['http', 'h2c']) {
        const port = gw.address(name).port;
        sockets.push(await new Promise<net.Socket>((resolve) => { const s = net.connect(port, '127.0.0.1', () => resolve(s)); }));
      }
      const r = await rawExchange(gw.address('http').port, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n', { waitMs: BOUND_MS });
      assert.equal(r.closed, true);
      assert.deepEqual(r.statuses, []);
      assert.match(await gw.metrics.render(), /sentinel_connections_rejected_total\{listener="http",reason="max_total_connections"\} [1-9]/);
    } finally {
      for (const s of sockets) s.destroy();
      await gw.close();
    }
  });
});
