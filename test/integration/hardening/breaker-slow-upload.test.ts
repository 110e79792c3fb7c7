// A breaker any client can trip by uploading slowly (audit30). `timeouts { request-secs }` bounds
// the whole exchange from the moment the gateway takes the request, the client's upload included;
// a timeout after the body had arrived was reported to passive health and the breaker as the
// target's (`reason="timeout"`). A client that trickles a body so that it completes shortly
// before request-secs leaves the target only the rest of it: any handler slower than that rest
// (here 1.5 s of a 3 s request-secs; a 10 ms handler with the body ending 5 ms before) times out
// and is charged, so `failure-threshold` such POSTs opened the breaker and every client got 503
// for `timeout-seconds`, renewable by the same few requests. Now such a timeout is answered 504
// but not charged when the upstream had the whole request for less than the time it is given
// (read-secs, or request-secs when shorter). Real upstream on loopback; raw-socket client.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { UNTIL_MS, turningTimeout } from '../../helpers/until.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let base: string;

before(async () => {
  // an ordinary handler: a POST takes 1.5 s (well inside request-secs 3 for a client that sends
  // its body at once), a GET answers at once
  up = await startUpstream((req, res) => {
    const answer = () => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    if (req.url === '/hang/upload') return; // a target that hangs: never answers
    if (req.method === 'POST') setTimeout(answer, 1500);
    else answer();
  });
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "hang" { matches { path-prefix "/hang/" }; upstream "hang" }
  route "app" { matches { path-prefix "/" }; upstream "app" }
}
upstreams {
  upstream "hang" { target "${up.address}"; circuit-breaker { failure-threshold 3; timeout-seconds 30 }; timeouts { request-secs 1 } }
  upstream "app" { target "${up.address}"; circuit-breaker { failure-threshold 3; timeout-seconds 30 }; timeouts { request-secs 3 } }
}
`);
  gw = g.gw;
  base = g.url();
});

after(async () => {
  await gw.close();
  await up.close();
});

/** A POST whose 10-byte body arrives in two halves `gapMs` apart; resolves with the status line's code. */
function slowPost(port: number, gapMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    const cancel = turningTimeout(UNTIL_MS, () => {
      s.destroy();
      resolve(0);
    });
    s.on('error', reject);
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      if (m) {
        cancel();
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.write('POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello');
    setTimeout(() => s.write('world'), gapMs);
  });
}

test('a client that sends its body at once gets the 1.5 s answer (the upstream is healthy)', async () => {
  const r = await request(`${base}/upload`, { method: 'POST', body: 'helloworld', headers: { 'content-type': 'text/plain' } });
  assert.equal(r.status, 200);
});

test('slow uploads that end before request-secs and leave the upstream too little of it: 504, and the breaker stays closed for everyone', async () => {
  const port = gw.address('http').port;
  // the body completes ~2 s into request-secs 3: the handler's 1.5 s cannot fit
  const statuses = await Promise.all([0, 1, 2, 3].map(() => slowPost(port, 2000)));
  assert.deepEqual(statuses, [504, 504, 504, 504]);
  for (let i = 0; i < 3; i++) {
    const r = await request(`${base}/after`);
    assert.equal(r.status, 200, `another client after the slow uploads: ${r.body}`);
  }
});

test('a target that hangs on a request sent at once is still charged for request-secs: its breaker opens', async () => {
  for (let i = 0; i < 3; i++) {
    const r = await request(`${base}/hang/upload`, { method: 'POST', body: 'helloworld', headers: { 'content-type': 'text/plain' } });
    assert.equal(r.status, 504);
  }
  const r = await request(`${base}/hang/other`);
  assert.equal(r.status, 503, 'the breaker of the hanging target is open');
});
