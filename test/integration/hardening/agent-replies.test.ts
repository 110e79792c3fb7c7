// Hostile or broken agent replies (session 13 audit). An agent is a separate process the gateway
// must survive: a reply Node cannot write (a framing or HTTP/2 connection-specific header in a
// block's headers, a value outside Latin-1) used to throw from writeHead, and the 500 written
// after it threw again with the same headers still set on the response: an uncaught exception
// that ended the gateway (h1: `Trailer` in a block's headers; h2: `Transfer-Encoding`,
// `Connection`, `Upgrade` in a block, `HTTP2-Settings` as a response header operation). A block's
// own `Transfer-Encoding: chunked` went out beside the gateway's Content-Length (both framings
// on one response). Now framing headers are dropped from blocks as from header operations, a
// value Node would refuse is a protocol error (the filter's failure mode applies), and a write
// that throws can no longer take the process down.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream, closeServer } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { h2Get } from '../../helpers/http.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import { startScriptedAgent } from '../../helpers/scripted-agent.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

const FRAMING = { 'Transfer-Encoding': 'chunked', 'Content-Length': '1', Connection: 'close, x-a', Trailer: 'x-t', Upgrade: 'h2c', 'Keep-Alive': 'timeout=1', 'Proxy-Connection': 'close', 'HTTP2-Settings': 'AAA', 'X-Kept': 'yes' };

/** The agent's reply per last path segment (request_headers), or for `resp-*` paths (response_headers). */
const REPLIES: Record<string, Record<string, unknown>> = {
  'block-framing': { decision: { block: { status: 403, body: 'no', headers: FRAMING } } },
  'block-latin1': { decision: { block: { status: 403, body: 'no', headers: { 'X-A': 'caf\u00e9' } } } },
  'block-wide': { decision: { block: { status: 403, body: 'no', headers: { 'X-A': 'a\u0100b' } } } },
  'redirect-wide': { decision: { redirect: { url: 'https://a.test/\u2028' } } },
  'challenge-crlf': { decision: { challenge: { challenge_type: 'x\r\nSet-Cookie: a=1' } } },
  'req-wide': { decision: 'allow', request_headers: [{ set: { name: 'X-A', value: 'a\u0100b' } }] },
  'resp-wide': { decision: 'allow', response_headers: [{ set: { name: 'X-A', value: 'a\u0100b' } }] },
  'resp-framing': { decision: 'allow', response_headers: Object.entries(FRAMING).map(([name, value]) => ({ set: { name, value } })) },
};

let dir: string;
let agent: net.Server;
let up: TestUpstream;
let gw: Gateway;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sa-'));
  const sock = join(dir, 'a.sock');
  agent = await startScriptedAgent(
    sock,
    () => {
      let path = '';
      return (type, body) => {
        if (type === MessageType.Cancel) return undefined;
        if (type === MessageType.RequestHeaders) path = String(body.uri).split('/').pop()!;
        const wanted = type === MessageType.RequestHeaders ? !path.startsWith('resp-') : type === MessageType.ResponseHeaders && path.startsWith('resp-');
        return (wanted ? REPLIES[path] : undefined) ?? { decision: 'allow' };
      };
    },
    [0, 1, 2, 3],
  );
  up = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
agents { agent "h" { unix-socket "${sock}"; events "request_headers" "response_headers"; timeout-ms 2000; circuit-breaker { failure-threshold 1000 } } }
filters {
  filter "closed" { type "agent"; agent "h"; failure-mode "closed" }
  filter "open" { type "agent"; agent "h"; failure-mode "open" }
}
routes {
  route "open" { matches { path-prefix "/open" }; upstream "backend"; filters "open" }
  route "closed" { matches { path-prefix "/" }; upstream "backend"; filters "closed" }
}
upstreams { upstream "backend" { target "${up.address}" } }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await up.close();
  await closeServer(agent);
  rmSync(dir, { recursive: true, force: true });
});

/** A GET over the gateway's h2c listener. */
const h2get = (path: string) => h2Get(gw.address('h2c').port, path);

const FRAMING_NAMES = ['transfer-encoding', 'trailer', 'upgrade', 'proxy-connection', 'http2-settings'];

/** The framing the gateway chose, not the agent's (Node adds its own Keep-Alive on a kept connection). */
function assertOwnFraming(h: Record<string, string>, label: string): void {
  for (const n of FRAMING_NAMES) assert.equal(h[n], undefined, `${label}: ${n}`);
  assert.notEqual(h['keep-alive'], 'timeout=1', `${label}: keep-alive`);
  assert.doesNotMatch(h.connection ?? '', /x-a|close/, `${label}: connection`);
}

test('a block carrying framing headers: one Content-Length framing, the agent framing headers dropped (HTTP/1.1 and HTTP/2)', async () => {
  const r = await rawRequest(gw.address('http').port, http1('GET', '/x/block-framing', ['Host: a.test']));
  assert.equal(r.status, 403);
  assert.equal(r.body, 'no');
  assert.equal(r.headers['content-length'], '2');
  assert.equal(r.headers['x-kept'], 'yes');
  assertOwnFraming(r.headers, 'block');
  const h2 = await h2get('/x/block-framing');
  assert.equal(h2.status, 403);
  assert.equal(h2.body, 'no');
  assert.equal(h2.headers['x-kept'], 'yes');
});

test('response header operations naming framing or HTTP/2 connection headers are ignored (HTTP/1.1 and HTTP/2)', async () => {
  const r = await rawRequest(gw.address('http').port, http1('GET', '/x/resp-framing', ['Host: a.test']));
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-kept'], 'yes');
  assertOwnFraming(r.headers, 'response');
  const h2 = await h2get('/x/resp-framing');
  assert.equal(h2.status, 200);
  assert.equal(h2.headers['x-kept'], 'yes');
});

test('a header value Node cannot write (outside Latin-1, CR/LF) is a protocol error: failure mode, not a 500', async () => {
  const latin1 = await rawRequest(gw.address('http').port, http1('GET', '/x/block-latin1', ['Host: a.test']));
  assert.equal(latin1.status, 403, 'Latin-1 (obs-text) is a valid value');
  for (const p of ['block-wide', 'redirect-wide', 'challenge-crlf', 'req-wide', 'resp-wide']) {
    const closed = await rawRequest(gw.address('http').port, http1('GET', `/x/${p}`, ['Host: a.test']));
    assert.equal(closed.status, 503, `${p} fail-closed: ${closed.body}`);
    assert.equal(closed.body, 'Agent unavailable', p);
    const n = up.seen.length;
    const open = await rawRequest(gw.address('http').port, http1('GET', `/open/${p}`, ['Host: a.test']));
    assert.equal(open.status, 200, `${p} fail-open: the agent is skipped`);
    if (!p.startsWith('resp-')) assert.equal(up.seen.length, n + 1);
    const h2 = await h2get(`/x/${p}`);
    assert.equal(h2.status, 503, `${p} over HTTP/2`);
  }
});

test('the gateway is still up and answering after every reply above', async () => {
  const r = await rawRequest(gw.address('http').port, http1('GET', '/x/plain', ['Host: a.test']));
  assert.equal(r.status, 200);
});

test('a response Node refuses to write is a 500, never an uncaught exception (a plugin filter on HTTP/2)', async () => {
  // Not an agent: an in-process plugin filter setting a connection-specific header, which HTTP/2
  // refuses (a route header policy doing so is a config error since session 13). The first
  // writeHead throws; the 500 after it must not throw again.
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-bad-header-'));
  const module = join(dir, 'bad-header.mjs');
  writeFileSync(module, "export default async function (app, opts) { opts.filter({ onResponse(ctx, res) { res.headers['http2-settings'] = 'x'; } }); }\n");
  const g = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "h2c" { address "127.0.0.1:0"; protocol "h2" } }
filters { filter "bad" { type "plugin"; module "${module}"; failure-mode "open" } }
routes { route "main" { matches { path-prefix "/" }; upstream "backend"; filters "bad" } }
upstreams { upstream "backend" { target "${up.address}" } }
`)
  ).gw;
  try {
    for (let i = 0; i < 2; i++) {
      const status = await new Promise<number>((resolve, reject) => {
        const session = http2.connect(`http://127.0.0.1:${g.address('h2c').port}`);
        session.on('error', reject);
        const req = session.request({ ':path': '/a', ':authority': 'a.test' });
        let s = 0;
        req.on('response', (h) => (s = Number(h[':status'])));
        req.resume();
        req.on('close', () => {
          session.close();
          resolve(s);
        });
      });
      assert.equal(status, 500);
    }
  } finally {
    await g.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
