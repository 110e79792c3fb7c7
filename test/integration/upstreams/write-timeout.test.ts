// `timeouts { write-secs }` through the real gateway: an upstream that accepts the request headers
// and then never reads a large body fails the attempt with 504 (reason timeout, counted in
// sentinel_upstream_failures_total) after write-secs; an upstream that keeps reading slowly
// (the upload takes longer than write-secs in total) succeeds, because the bound is per stall.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { startServer, type TestServer } from './helpers.ts';

const MiB = 1024 * 1024;
let stalled: TestServer;
let slow: TestServer;
let gw: Gateway;
let base: string;
const stalledSockets = new Set<import('node:net').Socket>();

before(async () => {
  // Accepts the headers, never reads the body, never answers.
  stalled = await startServer((req) => {
    req.pause();
    stalledSockets.add(req.socket);
  });
  // Reads everything, but at most one chunk per 15 ms (a few MB/s): the upload takes seconds.
  slow = await startServer((req, res) => {
    let bytes = 0;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      req.pause();
      setTimeout(() => req.resume(), 15);
    });
    req.on('end', () => res.end(`read ${bytes}`));
  });
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
limits { max-body-size-bytes ${256 * MiB} }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "metrics" { priority "high"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "stalled" { matches { path-prefix "/stalled" }; upstream "stalled" }
  route "slow" { matches { path-prefix "/slow" }; upstream "slow" }
}
upstreams {
  upstream "stalled" { target "${stalled.address}"; timeouts { write-secs 1; read-secs 60; request-secs 60 } }
  upstream "slow" { target "${slow.address}"; timeouts { write-secs 1; read-secs 60; request-secs 60 } }
}
`);
  gw = g.gw;
  base = g.url();
});

after(async () => {
  await gw.close();
  for (const s of stalledSockets) s.destroy();
  await stalled.close();
  await slow.close();
});

/** POSTs `total` bytes as a stream (chunked when no length is given), resolves with the answer. */
function upload(path: string, total: number, withLength: boolean): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: 'POST', agent: false, headers: withLength ? { 'content-length': String(total) } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body, ms: performance.now() - t0 }));
    });
    // The gateway answers before it has read the whole upload: writes may then fail; the
    // answer is what counts.
    req.on('error', (e) => (req.writableEnded ? undefined : reject(e)));
    const chunk = Buffer.alloc(64 * 1024, 97);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

async function failures(upstream: string): Promise<number> {
  const text = (await request(`${base}/metrics`)).body;
  const line = text.split('\n').find((l) => l.startsWith('sentinel_upstream_failures_total{') && l.includes(`upstream="${upstream}"`) && l.includes('reason="timeout"'));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('an upstream that never reads a large body: 504 after write-secs, reason timeout, counted', async () => {
  const before = await failures('stalled');
  const r = await upload('/stalled', 128 * MiB, true);
  assert.equal(r.status, 504, r.body);
  assert.equal(JSON.parse(r.body).error, 'Gateway Timeout: upstream did not accept the request body in time');
  // write-secs is 1 s; read-secs and request-secs (60 s) must not be what fired.
  assert.ok(r.ms < 20_000, `took ${r.ms} ms`);
  assert.equal(await failures('stalled'), before + 1);
});

test('chunked upload (no content-length) to a stalled upstream also fails after write-secs', async () => {
  const r = await upload('/stalled', 128 * MiB, false);
  assert.equal(r.status, 504, r.body);
  assert.ok(r.ms < 20_000, `took ${r.ms} ms`);
});

test('progress resets the clock: a slow but steady reader gets the whole upload', async () => {
  const total = 12 * MiB;
  const r = await upload('/slow', total, true);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, `read ${total}`);
  assert.ok(r.ms > 1000, `the upload must outlast write-secs to prove the point (took ${r.ms} ms)`);
});
