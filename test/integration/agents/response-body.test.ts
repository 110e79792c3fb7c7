// Response body events through the real gateway (forwarder + agent filter + a real SDK agent
// process): buffer mode (inspect, block before the headers, mutate, gzip decoded for the agent,
// too-large bodies under fail-closed/fail-open), stream mode (chunks as they arrive, mutation,
// a block that can only cut the connection), an unreachable agent, and routes without response
// body agents that keep streaming large bodies without buffering.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { responseReads } from '../../helpers/chunk-reads.ts';
import { sha256, spawnAgent, tempDir, type AgentProcess } from './harness.ts';

const tmp = tempDir();
const sock = join(tmp.dir, 'resp.sock');
let agent: AgentProcess;
let up: TestUpstream;
let gw: Gateway;
let port: number;
const LIMIT = 64 * 1024;
const BIG = 5 * 1024 * 1024;

// The upstream holds the tail of /big until the test releases it (first bytes before the end).
let releaseBig: (() => void) | undefined;
let bigFinished = false;

// What went wrong pacing the upstream's writes (checked after the tests: an upstream handler has no test to fail).
const pacingErrors: string[] = [];

/**
 * Writes `parts` as separate chunks: each once the gateway read the previous one (the body seam,
 * test/helpers/chunk-reads.ts), so no stall merges two parts into one agent chunk. Stops when the
 * gateway drops the response (a cut, a block).
 */
function writePaced(path: string, res: ServerResponse, parts: Buffer[]): void {
  const reads = responseReads(path);
  let closed = false;
  res.once('close', () => (closed = true));
  void (async () => {
    let sent = 0;
    for (const [i, p] of parts.entries()) {
      if (closed) return;
      res.write(p);
      sent += p.length;
      await reads.upTo(sent, `part ${i} of ${path}`, () => closed);
    }
    res.end();
  })()
    .catch((err: unknown) => {
      pacingErrors.push(String(err));
      res.destroy();
    })
    .finally(() => reads.close());
}

function upstreamHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  const text = url.searchParams.get('text') ?? 'hello';
  if (url.pathname.endsWith('/big')) {
    bigFinished = false;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG) });
    const piece = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    const pump = () => {
      while (sent < BIG / 2) {
        sent += piece.length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      if (sent === BIG / 2) {
        sent += 1; // mark: first half done, wait for the release
        new Promise<void>((r) => (releaseBig = r)).then(() => {
          sent -= 1;
          const rest = () => {
            while (sent < BIG) {
              sent += piece.length;
              if (!res.write(piece)) return void res.once('drain', rest);
            }
            bigFinished = true;
            res.end();
          };
          rest();
        });
      }
    };
    pump();
    return;
  }
  if (url.searchParams.has('chunks') || url.searchParams.has('halves')) {
    // Chunked (no Content-Length), each part written once the gateway read the previous one.
    const n = Number(url.searchParams.get('halves'));
    const parts = url.searchParams.has('halves') ? ['x'.repeat(n), 'y'.repeat(n)] : url.searchParams.get('chunks')!.split(',');
    res.writeHead(200, { 'content-type': 'text/plain' });
    writePaced(url.pathname, res, parts.map((p) => Buffer.from(p)));
    return;
  }
  const body = Buffer.from(JSON.stringify({ text, pad: 'p'.repeat(Number(url.searchParams.get('pad') ?? '0')) }));
  if (url.searchParams.has('gzparts') || url.searchParams.has('gzbomb')) {
    // A gzip stream sent chunked in three paced parts (or a bomb: 64 MiB of zeros).
    const gz = gzipSync(url.searchParams.has('gzbomb') ? Buffer.alloc(64 * 1024 * 1024) : body);
    const cut = [0, Math.floor(gz.length / 3), Math.floor((2 * gz.length) / 3), gz.length];
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    writePaced(url.pathname, res, [0, 1, 2].map((i) => gz.subarray(cut[i]!, cut[i + 1]!)));
    return;
  }
  if (url.searchParams.has('gzip')) {
    const gz = gzipSync(body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(gz.length) });
    res.end(gz);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), etag: '"v1"' });
  res.end(body);
}

before(async () => {
  agent = await spawnAgent('test/integration/agents/fixtures/response-agent.ts', ['--socket', sock]);
  up = await startUpstream((req, res) => upstreamHandler(req, res));
  gw = await startGateway({
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents {
  agent "rbuf" { unix-socket "${sock}"; events "response_headers" "response_body"; max-response-body-bytes ${LIMIT}; timeout-ms 3000 }
  agent "rstream" { unix-socket "${sock}"; events "response_body"; response-body-mode "stream"; timeout-ms 3000 }
  agent "rhybrid" { unix-socket "${sock}"; events "response_body"; response-body-mode "hybrid:1024"; timeout-ms 3000 }
  agent "reqonly" { unix-socket "${sock}"; events "request_headers"; timeout-ms 3000 }
  agent "gone-stream" { unix-socket "${join(tmp.dir, 'missing.sock')}"; events "response_body"; response-body-mode "stream"; timeout-ms 300; pool { reconnect-interval-ms 100 } }
  agent "gone" { unix-socket "${join(tmp.dir, 'missing.sock')}"; events "response_body"; timeout-ms 300; pool { reconnect-interval-ms 100 } }
}
filters {
  filter "rbuf-closed" { type "agent"; agent "rbuf"; failure-mode "closed" }
  filter "rbuf-open" { type "agent"; agent "rbuf"; failure-mode "open" }
  filter "rstream" { type "agent"; agent "rstream"; failure-mode "closed" }
  filter "reqonly" { type "agent"; agent "reqonly" }
  filter "rhybrid" { type "agent"; agent "rhybrid"; failure-mode "closed" }
  filter "gone-closed" { type "agent"; agent "gone"; failure-mode "closed" }
  filter "gone-open" { type "agent"; agent "gone"; failure-mode "open" }
  filter "gone-stream-closed" { type "agent"; agent "gone-stream"; failure-mode "closed" }
  filter "gone-stream-open" { type "agent"; agent "gone-stream"; failure-mode "open" }
}
waf { body-inspection { decompress #true } }
routes {
  route "buf" { matches { path-prefix "/buf/" }; upstream "backend"; filters "rbuf-closed" }
  route "bufopen" { matches { path-prefix "/bufopen/" }; upstream "backend"; filters "rbuf-open" }
  route "stream" { matches { path-prefix "/stream/" }; upstream "backend"; filters "rstream" }
  route "hybrid" { matches { path-prefix "/hybrid/" }; upstream "backend"; filters "rhybrid" }
  route "reqonly" { matches { path-prefix "/reqonly/" }; upstream "backend"; filters "reqonly" }
  route "gone-closed" { matches { path-prefix "/gone-closed/" }; upstream "backend"; filters "gone-closed" }
  route "gone-stream-closed" { matches { path-prefix "/gone-stream-closed/" }; upstream "backend"; filters "gone-stream-closed" }
  route "gone-stream-open" { matches { path-prefix "/gone-stream-open/" }; upstream "backend"; filters "gone-stream-open" }
  route "gone-open" { matches { path-prefix "/gone-open/" }; upstream "backend"; filters "gone-open" }
  route "plain" { matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "127.0.0.1:${up.port}" } }
`,
  });
  port = gw.address('http').port;
});

after(async () => {
  releaseBig?.();
  await gw?.close();
  await up?.close();
  await agent?.stop();
  tmp.cleanup();
  assert.deepEqual(pacingErrors, [], 'the upstream paced its parts by the gateway\'s reads');
});

interface Got {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
  /** false when the connection was cut before the response ended */
  complete: boolean;
}

function get(path: string, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let ended = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (ended = true));
      res.on('error', () => undefined);
      res.on('close', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), complete: ended && res.complete }));
    });
    req.on('error', reject);
    req.end();
  });
}

const q = (s: string) => encodeURIComponent(s);
const eventsFor = (traceStart: number) => agent.lines.slice(traceStart).filter((l) => l.seen === 'response_body');

test('buffer mode: the agent sees the whole body once, before the headers go out', async () => {
  const mark = agent.lines.length;
  const r = await get(`/buf/a?text=${q('all good')}`);
  assert.equal(r.status, 200);
  const expected = JSON.stringify({ text: 'all good', pad: '' });
  assert.equal(r.body.toString(), expected);
  assert.equal(r.headers['x-agent-saw-sha256'], sha256(expected), 'body reply header ops apply (headers were held)');
  assert.equal(r.headers['x-agent-status-seen'], '200', 'response_headers events still work');
  assert.equal(r.headers['content-length'], String(expected.length));
  const ev = eventsFor(mark);
  assert.equal(ev.length, 1);
  assert.equal(ev[0]!.chunk_index, 0);
  assert.equal(ev[0]!.is_last, true);
  assert.equal(ev[0]!.total_size, expected.length);
  assert.equal(ev[0]!.bytes_sent, expected.length);
});

test('buffer mode: a block becomes the client response; nothing of the upstream body leaks', async () => {
  const r = await get(`/buf/b?text=${q('the forbidden secret')}`);
  assert.equal(r.status, 451);
  assert.equal(r.body.toString(), 'response blocked');
  assert.ok(!r.body.includes('secret'));
  assert.equal(r.headers['x-correlation-id'] !== undefined, true);
  const blocked = (await gw.metrics.registry.getSingleMetric('sentinel_blocked_requests_total')!.get()).values;
  assert.ok(blocked.some((v) => v.labels.reason === 'agent_blocked' && v.value >= 1));
});

test('buffer mode: a replacement body gets a matching Content-Length', async () => {
  const r = await get(`/buf/c?text=${q('please mutate-me now')}&pad=3000`);
  assert.equal(r.status, 200);
  const expected = JSON.stringify({ text: 'please MUTATED now', pad: 'p'.repeat(3000) });
  assert.equal(r.body.toString(), expected);
  assert.equal(r.headers['content-length'], String(Buffer.byteLength(expected)));
});

test('gzip responses: inspected decoded, the client gets the original bytes; a decoded replacement drops the coding', async () => {
  const plain = JSON.stringify({ text: 'zipped fine', pad: 'p'.repeat(5000) });
  const r = await get(`/buf/gz?gzip=1&text=${q('zipped fine')}&pad=5000`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.equal(r.headers['x-agent-saw-sha256'], sha256(plain), 'the agent saw the decoded body');
  assert.equal(gunzipSync(r.body).toString(), plain);
  assert.equal(r.headers['content-length'], String(r.body.length));
  const blocked = await get(`/buf/gz?gzip=1&text=${q('forbidden inside gzip')}`);
  assert.equal(blocked.status, 451, 'a match hidden by gzip is found');
  const mutated = await get(`/buf/gz?gzip=1&text=${q('mutate-me')}`);
  assert.equal(mutated.status, 200);
  assert.equal(mutated.headers['content-encoding'], undefined);
  assert.equal(mutated.body.toString(), JSON.stringify({ text: 'MUTATED', pad: '' }));
});

test('body over max-response-body-bytes: fail-closed 502, fail-open skips the agent and passes the bytes', async () => {
  const closed = await get(`/buf/big1?pad=${LIMIT}`);
  assert.equal(closed.status, 502);
  const open = await get(`/bufopen/big1?pad=${LIMIT}&text=${q('forbidden but too big to look at')}`);
  assert.equal(open.status, 200);
  assert.equal(open.body.length, JSON.stringify({ text: 'forbidden but too big to look at', pad: 'p'.repeat(LIMIT) }).length);
  assert.equal(open.headers['x-agent-saw-sha256'], undefined);
  // chunked (no Content-Length): found while buffering
  const chunkedClosed = await get('/buf/big2?halves=40000');
  assert.equal(chunkedClosed.status, 502);
  const chunkedOpen = await get('/bufopen/big2?halves=40000');
  assert.equal(chunkedOpen.status, 200);
  assert.equal(chunkedOpen.body.toString(), 'x'.repeat(40_000) + 'y'.repeat(40_000));
});

test('stream mode: chunks reach the agent as they arrive; the body is forwarded intact', async () => {
  const mark = agent.lines.length;
  const r = await get('/stream/a?chunks=one-,two-,three');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'one-two-three');
  assert.equal(r.headers['x-agent-saw-sha256'], undefined, 'headers were out before the agent answered');
  // one event per upstream write (the writes are paced by the gateway's reads), then the empty last
  const ev = eventsFor(mark);
  assert.deepEqual(
    ev.map((e) => [e.chunk_index, e.bytes]),
    [[0, 4], [1, 4], [2, 5], [3, 0]],
  );
  assert.equal(ev.at(-1)!.is_last, true);
  assert.ok(ev.slice(0, -1).every((e) => e.is_last === false));
  assert.equal(ev.at(-1)!.bytes_sent, 13);
});

test('stream mode: chunk replacement and drop; no Content-Length because the length may change', async () => {
  const r = await get('/stream/b?chunks=keep-,mutate-me-,drop-me,end');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'keep-MUTATED-end');
  assert.equal(r.headers['content-length'], undefined);
  assert.equal(r.headers['transfer-encoding'], 'chunked');
});

test('stream mode over gzip: the agent sees decoded chunks, the client the original stream; mutation refused; bomb cut', async () => {
  const mark = agent.lines.length;
  const plain = JSON.stringify({ text: 'gz stream', pad: 'p'.repeat(20_000) });
  const r = await get(`/stream/gz?gzparts=1&text=${q('gz stream')}&pad=20000`);
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(r.body).toString(), plain);
  const ev = eventsFor(mark);
  assert.ok(ev.length >= 2, `events: ${ev.length}`);
  assert.equal(
    ev.reduce((n, e) => n + (e.bytes as number), 0),
    plain.length,
    'decoded bytes reached the agent',
  );
  assert.equal(ev.at(-1)!.is_last, true);
  assert.equal(ev.at(-1)!.total_size, plain.length);
  const blocked = await get(`/stream/gz?gzparts=1&text=${q('forbidden')}`);
  assert.equal(blocked.complete, false, 'a match inside the gzip stream cuts the response');
  const mutated = await get(`/stream/gz?gzparts=1&text=${q('mutate-me')}`);
  assert.equal(gunzipSync(mutated.body).toString(), JSON.stringify({ text: 'mutate-me', pad: '' }), 'the compressed stream is not corrupted by a replacement');
  const bomb = await get('/stream/gz?gzbomb=1');
  assert.equal(bomb.complete, false, 'fail-closed: a bomb in stream mode cuts the connection');
  const values = (await gw.metrics.registry.getSingleMetric('sentinel_decompression_total')!.get()).values;
  assert.ok(values.some((v) => v.labels.encoding === 'gzip' && (v.labels.result === 'ratio_exceeded' || v.labels.result === 'size_exceeded')));
});

test('stream mode: a block after the headers went out cuts the connection', async () => {
  const r = await get('/stream/c?chunks=first-,cut-here,never-sent');
  assert.equal(r.status, 200, 'the status line was already sent');
  assert.equal(r.complete, false, 'the response was cut, not ended cleanly');
  assert.ok(!r.body.includes('never-sent'));
  assert.ok(!r.body.includes('cut-here'));
});

test('hybrid:1024: a small declared body is buffered (block before headers), a larger one streamed', async () => {
  const small = await get(`/hybrid/a?text=${q('fine')}`);
  assert.equal(small.status, 200);
  assert.ok(small.headers['x-agent-saw-sha256'], 'buffered: body reply header ops applied');
  assert.equal((await get(`/hybrid/b?text=${q('forbidden')}`)).status, 451);
  const large = await get(`/hybrid/c?text=${q('fine')}&pad=2000`);
  assert.equal(large.status, 200);
  assert.equal(large.headers['x-agent-saw-sha256'], undefined, 'streamed: headers were out first');
  assert.equal(large.body.toString(), JSON.stringify({ text: 'fine', pad: 'p'.repeat(2000) }));
  const cut = await get(`/hybrid/d?text=${q('forbidden')}&pad=2000`);
  assert.equal(cut.complete, false, 'streamed block cuts the connection');
});

test('an unreachable response_body agent: fail-closed 503 before the headers, fail-open passes', async () => {
  const closed = await get('/gone-closed/x?text=hi');
  assert.equal(closed.status, 503);
  assert.equal(closed.body.toString(), 'Agent unavailable');
  const open = await get('/gone-open/x?text=hi');
  assert.equal(open.status, 200);
  assert.equal(open.body.toString(), JSON.stringify({ text: 'hi', pad: '' }));
});

test('an unreachable stream-mode agent: fail-closed cuts the response after the headers, fail-open passes it whole', async () => {
  const closed = await get('/gone-stream-closed/x?chunks=a,b,c');
  assert.equal(closed.status, 200, 'headers went out before the first chunk');
  assert.equal(closed.complete, false);
  assert.equal(closed.body.length, 0, 'no unvetted byte reached the client');
  const open = await get('/gone-stream-open/x?chunks=a,b,c');
  assert.equal(open.status, 200);
  assert.equal(open.complete, true);
  assert.equal(open.body.toString(), 'abc');
});

test('HEAD responses skip body inspection and keep the upstream Content-Length', async () => {
  const r = await get('/buf/head?text=abc', 'HEAD');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], String(JSON.stringify({ text: 'abc', pad: '' }).length));
});

/** Reads /big until the first bytes arrive, checks the upstream has not finished, releases it, reads the rest. */
async function streamsWithoutBuffering(path: string): Promise<void> {
  releaseBig = undefined;
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      assert.equal(res.statusCode, 200);
      let bytes = 0;
      let released = false;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (!released && releaseBig) {
          released = true;
          assert.equal(bigFinished, false, 'first bytes arrived before the upstream sent its last byte');
          releaseBig();
        }
      });
      res.on('end', () => {
        try {
          assert.ok(released, 'the upstream was released after the first bytes');
          assert.equal(bytes, BIG);
          resolve();
        } catch (err) {
          reject(err as Error);
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('no response body agent on the route: a 5 MiB response streams through without buffering', async () => {
  await streamsWithoutBuffering('/plain/big');
  await streamsWithoutBuffering('/reqonly/big');
});

test('stream mode does not buffer either', async () => {
  await streamsWithoutBuffering('/stream/big');
});
