// `limits { max-header-count }` means the same over HTTP/1.1 and HTTP/2 (session 25 audit): HTTP/2's
// four pseudo-headers, which stand in for the request line, were counted as headers (an HTTP/2
// request could carry four fewer), and past 124 fields Node reset an HTTP/2 stream itself
// (maxHeaderListPairs, 128 with the pseudo-headers) before the gateway's limit was read. And over
// HTTP/1.1 Node keeps at most 2000 header fields (maxHeadersCount) yet frames the body by a
// Transfer-Encoding past them: with a limit above 2000 such headers vanished unseen.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { rawExchange } from '../../helpers/raw-http.ts';
import { h2Request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let upstream: TestUpstream;
let gw: Gateway;
const LIMIT = 150;

before(async () => {
  upstream = await startUpstream();
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
limits { max-header-count ${LIMIT} }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
routes { route "main" { matches { path-prefix "/" } ; upstream "backend" } }
upstreams { upstream "backend" { target "${upstream.address}" } }
`));
});

after(async () => {
  await gw.close();
  await upstream.close();
});

/** `n` header fields: Host (HTTP/1.1) or none (HTTP/2: :authority), then x-h1 ... */
function fields(n: number, withHost: boolean): [string, string][] {
  const out: [string, string][] = withHost ? [['host', 'a']] : [];
  for (let i = out.length; i < n; i++) out.push([`x-h${i}`, 'v']);
  return out;
}

async function h1Status(n: number): Promise<number> {
  const head = fields(n, true).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  // Connection: close is one more field
  const { statuses } = await rawExchange(gw.address('http').port, `GET /count HTTP/1.1\r\n${head}Connection: close\r\n\r\n`);
  return statuses[0]!;
}

async function h2Status(n: number): Promise<number | string> {
  const client = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`);
  client.on('error', () => undefined);
  try {
    const headers: http2.OutgoingHttpHeaders = { ':path': '/count' };
    for (const [k, v] of fields(n, false)) headers[k] = v;
    const r = await h2Request(client, headers);
    return r.status ?? `reset ${r.rstCode}`;
  } finally {
    client.close();
  }
}

test('HTTP/1.1 past 2000 header fields (a limit above it): 431, not the first 2000 with the rest and their framing unseen', async () => {
  const { gw: big } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
limits { max-header-count 2100; max-header-size-bytes 65536 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" } ; upstream "backend" } }
upstreams { upstream "backend" { target "${upstream.address}" } }
`);
  try {
    const head = fields(2150, true).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    const seen = upstream.seen.length;
    const { statuses } = await rawExchange(big.address('http').port, `POST /hidden HTTP/1.1\r\n${head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n`);
    // before: 200, forwarded without the body (its framing and 150 fields never seen)
    assert.deepEqual(statuses, [431]);
    assert.equal(upstream.seen.length, seen, 'nothing forwarded');
  } finally {
    await big.close();
  }
});

test('HTTP/1.1 and HTTP/2 take as many header fields as max-header-count, and refuse one more with 431', async () => {
  // HTTP/1.1: LIMIT - 1 fields and Connection
  assert.equal(await h1Status(LIMIT - 1), 200);
  assert.equal(await h1Status(LIMIT), 431);
  // before: 431 at LIMIT - 3 (the pseudo-headers counted); beyond 124 fields a stream reset by Node
  assert.equal(await h2Status(LIMIT), 200);
  assert.equal(await h2Status(LIMIT + 1), 431);
});
