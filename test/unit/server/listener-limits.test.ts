// Pure parts of the listener limits: how the KDL values become server limits, the HTTP/2 header
// size count, and the connection gate's bookkeeping (with stand-in sockets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import { ConnectionGate, DEFAULT_MAX_CONNECTIONS_PER_CLIENT, headerListBytes, http1ServerOptions, listenerLimits, type GateLimits, type RejectReason } from '../../../src/server/listener-limits.ts';
import type { CompiledConfig, CompiledListener } from '../../../src/config/compile.ts';

const listener = (o: Partial<CompiledListener>): CompiledListener => ({ requestTimeoutMs: 60_000, keepAliveTimeoutMs: 75_000, keepAliveMaxRequests: undefined, ...o }) as CompiledListener;
const config = (limits: Record<string, number>): CompiledConfig => ({ limits: { 'max-header-size-bytes': 8192, ...limits } }) as unknown as CompiledConfig;

test('listenerLimits: KDL values to server limits', () => {
  const cases: { name: string; limits: Record<string, number>; l: Partial<CompiledListener>; want: Partial<ReturnType<typeof listenerLimits>> }[] = [
    { name: 'defaults', limits: {}, l: {}, want: { headersTimeoutMs: 10_000, requestTimeoutMs: 60_000, keepAliveTimeoutMs: 75_000, maxHeaderSize: 8192, maxRequestsPerSocket: undefined } },
    { name: 'header timeout from limits', limits: { 'client-header-timeout-secs': 3 }, l: { requestTimeoutMs: 5000 }, want: { headersTimeoutMs: 3000, requestTimeoutMs: 5000 } },
    { name: 'header timeout never above the request timeout', limits: { 'client-header-timeout-secs': 30 }, l: { requestTimeoutMs: 5000 }, want: { headersTimeoutMs: 5000 } },
    { name: 'request timeout 0 (off) leaves the header timeout', limits: { 'client-header-timeout-secs': 4 }, l: { requestTimeoutMs: 0 }, want: { headersTimeoutMs: 4000, requestTimeoutMs: 0 } },
    { name: 'keepalive-max-requests 0 is no limit', limits: {}, l: { keepAliveMaxRequests: 0 }, want: { maxRequestsPerSocket: undefined } },
    { name: 'keepalive-max-requests', limits: {}, l: { keepAliveMaxRequests: 50 }, want: { maxRequestsPerSocket: 50 } },
    { name: 'header size', limits: { 'max-header-size-bytes': 4096 }, l: {}, want: { maxHeaderSize: 4096 } },
  ];
  for (const c of cases) {
    const got = listenerLimits(config(c.limits), listener(c.l));
    for (const [k, v] of Object.entries(c.want)) assert.equal(got[k as keyof typeof got], v, `${c.name}: ${k}`);
  }
  const opts = http1ServerOptions(listenerLimits(config({}), listener({ keepAliveMaxRequests: 7 })));
  assert.equal(opts.connectionsCheckingInterval, 1000);
});

test('headerListBytes counts name and value plus separators, like an HTTP/1.1 header section', () => {
  const cases: [string[], number][] = [
    [[], 0],
    [[':method', 'GET'], 7 + 2 + 3 + 2],
    [['x-big', 'a'.repeat(9000)], 5 + 2 + 9000 + 2],
    [[':path', '/', 'host', 'a'], 5 + 2 + 1 + 2 + 4 + 2 + 1 + 2],
  ];
  for (const [raw, want] of cases) assert.equal(headerListBytes(raw), want, JSON.stringify(raw).slice(0, 40));
});

class FakeSocket extends EventEmitter {
  destroyed = false;
  constructor(readonly remoteAddress: string) {
    super();
  }
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }
}

function gateWith(limits: Partial<GateLimits>) {
  const rejected: RejectReason[] = [];
  const server = new EventEmitter();
  const gate = new ConnectionGate(() => ({ maxTotal: undefined, perClient: DEFAULT_MAX_CONNECTIONS_PER_CLIENT, exempt: () => false, ...limits }), (_l, r) => rejected.push(r));
  gate.watch(server as unknown as Server, 'l');
  const connect = (ip: string) => {
    const s = new FakeSocket(ip);
    server.emit('connection', s as unknown as Socket);
    return s;
  };
  return { gate, rejected, connect, server };
}

test('ConnectionGate: per-client cap, total cap, exemptions, slots given back on close', () => {
  const g = gateWith({ perClient: 2 });
  const a1 = g.connect('10.0.0.1');
  g.connect('10.0.0.1');
  const a3 = g.connect('10.0.0.1');
  const b1 = g.connect('10.0.0.2');
  assert.equal(a3.destroyed, true, 'third from the same peer');
  assert.equal(b1.destroyed, false, 'another peer is not affected');
  assert.deepEqual(g.rejected, ['max_connections_per_client']);
  assert.equal(g.gate.openConnections, 3);
  a1.destroy();
  assert.equal(g.gate.openConnections, 2);
  assert.equal(g.connect('10.0.0.1').destroyed, false, 'a slot given back is usable');

  const t = gateWith({ maxTotal: 2 });
  t.connect('10.0.0.1');
  t.connect('10.0.0.2');
  assert.equal(t.connect('10.0.0.3').destroyed, true);
  assert.deepEqual(t.rejected, ['max_total_connections']);

  const e = gateWith({ perClient: 1, exempt: (ip) => ip === '10.0.0.9' });
  e.connect('10.0.0.9');
  assert.equal(e.connect('10.0.0.9').destroyed, false, 'a trusted proxy is exempt');

  const d = gateWith({});
  d.server.emit('drop');
  assert.deepEqual(d.rejected, ['max_connections'], "net.Server's own maxConnections drop is counted");
});

test('ConnectionGate counts a client as the other per-client limits do: IPv6 per /64, IPv4-mapped as IPv4 (session 28)', () => {
  const g = gateWith({ perClient: 2 });
  g.connect('2001:db8:0:1::a');
  g.connect('2001:db8:0:1::b');
  assert.equal(g.connect('2001:db8:0:1:ffff::1').destroyed, true, 'a third address of the same /64');
  assert.equal(g.connect('2001:db8:0:2::a').destroyed, false, 'another /64');
  g.connect('127.0.0.1');
  g.connect('::ffff:127.0.0.1');
  assert.equal(g.connect('127.0.0.1').destroyed, true, 'IPv4 and IPv4-mapped are one client');
  const e = gateWith({ perClient: 1, exempt: (ip) => ip === '2001:db8::9' });
  e.connect('2001:db8::9');
  assert.equal(e.connect('2001:db8::9').destroyed, false, 'a trusted proxy is still exempt by its own address');
});
