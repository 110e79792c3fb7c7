// Each generation registers, as Fastify plugins, exactly the features its config uses, in
// dependency order (read back from Fastify's printPlugins()), and a reload re-plans them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import Fastify from 'fastify';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';
import { FEATURES } from '../../../src/features.ts';
import { bodyInspectionFeature } from '../../../plugins/body-inspection/index.ts';

const listener = 'listeners { listener "http" { address "127.0.0.1:0" } }';
const builtinOnly = `${listener}
routes { route "status" { matches { path "/status" }; builtin-handler "status" } }`;

function proxied(target: string, top = '', route = ''): string {
  return `${listener}
system { graceful-shutdown-timeout-secs 1 }
routes {
  route "main" { matches { path-prefix "/" }; upstream "backend"; ${route} }
  route "status" { priority "high"; matches { path "/-/status" }; builtin-handler "status" }
}
upstreams { upstream "backend" { target "${target}" } }
${top}`;
}

function indexOf(list: string[], name: string): number {
  const i = list.indexOf(name);
  assert.notEqual(i, -1, `${name} is registered (got ${list.join(', ')})`);
  return i;
}

test('a builtin-only config registers routing, metrics and builtins and nothing of the proxy', async () => {
  const { gw, url } = await gatewayFrom(builtinOnly);
  try {
    assert.deepEqual(gw.current.features, ['metrics', 'routing', 'builtins']);
    assert.equal((await request(`${url()}/status`)).status, 200);
  } finally {
    await gw.close();
  }
});

test('a proxy config registers balancing, health and retry before forwarding; unused features stay out', async () => {
  const up = await startUpstream();
  const { gw, url } = await gatewayFrom(proxied(`127.0.0.1:${up.port}`));
  try {
    const f = gw.current.features;
    assert.deepEqual(f, ['metrics', 'routing', 'balancing', 'health', 'retry', 'forwarding', 'builtins']);
    for (const unused of ['discovery', 'websocket', 'rate-limit', 'agents', 'body-inspection', 'headers', 'tls']) assert.ok(!f.includes(unused), `${unused} is not registered`);
    assert.equal((await request(`${url()}/x`)).status, 200);
  } finally {
    await gw.close();
    await up.close();
  }
});

test('filters, global limits, websocket, discovery and agents register their features in dependency order', async () => {
  const up = await startUpstream();
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-features-'));
  const sock = join(dir, 'agent.sock'); // never listened on: the agent stays unreachable
  const targets = join(dir, 'targets.txt');
  writeFileSync(targets, `127.0.0.1:${up.port}\n`);
  const top = `
rate-limits { default-rps 1000; default-burst 1000 }
agents { agent "inspect" { unix-socket "${sock}"; events "request_headers" "request_body"; timeout-ms 200 } }
filters {
  filter "stamp" { type "headers"; set { "x-stamp" "1" } }
  filter "limit" { type "rate-limit"; max-rps 1000; burst 1000 }
  filter "inspect" { type "agent"; agent "inspect" }
}`;
  const kdl = proxied(`127.0.0.1:${up.port}`, top, 'filters "stamp" "limit"; websocket #true').replace(
    `upstream "backend" { target "127.0.0.1:${up.port}" }`,
    `upstream "backend" { target "127.0.0.1:${up.port}" }
  upstream "found" { discovery "file" { path "${targets}" } }`,
  );
  const { gw, url } = await gatewayFrom(kdl);
  try {
    const f = gw.current.features;
    assert.deepEqual([...f].sort(), ['agents', 'balancing', 'body-inspection', 'builtins', 'discovery', 'forwarding', 'headers', 'health', 'metrics', 'rate-limit', 'retry', 'routing', 'websocket'].sort());
    assert.ok(indexOf(f, 'discovery') < indexOf(f, 'balancing'));
    assert.ok(indexOf(f, 'balancing') < indexOf(f, 'forwarding'));
    assert.ok(indexOf(f, 'health') < indexOf(f, 'forwarding'));
    assert.ok(indexOf(f, 'retry') < indexOf(f, 'forwarding'));
    assert.ok(indexOf(f, 'forwarding') < indexOf(f, 'websocket'));
    assert.ok(indexOf(f, 'agents') < indexOf(f, 'body-inspection'));
    // the headers filter contributed by its plugin runs on the route
    const r = await request(`${url()}/y`);
    assert.equal(r.status, 200);
    assert.equal(up.seen.at(-1)?.headers['x-stamp'], '1');

    // a reload to a config without those features re-plans the registration
    await gw.reload(proxied(`127.0.0.1:${up.port}`));
    assert.deepEqual(gw.current.features, ['metrics', 'routing', 'balancing', 'health', 'retry', 'forwarding', 'builtins']);
  } finally {
    await gw.close();
    await up.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('avvio refuses a feature registered without its dependency', async () => {
  const app = Fastify();
  app.register(bodyInspectionFeature.plugin, { host: undefined as never });
  await assert.rejects(async () => app.ready(), /dependency 'agents' of plugin 'body-inspection' is not registered/);
  await app.close();
});

test('every feature plugin is named, wraps fastify-plugin for Fastify 5 and lists known dependencies', () => {
  const names = new Set(FEATURES.map((f) => f.name));
  assert.equal(names.size, FEATURES.length);
  for (const f of FEATURES) {
    const meta = (f.plugin as unknown as Record<symbol, { name: string; fastify: string; dependencies: string[] } | undefined>)[Symbol.for('plugin-meta')];
    assert.equal(meta?.name, f.name);
    assert.equal(meta?.fastify, '5.x');
    assert.deepEqual(meta?.dependencies, [...f.dependencies]);
    for (const d of [...f.dependencies, ...(f.after ?? [])]) assert.ok(names.has(d), `${f.name} -> ${d}`);
  }
});

test('a caching route registers the caching feature after forwarding and before builtins; its filter runs after the route filters', async () => {
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', 'content-length': '2' });
    res.end('ok');
  });
  const top = `filters { filter "stamp" { type "headers"; set { "x-stamp" "1" } } }`;
  const { gw, url } = await gatewayFrom(proxied(`127.0.0.1:${up.port}`, top, 'filters "stamp"; cache { enabled #true }'));
  try {
    const f = gw.current.features;
    assert.ok(indexOf(f, 'forwarding') < indexOf(f, 'caching'));
    assert.ok(indexOf(f, 'caching') < indexOf(f, 'builtins'));
    assert.equal((await request(`${url()}/c`)).status, 200);
    assert.equal((await request(`${url()}/c`)).status, 200);
    // the second request was a hit: the origin saw one request, stamped by the route's filter first
    assert.equal(up.seen.length, 1);
    assert.equal(up.seen[0]?.headers['x-stamp'], '1');
    await gw.reload(proxied(`127.0.0.1:${up.port}`, top, 'filters "stamp"; cache { enabled #false }'));
    assert.ok(!gw.current.features.includes('caching'));
  } finally {
    await gw.close();
    await up.close();
  }
});
