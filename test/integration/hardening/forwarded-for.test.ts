// The client address behind a trusted proxy (session 14 audit): the rightmost X-Forwarded-For
// entry that is not a trusted proxy was taken as it was written. A client whose own address is
// trusted (an internal client when trusted-proxies is a whole network) or a proxy that passes
// the header on could make it any text: quotes and spaces went unescaped into the `combined`
// access log (a forged entry at the start of the line), into X-Real-IP for the upstream and into
// the agents' client_ip. Entries must be addresses (`ip:port` and `[v6]:port` as some balancers
// write them are read as the address); anything else stops the walk at the proxy that sent it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;
const access = join(mkdtempSync(join(tmpdir(), 'sentinel-xff-')), 'access.log');

before(async () => {
  up = await startUpstream();
  gw = (
    await gatewayFrom(
      simpleConfig(up.address, {
        top: `system { trusted-proxies "127.0.0.1" "10.0.0.0/8" }\nobservability { logging { level "error"; access-log { file "${access}"; format "combined" } } }`,
      }),
    )
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  if (!closed) await gw.close();
  await up.close();
});

let closed = false;
/** The access log is written in blocks: the gateway's close flushes it. */
async function accessLines(): Promise<string[]> {
  if (!closed) await gw.close();
  closed = true;
  return existsSync(access) ? readFileSync(access, 'latin1').split('\n') : [];
}

// Session 21: a trusted proxy that does not write X-Real-IP itself (an ALB, a CDN append to
// X-Forwarded-For only) passes the client's own X-Real-IP on. It was kept, so the upstream read an
// address the gateway never resolved (its rate limits and log used another one).
test('X-Real-IP is the address the gateway resolved, whatever the client or a trusted proxy sent', async () => {
  const table: [string[], string][] = [
    [['X-Real-IP: 6.6.6.6', 'X-Forwarded-For: 203.0.113.5'], '203.0.113.5'],
    [['X-Real-IP: 6.6.6.6'], '127.0.0.1'],
    [['X-Real-IP: 6.6.6.6', 'X-Real-IP: 7.7.7.7', 'X-Forwarded-For: 198.51.100.2, 10.0.0.3'], '198.51.100.2'],
  ];
  for (const [headers, want] of table) {
    const r = await rawRequest(port, http1('GET', '/real-ip', ['Host: a', ...headers, 'Connection: close']));
    assert.equal(r.status, 200, headers.join('; '));
    assert.equal(up.seen.at(-1)!.headers['x-real-ip'], want, headers.join('; '));
  }
});

test('an X-Forwarded-For entry that is not an address is never the client address', async () => {
  const table: [string, string][] = [
    ['6.6.6.6 - - [01/Jan/2026:00:00:00 +0000] "GET /forged HTTP/1.1" 200 0 "-" "-" x 0ms', '127.0.0.1'],
    ['"quoted"', '127.0.0.1'],
    ['203.0.113.9, not-an-ip', '127.0.0.1'],
    ['not-an-ip, 10.1.2.3', '10.1.2.3'],
    ['203.0.113.7:51234', '203.0.113.7'],
    ['[2001:db8::7]:443', '2001:db8::7'],
    ['[2001:db8::8]', '2001:db8::8'],
    ['203.0.113.5', '203.0.113.5'],
    ['198.51.100.1, 203.0.113.6, 10.9.9.9', '203.0.113.6'],
  ];
  let n = 0;
  for (const [xff, want] of table) {
    const marker = `/xff-${++n}`;
    const r = await rawRequest(port, http1('GET', marker, ['Host: a', `X-Forwarded-For: ${xff}`, 'Connection: close']));
    assert.equal(r.status, 200, xff);
    assert.equal(up.seen.at(-1)!.headers['x-real-ip'], want, `X-Real-IP for ${xff}`);
  }
  const lines = await accessLines();
  n = 0;
  for (const [xff, want] of table) {
    const marker = `/xff-${++n} `;
    const line = lines.find((l) => l.includes(marker));
    assert.ok(line?.startsWith(`${want} - - [`), `${xff}: ${line}`);
    assert.equal(line!.match(/"GET /g)?.length, 1, `one request per line: ${line}`);
  }
});
