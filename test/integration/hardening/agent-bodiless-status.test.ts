// An agent's own answer with a status that has no content (audit30). A block carries a body
// ('Blocked by agent' when it names none); with status 205 Reset Content the gateway wrote it as
// the agent gave it: on HTTP/1.1 framed by a Content-Length, so a client or hop that reads a 205
// as bodiless (RFC 9110 §15.3.6) took the agent's bytes for the next answer on the connection (the
// body below spells a whole response); on HTTP/2 Node reset the stream at the first DATA byte and
// the client got no answer at all. 204 and 304 held (Node drops their body on both protocols).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream, closeServer } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { h2Get } from '../../helpers/http.ts';
import { rawExchange } from '../../helpers/raw-http.ts';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import { startScriptedAgent } from '../../helpers/scripted-agent.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

const REPLIES: Record<string, Record<string, unknown>> = {
  'b204': { decision: { block: { status: 204, body: 'HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\nContent-Length: 0\r\n\r\n' } } },
  'b205': { decision: { block: { status: 205, body: 'HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\nContent-Length: 0\r\n\r\n' } } },
  'b304': { decision: { block: { status: 304, body: 'HTTP/1.1 200 OK\r\nX-Smuggled: 1\r\nContent-Length: 0\r\n\r\n' } } },
  'r304': { decision: { redirect: { url: 'https://a.test/x', status: 304 } } },
  'b101': { decision: { block: { status: 101, body: 'x' } } },
};

/** request path per correlation id: `rb<name>` paths are answered at the response body with REPLIES[<name>] */
const paths = new Map<string, string>();
let dir: string;
let agent: net.Server;
let up: TestUpstream;
let gw: Gateway;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sa-'));
  const sock = join(dir, 'a.sock');
  agent = await startScriptedAgent(sock, () => (type, body) => {
    const cid = String(body.correlation_id ?? '');
    if (type === MessageType.RequestHeaders) {
      const path = String(body.uri).split('/').pop()!;
      paths.set(cid, path);
      return (path.startsWith('rb') ? undefined : REPLIES[path]) ?? { decision: 'allow' };
    }
    if (type === MessageType.ResponseBodyChunk) return REPLIES[(paths.get(cid) ?? '').slice(2)] ?? { decision: 'allow' };
    return undefined;
  });
  up = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
agents {
  agent "h" { unix-socket "${sock}"; events "request_headers"; timeout-ms 2000 }
  agent "rb" { unix-socket "${sock}"; events "request_headers" "response_body"; timeout-ms 2000 }
}
filters {
  filter "closed" { type "agent"; agent "h"; failure-mode "closed" }
  filter "body" { type "agent"; agent "rb"; failure-mode "closed" }
}
routes {
  route "body" { matches { path-prefix "/rb/" }; upstream "backend"; filters "body" }
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

const SMUGGLED = /X-Smuggled/i;

test('an agent block with status 205 and a body: 205 with Content-Length 0 and no content (HTTP/1.1, then the next answer on the connection is the upstream\'s)', async () => {
  const r = await rawExchange(gw.address('http').port, 'GET /x/b205 HTTP/1.1\r\nHost: a.test\r\n\r\nGET /x/plain HTTP/1.1\r\nHost: a.test\r\n\r\n', { responses: 2 });
  assert.deepEqual(r.statuses, [205, 200], r.text);
  assert.match(r.text, /^HTTP\/1\.1 205 [^]*?\r\ncontent-length: 0\r\n/i);
  assert.doesNotMatch(r.text, SMUGGLED);
  assert.match(r.text, /"url":"\/x\/plain"/);
});

test('an agent block with status 205 and a body over HTTP/2: a 205 answer, not a reset stream', async () => {
  const h2 = await h2Get(gw.address('h2c').port, '/x/b205');
  assert.equal(h2.status, 205);
  assert.equal(h2.body, '');
});

test('204 and 304 blocks and a 304 redirect held: no content on either protocol, the connection goes on', async () => {
  for (const p of ['b204', 'b304', 'r304']) {
    const want = p === 'b204' ? 204 : 304;
    const r = await rawExchange(gw.address('http').port, `GET /x/${p} HTTP/1.1\r\nHost: a.test\r\n\r\nGET /x/plain HTTP/1.1\r\nHost: a.test\r\n\r\n`, { responses: 2 });
    assert.deepEqual(r.statuses, [want, 200], `${p}: ${r.text}`);
    assert.doesNotMatch(r.text, SMUGGLED, p);
    assert.doesNotMatch(r.text.split('\r\n\r\n')[0]!, /content-length/i, p);
    const h2 = await h2Get(gw.address('h2c').port, `/x/${p}`);
    assert.equal(h2.status, want, p);
    assert.equal(h2.body, '', p);
  }
});

test('the same blocks at the response body (buffer mode): 205 with Content-Length 0, 204 and 304 without one, no content', async () => {
  for (const [p, want] of [['rbb204', 204], ['rbb304', 304], ['rbb205', 205]] as const) {
    const r = await rawExchange(gw.address('http').port, `GET /rb/${p} HTTP/1.1\r\nHost: a.test\r\n\r\nGET /x/plain HTTP/1.1\r\nHost: a.test\r\n\r\n`, { responses: 2 });
    assert.deepEqual(r.statuses, [want, 200], `${p}: ${r.text}`);
    assert.doesNotMatch(r.text, SMUGGLED, p);
    const head = r.text.split('\r\n\r\n')[0]!;
    if (want === 205) assert.match(head, /\r\ncontent-length: 0(\r\n|$)/i, p);
    else assert.doesNotMatch(head, /content-length/i, p);
    const h2 = await h2Get(gw.address('h2c').port, `/rb/${p}`);
    assert.equal(h2.status, want, p);
    assert.equal(h2.body, '', p);
  }
});

test('a block status outside 200-599 (101) is the default 403', async () => {
  const h2 = await h2Get(gw.address('h2c').port, '/x/b101');
  assert.equal(h2.status, 403);
});
