// Client-caused errors never count against an upstream (issue 17 item 3): requests the upstream
// client library refuses (`OPTIONS *`), `Expect: 100-continue`, client aborts and broken bodies
// get a local 4xx (or nothing), are not retried, and leave the circuit breaker closed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { expectContinueExchange, rawExchange } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let base: string;
let port: number;

before(async () => {
  up = await startUpstream();
  // a breaker that opens after 3 failures, and a body limit to see Expect refused
  const g = await gatewayFrom(
    simpleConfig(up.address, {
      top: `limits { max-body-size-bytes ${4 * 1024 * 1024} }`,
      upstream: 'circuit-breaker { failure-threshold 3; timeout-seconds 30 }',
      // `*` matches no path route: the listener's default route is where it lands (as in the report)
      listener: 'default-route "main"',
    }),
  );
  gw = g.gw;
  base = g.url();
  port = gw.address('http').port;
});
after(async () => {
  await gw.close();
  await up.close();
});

async function breakerStillClosed(): Promise<void> {
  const r = await request(`${base}/after`);
  assert.equal(r.status, 200, `a normal request after the client errors: ${r.status} ${r.body}`);
  const failures = await gw.metrics.render();
  assert.doesNotMatch(failures, /sentinel_upstream_failures_total\{[^}]*\} [1-9]/, 'no upstream failure was counted');
}

test('3 x OPTIONS * never reach the breaker; a normal request still gets 200', async () => {
  const seen = up.seen.length;
  for (let i = 0; i < 3; i++) {
    const r = await rawExchange(port, 'OPTIONS * HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.ok(r.statuses.length > 0, `an answer to OPTIONS *: ${JSON.stringify(r.text)}`);
    const s = r.statuses.at(-1)!;
    assert.ok(s < 500 || s === 501, `OPTIONS * is answered locally, not as an upstream failure: ${s}`);
    assert.notEqual(s, 502);
    assert.notEqual(s, 503);
  }
  assert.equal(up.seen.filter((x) => x.url === '*').length, 0);
  assert.ok(up.seen.length - seen <= 0, 'nothing was sent upstream');
  await breakerStillClosed();
});

test('5 POSTs with Expect: 100-continue get 100 then the upstream answer, forwarded without Expect', async () => {
  const before = up.seen.length;
  for (let i = 0; i < 5; i++) {
    // the client waits for 100 Continue before it sends the body, as curl does
    const r = await expectContinueExchange(port, `POST /upload${i} HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n`, 'hello');
    assert.deepEqual(r.statuses, [100, 200], r.text);
  }
  const fresh = up.seen.slice(before);
  assert.equal(fresh.length, 5);
  for (const s of fresh) {
    assert.equal(s.headers.expect, undefined, 'Expect is a hop the gateway handled');
    assert.equal(s.body.toString(), 'hello');
  }
  await breakerStillClosed();
});

test('5 POSTs with Expect sent together with their bodies (no wait) still work', async () => {
  for (let i = 0; i < 5; i++) {
    const r = await rawExchange(port, `POST /eager HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
    assert.equal(r.statuses.at(-1), 200, r.text);
  }
  await breakerStillClosed();
});

test('Expect: 100-continue on a body over the limit: 413 without 100, the body is never read', async () => {
  const before = up.seen.length;
  const r = await rawExchange(port, `POST /big HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: ${8 * 1024 * 1024}\r\n\r\n`);
  assert.deepEqual(r.statuses, [413], r.text);
  assert.match(r.text, /connection: close/i, 'the unread body makes the connection unusable');
  assert.equal(up.seen.length, before);
});

test('a request the upstream client refuses is a local 400, not 502, and not retried or counted', async () => {
  // A header value undici rejects but Node's parser accepts would be a client error too; OPTIONS *
  // is the one shape every client can send: covered above. Here the classifier table itself.
  const { classifyUpstreamError } = await import('../../../src/errors/index.ts');
  for (const code of ['UND_ERR_INVALID_ARG', 'UND_ERR_NOT_SUPPORTED', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_HTTP_TOKEN', 'ERR_INVALID_CHAR']) {
    const c = classifyUpstreamError(Object.assign(new Error('x'), { code }));
    assert.equal(c.blame, 'client', code);
    assert.ok(c.status >= 400 && c.status < 500, `${code}: ${c.status}`);
  }
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'UND_ERR_HEADERS_TIMEOUT']) {
    assert.equal(classifyUpstreamError(Object.assign(new Error('x'), { code })).blame, 'upstream', code);
  }
});

test('a client that aborts its upload mid-body is not charged to the upstream', async () => {
  const slow = await startUpstream();
  const g = await gatewayFrom(simpleConfig(slow.address, { upstream: 'circuit-breaker { failure-threshold 1; timeout-seconds 30 }' }));
  try {
    const p = g.gw.address('http').port;
    for (let i = 0; i < 3; i++) {
      // 5 of 1000 declared bytes, then the client goes away
      await rawExchange(p, 'POST /abort HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\nhello', { waitMs: 300 });
    }
    const r = await request(`${g.url()}/ok`);
    assert.equal(r.status, 200, r.body);
  } finally {
    await g.gw.close();
    await slow.close();
  }
});

test('curl uploads 2 MiB (it sends Expect: 100-continue) through the gateway', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'sentinel-upload-'));
  try {
    const file = join(dir, 'blob');
    const blob = randomBytes(2 * 1024 * 1024);
    await writeFile(file, blob);
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile('curl', ['-sS', '-v', '--data-binary', `@${file}`, '-H', 'content-type: application/octet-stream', `${base}/upload`], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    if (/ENOENT/.test(out.stderr)) throw new Error('curl is needed by this test: apt-get install -y curl');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /> Expect: 100-continue/i, 'curl offered Expect');
    assert.match(out.stderr, /< HTTP\/1\.1 100 Continue/i);
    assert.equal((JSON.parse(out.stdout) as { bytes: number }).bytes, blob.length);
    const last = up.seen.at(-1)!;
    assert.equal(last.body.equals(blob), true, 'the upstream got the exact body');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
