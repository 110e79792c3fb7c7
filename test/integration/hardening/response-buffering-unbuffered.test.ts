// Session 29 audit (audit29): response buffering (session 28, pool28) frees a target's pool from a
// client that does not read, up to that client's own bound (`max-response-buffer-bytes-per-client`,
// 64 MiB). Past it, each further unread answer held its upstream connection until request-secs, as
// before session 28: one client that asked for 256 answers of 300 KiB (256 x the 256 KiB a
// buffered answer counts) and then a few more held every socket of the pool again, and every other
// client of that target waited. Now a client holds at most `max-unbuffered-responses-per-client`
// (default 16) such answers; one more is cut (its stream reset), which frees its connection.
// Here: a pool of 2, a per-client bound of 1 MiB, and a cap of 1.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { request } from '../../helpers/http.ts';
import { closeServer } from '../../helpers/upstream.ts';
import { notHung, until } from '../../helpers/until.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { responseBufferBudget } from '../../../src/upstream/response-buffer.ts';

const BIG = 4 * 1024 * 1024;
const body = Buffer.alloc(BIG);
for (let i = 0; i < BIG; i += 4) body.writeUInt32BE(i, i);
const bodyHash = createHash('sha256').update(body).digest('hex');

let upstream: http.Server;
let gw: Gateway;
let spoolDir: string;
let seenBig = 0;

before(async () => {
  upstream = http.createServer((req, res) => {
    req.resume();
    if (req.url === '/small') return res.end('ok');
    seenBig++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
    res.end(body);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  spoolDir = mkdtempSync(join(tmpdir(), 'audit29-'));
  gw = await startGateway({
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
limits { max-response-buffer-bytes-per-client 1048576; max-unbuffered-responses-per-client 1 }
listeners {
  listener "h2c" { address "127.0.0.1:0"; protocol "h2"; request-timeout-secs 120 }
  listener "h1" { address "127.0.0.1:0"; protocol "http" }
}
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams {
  upstream "backend" {
    target "127.0.0.1:${port}"
    connection-pool { max-connections 2 }
    timeouts { request-secs 120 }
  }
}
`,
  });
  responseBufferBudget.dir = spoolDir;
});

after(async () => {
  await gw?.close();
  await closeServer(upstream);
  rmSync(spoolDir, { recursive: true, force: true });
});

async function metric(event: string): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric('sentinel_response_buffering_total');
  return (await m?.get())?.values.find((v) => v.labels.event === event)?.value ?? 0;
}

test('a client past its buffering bound holds at most max-unbuffered-responses-per-client upstream connections; one more is cut', async () => {
  // a session whose streams can never be sent a DATA byte until it says so
  const session = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`, { settings: { initialWindowSize: 0 } });
  session.on('error', () => undefined);
  try {
    const streams = Array.from({ length: 4 }, (_, i) => {
      const s = session.request({ ':path': `/big?i=${i}` });
      s.on('error', () => undefined);
      s.end();
      const closed = new Promise<{ hash: string; bytes: number; code: number }>((resolve) => {
        const h = createHash('sha256');
        let bytes = 0;
        s.on('data', (c: Buffer) => {
          h.update(c);
          bytes += c.length;
        });
        s.once('close', () => resolve({ hash: h.digest('hex'), bytes, code: s.rstCode ?? 0 }));
      });
      return { s, closed };
    });
    // Without the cap, the first answer past the bound and the next hold both sockets: only 2 of
    // the 4 ever reach the upstream, and another client's GET waits for request-secs.
    await until(() => `every big request to reach the upstream (seen ${seenBig} of 4)`, () => seenBig === 4);
    assert.deepEqual(await notHung("another client's GET to the same target", request(`http://127.0.0.1:${gw.address('h1').port}/small`).then(({ status, body }) => ({ status, body }))), { status: 200, body: 'ok' });
    await until('the answers past the cap to be cut', async () => (await metric('cut_client')) >= 2);
    // the answers that were kept are whole once the client reads; the cut ones are reset
    session.settings({ initialWindowSize: 1 << 20 });
    const results = await notHung('every stream to close', Promise.all(streams.map((x) => x.closed)));
    const whole = results.filter((r) => r.hash === bodyHash && r.bytes === BIG);
    const cut = results.filter((r) => r.code === http2.constants.NGHTTP2_INTERNAL_ERROR);
    assert.ok(whole.length >= 1, `at least the first answer is whole (${JSON.stringify(results.map((r) => [r.bytes, r.code]))})`);
    assert.equal(whole.length + cut.length, 4, JSON.stringify(results.map((r) => [r.bytes, r.code])));
    assert.equal(cut.length, await metric('cut_client'));
  } finally {
    session.destroy();
  }
  await until('the holds to be given back', () => responseBufferBudget.holding('127.0.0.1') === 0 && responseBufferBudget.memoryUsed === 0 && responseBufferBudget.fileUsed === 0);
});
