// Request limits: 431 for too many / too large headers, 413 for bodies over the limit.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let base: string;

before(async () => {
  up = await startUpstream();
  const g = await gatewayFrom(
    simpleConfig(up.address, {
      top: 'limits { max-header-count 20; max-header-size-bytes 4096; max-body-size-bytes 1000 }',
      listener: 'request-timeout-secs 2',
    }),
  );
  gw = g.gw;
  base = g.url();
});
after(async () => {
  await gw.close();
  await up.close();
});

test('too many headers -> 431', async () => {
  const headers: Record<string, string> = {};
  for (let i = 0; i < 30; i++) headers[`x-h${i}`] = 'v';
  const r = await request(`${base}/x`, { headers });
  assert.equal(r.status, 431);
});

test('headers larger than max-header-size-bytes -> 431', async () => {
  const r = await request(`${base}/x`, { headers: { 'x-big': 'a'.repeat(8000) } });
  assert.equal(r.status, 431);
});

test('declared body over the limit -> 413 before anything reaches the upstream', async () => {
  const before = up.seen.length;
  const r = await request(`${base}/x`, { method: 'POST', body: 'a'.repeat(2000) });
  assert.equal(r.status, 413);
  assert.equal(up.seen.length, before);
});

test('chunked body over the limit -> 413', async () => {
  const r = await request(`${base}/x`, { method: 'POST', body: 'a'.repeat(5000), headers: { 'transfer-encoding': 'chunked' } });
  assert.equal(r.status, 413);
});

test('a body within the limit passes', async () => {
  const r = await request(`${base}/x`, { method: 'POST', body: 'a'.repeat(900) });
  assert.equal(r.status, 200);
});

test('a slow client that never finishes its headers is disconnected', async () => {
  const { port } = gw.address('http');
  const closed = await new Promise<string>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET /x HTTP/1.1\r\nHost: a\r\n'));
    let data = '';
    s.on('data', (d) => (data += d.toString()));
    s.on('close', () => resolve(data));
    setTimeout(() => {
      s.destroy();
      resolve('still open');
    }, 15_000).unref();
  });
  assert.notEqual(closed, 'still open');
  assert.match(closed, /^$|408/);
});
