// Session 12 audit finding, fixed by request buffering (docs/security.md, "Request buffering"):
// bodies up to max-body-buffer-bytes are read before a target is picked, so a client that
// trickles its uploads holds no upstream socket; before, with the defaults one address could open
// 100 connections (max-connections-per-client) against a pool of 100 sockets (connection-pool
// max-connections) and queue every other client's requests until they timed out. Pool of 4 here.
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

test('four trickled uploads from one client do not take every upstream socket from the others', async () => {
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
