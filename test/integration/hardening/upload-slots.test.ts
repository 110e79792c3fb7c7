// OPEN FINDING (session 12 audit), kept as a todo test: request bodies are streamed to the
// upstream as they arrive, so a client that trickles its uploads holds one upstream connection per
// upload for up to the listener's request-timeout-secs. With the defaults, one address may open 100
// connections (max-connections-per-client) and a target's pool has 100 sockets (connection-pool
// max-connections): one client can take every socket and every other client's request queues until
// it times out. Here with a pool of 4. Fix candidates: buffer small bodies before picking a target
// (nginx's proxy_request_buffering), and/or cap the streaming uploads in flight per client address.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let base: string;

before(async () => {
  up = await startUpstream();
  const g = await gatewayFrom(simpleConfig(up.address, { upstream: 'connection-pool { max-connections 4 }' }));
  gw = g.gw;
  base = g.url();
});

after(async () => {
  await gw.close();
  await up.close();
});

test('four trickled uploads from one client do not take every upstream socket from the others', { todo: 'open: streamed uploads hold pool sockets (docs/security.md, "Open findings")' }, async () => {
  const port = gw.address('http').port;
  const socks: net.Socket[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write('POST /slow HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\nx');
      socks.push(s);
    }
    await new Promise((r) => setTimeout(r, 300));
    const r = await fetch(`${base}/other`, { signal: AbortSignal.timeout(2000) });
    assert.equal(r.status, 200);
  } finally {
    for (const s of socks) s.destroy();
  }
});
