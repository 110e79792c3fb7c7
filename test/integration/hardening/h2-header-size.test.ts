// Session 28 audit (audit28): an HTTP/2 request over `limits { max-header-size-bytes }` was
// answered 431 by the listener's handler before the generation saw it: no access log entry, no
// correlation id (`request_id: ""`, no X-Correlation-Id), counted under another metric than
// HTTP/1.1's. An HTTP/2 client could send such requests without a trace in the access log, while
// the same request over HTTP/1.1 is logged. Now the front of the generation answers it as it
// answers too many header fields: access-logged, with its correlation id, `blocked` audited.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { h2Once } from '../../helpers/http.ts';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { until } from '../../helpers/until.ts';

const dir = mkdtempSync(join(tmpdir(), 'h2-header-size-'));
const accessFile = join(dir, 'access.log');
let up: TestUpstream;
let gw: Gateway;

before(async () => {
  up = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "h2c" { address "127.0.0.1:0"; protocol "h2" } }
routes { route "main" { matches { path-prefix "/" }; upstream "app" } }
upstreams { upstream "app" { target "${up.address}" } }
limits { max-header-size-bytes 4096 }
observability { logging { level "error"; access-log { file "${accessFile}"; format "json" } } }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await up.close();
});

async function h2(headers: http2.OutgoingHttpHeaders): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  const r = await h2Once(gw.address('h2c').port, headers);
  if (r.status === undefined) throw new Error(`stream reset (code ${r.rstCode}) before a response`);
  return { status: r.status, headers: r.headers, body: r.body };
}

test('an HTTP/2 request over max-header-size-bytes is answered 431 with its correlation id and access-logged', async () => {
  const r = await h2({ ':path': '/too-big', 'x-a': 'a'.repeat(3000), 'x-b': 'b'.repeat(3000) });
  assert.equal(r.status, 431);
  const id = r.headers['x-correlation-id'];
  assert.equal(typeof id, 'string', 'the answer names its request');
  assert.equal((JSON.parse(r.body) as { request_id: string }).request_id, id);
  assert.equal(up.seen.length, 0);
  let line: string | undefined;
  await until('the access log entry of /too-big', () => {
    (gw as unknown as { accessLog?: { flush?(): void } }).accessLog?.flush?.();
    line = existsSync(accessFile) ? readFileSync(accessFile, 'utf8').split('\n').find((l) => l.includes('/too-big')) : undefined;
    return line !== undefined;
  });
  const entry = JSON.parse(line!) as { status: number; trace_id: string; protocol: string };
  assert.equal(entry.status, 431);
  assert.equal(entry.trace_id, id);
  assert.equal(entry.protocol, 'HTTP/2.0');
  // under the limit: forwarded
  const ok = await h2({ ':path': '/fine', 'x-a': 'a'.repeat(1000) });
  assert.equal(ok.status, 200);
});
