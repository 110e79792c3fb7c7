// The `upstreams` block from KDL text through the real config loader into UpstreamGroups:
// every target syntax, IPv6, host names resolved at connect time, and config errors.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { loadAny } from '../../../src/server/gateway.ts';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import { fakeServices, pickContext, startServer, type TestServer } from './helpers.ts';

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

const wrap = (upstreams: string) => `
system { }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u" } }
upstreams { ${upstreams} }
`;

test('all target syntaxes, weights and IPv6 decode into one target list', () => {
  const cfg = loadAny({
    configText: wrap(`
  upstream "u" {
    target "10.0.0.1:8080" weight=2
    target { address "10.0.0.2:8080"; weight 3 }
    target address="[2001:db8::1]:8443" weight=4
    targets {
      target "backend.internal:9000"
    }
    load-balancing "weighted-round-robin"
  }`),
  });
  const g = new UpstreamGroup({ id: 'u', config: cfg.upstreams.get('u')!, baseDir: '.', services: fakeServices() });
  assert.deepEqual(
    g.targets.map((t) => [t.host, t.port, t.weight]),
    [
      ['10.0.0.1', 8080, 2],
      ['10.0.0.2', 8080, 3],
      ['2001:db8::1', 8443, 4],
      ['backend.internal', 9000, 1],
    ],
  );
  assert.equal(g.origin(g.targets[2]!), 'http://[2001:db8::1]:8443');
  assert.equal(g.algorithm, 'weighted_round_robin');
  void g.close();
});

test('bare address form and host names resolved through DNS at connect time', async () => {
  const s = await startServer((_req, res) => res.end('via localhost'));
  servers.push(s);
  const cfg = loadAny({ configText: wrap(`upstream "u" { address "localhost:${s.port}" }`) });
  const g = new UpstreamGroup({ id: 'u', config: cfg.upstreams.get('u')!, baseDir: '.', services: fakeServices() });
  try {
    const p = g.select(pickContext())!;
    assert.equal(g.origin(p.target), `http://localhost:${s.port}`);
    const res = await request(g.origin(p.target) + '/', { dispatcher: g.dispatcher(p.target) });
    assert.equal(await res.body.text(), 'via localhost');
    g.report(p.target, { kind: 'response', status: res.statusCode, latencyMs: 1 });
  } finally {
    await g.close();
  }
});

test('config errors name the upstream and suggest a fix', () => {
  const cases: [string, RegExp][] = [
    [`upstream "u" { target "10.0.0.1:80"; load-balancing "least-conections" }`, /upstream "u".*unknown load-balancing algorithm "least-conections" \(did you mean "least_connections"\?\)/s],
    [`upstream "u" { target "10.0.0.1:80"; health-check { type "udp" } }`, /health-check type "udp" is not supported/],
    [`upstream "u" { target "10.0.0.1:80"; tls { ca-cert "/nonexistent/ca.pem" } }`, /tls > ca-cert: cannot read "\/nonexistent\/ca.pem": ENOENT/],
    [`upstream "u" { target "10.0.0.1:80"; load-balancing "consistent_hash" { hash-key "query:x" } }`, /invalid hash-key "query:x"/],
    [`upstream "u" { target "10.0.0.1:80"; health-check { type "http" { expected-status "ok" } } }`, /invalid expected-status "ok"/],
    [`upstream "u" { target "10.0.0.1:80"; http-version { min-version 2; max-version 1 } }`, /min-version is greater than max-version/],
  ];
  for (const [block, want] of cases) {
    assert.throws(() => loadAny({ configText: wrap(block) }), (e: Error) => {
      assert.match(e.message, want);
      return true;
    });
  }
});

test('sticky block options decode and drive Set-Cookie', () => {
  const cfg = loadAny({
    configText: wrap(`
  upstream "u" {
    target "10.0.0.1:80"
    target "10.0.0.2:80"
    load-balancing "sticky" { cookie-name "LB"; cookie-ttl "30m"; cookie-secure #true; cookie-same-site "lax"; fallback "least-connections" }
  }`),
  });
  const g = new UpstreamGroup({ id: 'u', config: cfg.upstreams.get('u')!, baseDir: '.', services: fakeServices() });
  const p = g.select(pickContext())!;
  assert.match(p.setCookie!, /^LB=[0-9a-z]+; Path=\/; HttpOnly; Max-Age=1800; Secure; SameSite=Lax$/);
  g.report(p.target, { kind: 'response', status: 200, latencyMs: 1 });
  void g.close();
});
