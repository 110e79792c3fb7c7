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
import { notHungTurning, until } from '../../helpers/until.ts';

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
    // the four uploads are in the gateway (not a 300 ms pause: a loaded machine may not have read them yet)
    await until('four uploads in flight', () => gw.current.activeRequests === 4);
    // bounded by event-loop time, not a 2 s wall clock a loaded machine can outlast: taken sockets
    // would queue this request until the uploads end, which they do not before the finally below
    const r = await notHungTurning('a request beside four trickled uploads', fetch(`${base}/other`));
    assert.equal(r.status, 200);
    assert.ok(gw.current.activeRequests >= 4, 'the four uploads were still held when it was answered');
  } finally {
    for (const s of socks) s.destroy();
  }
});
