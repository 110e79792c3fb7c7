// An upstream that hangs up while the client is still uploading (its own body timeout, a crash):
// undici destroys the request body, which used to read as a client abort, so the client, still
// connected, got no answer until the listener's request timeout, and nothing was counted. It must
// get a 502 at once, and since a slow client can provoke such a cut, the target is not charged
// (a breaker at failure-threshold 1 stays closed).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { closeServer } from '../../helpers/upstream.ts';
import { HANG_MS } from '../../helpers/until.ts';

let upstream: http.Server;
let gw: Gateway;
let base: string;
let cuts = 0;

before(async () => {
  // /cut: the upstream drops the connection 200 ms into an upload that has not ended
  upstream = http.createServer((req, res) => {
    if (req.url === '/cut') {
      const t = setTimeout(() => {
        cuts++;
        req.socket.destroy();
      }, 200);
      req.on('end', () => clearTimeout(t));
    }
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const g = await gatewayFrom(
    simpleConfig(`127.0.0.1:${(upstream.address() as AddressInfo).port}`, {
      upstream: 'circuit-breaker { failure-threshold 1; timeout-seconds 30 }',
      // streamed uploads (request buffering would read this body before any upstream sees it)
      top: 'limits { max-body-buffer-bytes 0 }',
    }),
  );
  gw = g.gw;
  base = g.url();
});

after(async () => {
  await gw.close();
  await closeServer(upstream);
});

/** Sends 10 of 100 declared body bytes, the other 90 after `restAfterMs` (if set); collects the answer. */
function partialUpload(port: number, restAfterMs: number | undefined): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('POST /cut HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789'));
    let text = '';
    const rest = restAfterMs === undefined ? undefined : setTimeout(() => s.writable && s.write('x'.repeat(90)), restAfterMs);
    const done = (closed: boolean) => {
      clearTimeout(timer);
      clearTimeout(rest);
      s.destroy();
      resolve({ text, closed });
    };
    // HANG_MS: under the listener's 60 s request timeout, at which the old bug answered
    const timer = setTimeout(() => done(false), HANG_MS);
    s.on('data', (c: Buffer) => (text += c.toString('latin1')));
    s.on('error', () => undefined);
    s.on('close', () => done(true));
  });
}

test('the upstream hangs up mid-upload: 502 at once, connection closed, target not charged', async () => {
  const port = gw.address('http').port;
  for (const restAfterMs of [undefined, 400]) {
    const before = cuts;
    const r = await partialUpload(port, restAfterMs);
    assert.equal(cuts, before + 1, 'the upstream cut the upload');
    assert.match(r.text, /^HTTP\/1\.1 502 /, `answered: ${JSON.stringify(r.text.slice(0, 80))}`);
    assert.match(r.text, /"status":502/);
    assert.ok(r.closed, 'the connection is closed (the rest of the body is never parsed as a request)');
  }
  const ok = await request(`${base}/after`);
  assert.equal(ok.status, 200, 'the breaker (failure-threshold 1) is still closed');
  assert.doesNotMatch(await gw.metrics.render(), /sentinel_upstream_failures_total\{[^}]*\} [1-9]/);
});
