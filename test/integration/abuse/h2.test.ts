// HTTP/2 abuse against an h2c and a TLS (ALPN h2) listener (issue #17 item 18a): rapid reset
// (CVE-2023-44487), SETTINGS flood, PING flood, CONTINUATION flood (CVE-2024-27316). Each abuse
// is a bounded number of raw frames; the gateway must close that session, keep its memory
// bounded and answer a normal request afterwards.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { Pki } from '../../helpers/pki.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { HTTP2_ABUSE_LIMITS } from '../../../src/server/http2-abuse.ts';
import { h2Request } from '../../helpers/http.ts';
import { Flag, FrameType, frame, getRequestBlock, openRaw, ping, rstStream, settings, type RawSession } from './h2-frames.ts';

let pki: Pki;
let up: TestUpstream;
let gw: Gateway;
const ENHANCE_YOUR_CALM = 0xb;
/** generous: the in-process gateway, upstream and client share one heap */
const HEAP_BOUND = 64 * 1024 * 1024;
const CLOSE_DEADLINE_MS = 15_000;

before(async () => {
  pki = await Pki.create();
  const ca = await pki.ca('ca');
  await ca.issue('site', { cn: 'localhost', dns: ['localhost'], ip: ['127.0.0.1'] });
  up = await startUpstream();
  gw = await startGateway({
    baseDir: pki.dir,
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
  listener "tls" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "site.crt"; key-file "site.key" } }
}
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${up.address}" } }
`,
  });
});

after(async () => {
  await gw?.close();
  await up?.close();
  await pki?.close();
});

/** A normal request with node:http2 after the abuse: the listener still serves. */
async function normalRequest(port: number, secure: boolean): Promise<number> {
  const client = http2.connect(`${secure ? 'https' : 'http'}://127.0.0.1:${port}`, { rejectUnauthorized: false });
  client.on('error', () => undefined); // a failed session ends the stream without a status: 0
  try {
    return (await h2Request(client, { ':path': '/after' })).status ?? 0;
  } finally {
    client.close();
  }
}

async function abuseMetric(listener: string, kind: string): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric('sentinel_http2_abuse_sessions_closed_total');
  const v = (await m?.get())?.values.find((x) => x.labels.listener === listener && x.labels.kind === kind);
  return v?.value ?? 0;
}

/** Every abuse ends the same way: the session closed in time, heap bounded, the listener serving. */
async function expectSurvived(s: RawSession, port: number, secure: boolean, heap0: number, what: string): Promise<void> {
  assert.ok(await s.closedWithin(CLOSE_DEADLINE_MS), `${what}: the abusive session is still open after ${CLOSE_DEADLINE_MS} ms`);
  s.socket.destroy();
  const grown = process.memoryUsage().heapUsed - heap0;
  assert.ok(grown < HEAP_BOUND, `${what}: heap grew by ${Math.round(grown / 1e6)} MB`);
  assert.equal(await normalRequest(port, secure), 200, `${what}: a normal request afterwards`);
}

for (const secure of [false, true]) {
  const kind = secure ? 'tls' : 'h2c';
  const scheme = secure ? 'https' : 'http';
  describe(`HTTP/2 abuse on the ${kind} listener`, () => {
    const port = () => gw.address(kind).port;

    test('rapid reset (5,000 x HEADERS + RST_STREAM): session closed with ENHANCE_YOUR_CALM, few requests reach the upstream', async () => {
      const before = await abuseMetric(kind, 'rapid_reset');
      const s = await openRaw(port(), secure);
      const heap0 = process.memoryUsage().heapUsed;
      const seen0 = up.seen.length;
      const block = getRequestBlock(scheme, '127.0.0.1');
      const chunks: Buffer[] = [];
      for (let i = 0; i < 5000; i++) chunks.push(frame(FrameType.HEADERS, Flag.END_STREAM | Flag.END_HEADERS, 1 + 2 * i, block), rstStream(1 + 2 * i));
      s.socket.write(Buffer.concat(chunks));
      await expectSurvived(s, port(), secure, heap0, 'rapid reset');
      if (!secure) assert.ok(s.goaways.includes(ENHANCE_YOUR_CALM), `GOAWAY codes ${s.goaways}`);
      assert.equal(await abuseMetric(kind, 'rapid_reset'), before + 1);
      // before the guard: 1,819 of 5,000 reached the upstream and the connection stayed open
      const forwarded = up.seen.length - seen0 - 1; // minus the normal request
      assert.ok(forwarded <= 2 * HTTP2_ABUSE_LIMITS.maxPeerResets, `${forwarded} reset requests were forwarded`);
    });

    test('SETTINGS flood, all at once (100,000 frames, replies unread): session closed', async () => {
      const s = await openRaw(port(), secure);
      const heap0 = process.memoryUsage().heapUsed;
      s.socket.pause();
      const one = settings([[0x3, 100]]);
      s.socket.write(Buffer.concat(Array.from({ length: 100_000 }, () => one)));
      s.socket.resume();
      await expectSurvived(s, port(), secure, heap0, 'SETTINGS flood');
    });

    test('SETTINGS flood, paced (ACKs read): closed by the per-session limit', async () => {
      const before = await abuseMetric(kind, 'settings_flood');
      const s = await openRaw(port(), secure);
      const heap0 = process.memoryUsage().heapUsed;
      const one = settings([[0x3, 100]]);
      for (let i = 0; i < 20 && !s.closed; i++) {
        s.socket.write(Buffer.concat(Array.from({ length: 10 }, () => one)));
        await new Promise((r) => setTimeout(r, 10));
      }
      await expectSurvived(s, port(), secure, heap0, 'paced SETTINGS flood');
      assert.equal(await abuseMetric(kind, 'settings_flood'), before + 1);
    });

    test('PING flood, all at once (100,000 frames, replies unread): session closed', async () => {
      const s = await openRaw(port(), secure);
      const heap0 = process.memoryUsage().heapUsed;
      s.socket.pause();
      s.socket.write(Buffer.concat(Array.from({ length: 100_000 }, (_, i) => ping(i))));
      s.socket.resume();
      await expectSurvived(s, port(), secure, heap0, 'PING flood');
    });

    test('PING flood, paced (ACKs read): closed by the per-session limit', async () => {
      const before = await abuseMetric(kind, 'ping_flood');
      const s = await openRaw(port(), secure);
      const heap0 = process.memoryUsage().heapUsed;
      for (let i = 0; i < 40 && !s.closed; i++) {
        s.socket.write(Buffer.concat(Array.from({ length: 20 }, (_, k) => ping(i * 20 + k))));
        await new Promise((r) => setTimeout(r, 10));
      }
      await expectSurvived(s, port(), secure, heap0, 'paced PING flood');
      assert.equal(await abuseMetric(kind, 'ping_flood'), before + 1);
      if (!secure) assert.ok(s.goaways.includes(ENHANCE_YOUR_CALM), `GOAWAY codes ${s.goaways}`);
    });

    test('CONTINUATION flood (HEADERS without END_HEADERS + 10,000 CONTINUATION): session closed', async () => {
      const s = await openRaw(port(), secure);
      const heap0 = process.memoryUsage().heapUsed;
      const seen0 = up.seen.length;
      const chunks = [frame(FrameType.HEADERS, Flag.END_STREAM, 1, getRequestBlock(scheme, '127.0.0.1'))];
      // literal header field without indexing, new name: x-aaa: bbbbb
      const field = Buffer.concat([Buffer.from([0x00, 0x05]), Buffer.from('x-aaa'), Buffer.from([0x05]), Buffer.from('bbbbb')]);
      for (let i = 0; i < 10_000; i++) chunks.push(frame(FrameType.CONTINUATION, 0, 1, field));
      s.socket.write(Buffer.concat(chunks));
      await expectSurvived(s, port(), secure, heap0, 'CONTINUATION flood');
      assert.equal(up.seen.length - seen0, 1, 'only the normal request reached the upstream');
    });
  });
}
