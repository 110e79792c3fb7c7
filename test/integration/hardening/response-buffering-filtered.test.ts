// Session 29 audit (audit29): answers whose body a response filter reads (compression, cache
// stores, body inspection) went through their own relay, which waited for the client and never
// buffered (session 28 left them out): on a route with `compress`, a client that sent
// `Accept-Encoding: gzip` and read none of its answers held a socket of the target's pool per
// answer until request-secs, and every other client of that target waited. Now that relay buffers
// as the plain one does (memory, then a temp file), under the same bounds and the same cap.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { request } from '../../helpers/http.ts';
import { closeServer } from '../../helpers/upstream.ts';
import { notHung, until } from '../../helpers/until.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { responseBufferBudget } from '../../../src/upstream/response-buffer.ts';

// random-ish text: compresses a little, so the gzip stream is megabytes too
const BIG = 4 * 1024 * 1024;
let x = 1;
const body = Buffer.from(Array.from({ length: BIG / 8 }, () => ((x = (x * 1103515245 + 12345) >>> 0).toString(16).padStart(8, '0'))).join(''));
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
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) });
    res.end(body);
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const port = (upstream.address() as AddressInfo).port;
  spoolDir = mkdtempSync(join(tmpdir(), 'audit29-filtered-'));
  gw = await startGateway({
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
limits { max-response-buffer-bytes-per-client 268435456 }
listeners {
  listener "h2c" { address "127.0.0.1:0"; protocol "h2"; request-timeout-secs 120 }
  listener "h1" { address "127.0.0.1:0"; protocol "http" }
}
filters { filter "c" { type "compress"; algorithms "gzip"; level 1 } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend"; filters "c" } }
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

test('compressed answers a client does not read are buffered: the pool is free, the answers whole later', async () => {
  const session = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`, { settings: { initialWindowSize: 0 } });
  session.on('error', () => undefined);
  try {
    const streams = Array.from({ length: 4 }, (_, i) => {
      const s = session.request({ ':path': `/big?i=${i}`, 'accept-encoding': 'gzip' });
      s.on('error', () => undefined);
      s.end();
      const chunks: Buffer[] = [];
      const closed = new Promise<{ encoding: string; data: Buffer; reset: number }>((resolve) => {
        let encoding = '';
        s.once('response', (h) => (encoding = String(h['content-encoding'] ?? '')));
        s.on('data', (c: Buffer) => chunks.push(c));
        s.once('close', () => resolve({ encoding, data: Buffer.concat(chunks), reset: s.rstCode ?? 0 }));
      });
      return closed;
    });
    // Without buffering only 2 (the pool) ever reach the upstream: each holds its socket.
    await until(() => `every big request to reach the upstream (seen ${seenBig} of 4)`, () => seenBig === 4);
    assert.deepEqual(await notHung("another client's GET to the same target", request(`http://127.0.0.1:${gw.address('h1').port}/small`).then(({ status, body }) => ({ status, body }))), { status: 200, body: 'ok' });
    session.settings({ initialWindowSize: 1 << 20 });
    for (const r of await notHung('the buffered answers read', Promise.all(streams))) {
      assert.equal(r.encoding, 'gzip');
      assert.equal(r.reset, 0);
      assert.equal(createHash('sha256').update(gunzipSync(r.data)).digest('hex'), bodyHash);
    }
  } finally {
    session.destroy();
  }
  await until('the buffers to be given back', () => responseBufferBudget.memoryUsed === 0 && responseBufferBudget.fileUsed === 0 && responseBufferBudget.clientCount === 0);
});
