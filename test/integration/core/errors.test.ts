// Upstream failure modes -> the error taxonomy: refused/reset 502, hang 504, death mid-body
// destroys the downstream connection; error bodies never leak upstream addresses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { closedPort, closeServer, startUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function rawServer(onConn: (s: net.Socket) => void): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    onConn(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // A server that never reads would never see the gateway hang up: destroy its sockets at the end.
  cleanups.push(() => closeServer(server, sockets));
  return (server.address() as AddressInfo).port;
}

async function gw(target: string, extra: Parameters<typeof simpleConfig>[1] = {}) {
  const g = await gatewayFrom(simpleConfig(target, extra));
  cleanups.push(() => g.gw.close());
  return g;
}

test('connection refused -> 502 without the upstream address', async () => {
  const port = await closedPort();
  const { url } = await gw(`127.0.0.1:${port}`);
  const r = await request(`${url()}/x`);
  assert.equal(r.status, 502);
  assert.doesNotMatch(r.body, new RegExp(String(port)));
  assert.doesNotMatch(r.body, /127\.0\.0\.1/);
  assert.equal(JSON.parse(r.body).status, 502);
  assert.ok(r.headers['x-correlation-id']);
});

test('upstream resets the connection -> 502', async () => {
  const port = await rawServer((s) => s.once('data', () => s.resetAndDestroy()));
  const { url } = await gw(`127.0.0.1:${port}`);
  const r = await request(`${url()}/x`);
  assert.equal(r.status, 502);
});

test('upstream hangs -> 504 after the route timeout', async () => {
  const port = await rawServer(() => undefined); // accepts, never answers
  const { url } = await gw(`127.0.0.1:${port}`, { route: 'policies { timeout-secs 0.5 }' });
  const r = await request(`${url()}/x`);
  assert.equal(r.status, 504);
});

test('upstream dies mid-body -> the client connection is cut, not ended cleanly', async () => {
  const port = await rawServer((s) =>
    s.once('data', () => {
      s.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n' + 'x'.repeat(1000));
      setTimeout(() => s.destroy(), 50);
    }),
  );
  const { url } = await gw(`127.0.0.1:${port}`);
  const outcome = await new Promise<string>((resolve) => {
    const req = http.get(`${url()}/x`, { agent: false }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => resolve(`ended after ${n}`));
      res.on('error', () => resolve('error'));
      res.on('aborted', () => resolve('aborted'));
    });
    req.on('error', () => resolve('error'));
  });
  assert.notEqual(outcome, 'ended after 100000');
  assert.ok(outcome === 'aborted' || outcome === 'error', outcome);
});

test('a client abort cancels the upstream request', async () => {
  let upstreamClosed!: () => void;
  const closed = new Promise<void>((r) => (upstreamClosed = r));
  const up = await startUpstream((req, res) => {
    res.writeHead(200);
    res.write('partial');
    req.socket.once('close', () => upstreamClosed());
  });
  cleanups.push(() => up.close());
  const { url } = await gw(up.address);
  await new Promise<void>((resolve) => {
    const req = http.get(`${url()}/slow`, { agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', () => undefined);
  });
  await closed; // resolves only if the gateway tore down the upstream side
  assert.ok(true);
});

test('no healthy target -> 503', async () => {
  const port = await closedPort();
  const { url } = await gw(`127.0.0.1:${port}`, { upstream: 'circuit-breaker { failure-threshold 1; timeout-seconds 30 }' });
  const first = await request(`${url()}/x`);
  // 502 from the failed attempt, or 503 if the breaker opened before a retry could pick a target
  assert.ok(first.status === 502 || first.status === 503, String(first.status));
  const second = await request(`${url()}/x`);
  assert.equal(second.status, 503);
  assert.match(second.body, /no healthy upstream/);
});

test('timeouts { request-secs } bounds the whole exchange -> 504', async () => {
  const port = await rawServer((s) => s.resume()); // reads the request, never answers
  const { url } = await gw(`127.0.0.1:${port}`, { upstream: 'timeouts { request-secs 0.5; read-secs 30 }' });
  const r = await request(`${url()}/x`);
  assert.equal(r.status, 504);
});
