// Chaos: an upstream that answers its headers at once and then trickles or stalls the body.
// Configured behaviour (docs/upstreams.md, "Connection pools and timeouts"): `read-secs` bounds the
// wait for headers (504) and the gap between body chunks; once headers went downstream a stall
// cuts the client connection (never a clean, truncated end); `request-secs` bounds the whole
// exchange. After every fault the gateway serves a normal request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';

const CHUNKS = 6;
let up: TestUpstream;
let g: Awaited<ReturnType<typeof gatewayFrom>>;
const timers = new Set<NodeJS.Timeout>();

/** Writes one chunk every `gapMs`, `count` times, then ends (unless the client went away). */
function trickle(res: http.ServerResponse, gapMs: number, count: number): void {
  let sent = 0;
  const t = setInterval(() => {
    if (res.destroyed) return void clearInterval(t);
    res.write(`chunk${sent}\n`);
    if (++sent === count) {
      clearInterval(t);
      timers.delete(t);
      res.end();
    }
  }, gapMs);
  timers.add(t);
}

before(async () => {
  up = await startUpstream((req, res) => {
    switch (req.url) {
      case '/trickle': // gaps well inside read-secs: the whole body arrives
        res.writeHead(200, { 'content-type': 'text/plain' });
        return trickle(res, 100, CHUNKS);
      case '/stall': // headers and one chunk, then nothing
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
        res.write('first chunk\n');
        return;
      case '/slow-headers': // headers never come within read-secs
        return;
      case '/endless': // every gap is short, but the body never ends within request-secs
        res.writeHead(200, { 'content-type': 'text/plain' });
        return trickle(res, 100, 1000);
      default:
        res.end('ok');
    }
  });
  g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "slow" } }
upstreams {
  upstream "slow" {
    target "${up.address}"
    timeouts { read-secs 1; request-secs 3 }
    retry-policy { max-attempts 1 }
  }
}
`);
});

after(async () => {
  for (const t of timers) clearInterval(t);
  await g?.gw.close();
  await up?.close();
});

/** Reads a response to the end; says how it finished: "end:<body>", "cut:<bytes>" or "status:<code>". */
function outcome(path: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get(`${g.url()}${path}`, { agent: false, timeout: 15_000 }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve(`status:${res.statusCode}`);
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(`end:${body}`));
      res.on('aborted', () => resolve(`cut:${body.length}`));
      res.on('error', () => resolve(`cut:${body.length}`));
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (e) => resolve(`error:${e.message}`));
  });
}

async function servesNormally(): Promise<void> {
  const r = await request(`${g.url()}/normal`, { timeoutMs: 10_000 });
  assert.equal(r.status, 200);
  assert.equal(r.body, 'ok');
}

test('a body that trickles with gaps inside read-secs arrives whole', async () => {
  const expected = Array.from({ length: CHUNKS }, (_, i) => `chunk${i}\n`).join('');
  assert.equal(await outcome('/trickle'), `end:${expected}`);
  await servesNormally();
});

test('a body that stalls after the headers: the client connection is cut (not a clean end), then a normal request is served', async () => {
  const o = await outcome('/stall');
  assert.match(o, /^cut:/, o);
  assert.ok(!o.startsWith('end:'), 'a truncated body must not look complete');
  await servesNormally();
});

test('headers that do not come within read-secs: 504, then a normal request is served', async () => {
  assert.equal(await outcome('/slow-headers'), 'status:504');
  await servesNormally();
});

test('a body that never ends within request-secs is cut, then a normal request is served', async () => {
  const o = await outcome('/endless');
  assert.match(o, /^cut:/, o);
  await servesNormally();
});
