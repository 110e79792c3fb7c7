// discovery "file" through the real gateway: the targets file is rewritten mid-test. Checks:
// discovered targets are added to static ones and get traffic, a removed target stops getting
// traffic, a target that stays keeps its open breaker across a refresh AND a config reload
// (gateway.reload, what SIGHUP runs), an empty discovery-only pool answers 503.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { eventually, serversOnOnePort, writeTargets, type NamedServer } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-file-discovery-'));
const gateways: Gateway[] = [];
const closers: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all(closers.map((c) => c()));
  rmSync(dir, { recursive: true, force: true });
});

function config(staticTarget: string, file: string, marker: string): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "admin" { priority "high"; matches { path "/admin/upstreams" }; builtin-handler "upstreams" }
  route "metrics" { priority "high"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "main" {
    matches { path-prefix "/" }
    upstream "pool"
    policies { response-headers { set { "X-Gen" "${marker}" } } }
  }
}
upstreams {
  upstream "pool" {
    target "${staticTarget}"
    discovery "file" { path "${file}"; watch-interval 0.1 }
    load-balancing "round_robin"
    circuit-breaker { failure-threshold 2; success-threshold 1; timeout-seconds 60; failure-status-codes 503 }  // b fails with 503 below
    retry-policy { max-attempts 1 }
  }
  upstream "empty" { discovery "file" { path "${file}.empty"; watch-interval 0.1 } }
}`;
}

interface Snap {
  upstreams: { id: string; discovery?: { kind: string; targets: number }; targets: { address: string; circuit_breaker: string }[] }[];
}

test('file discovery: union with static, rewrite mid-test, breaker kept across refresh and reload', async () => {
  const { servers, close } = await serversOnOnePort(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  closers.push(close);
  const [s, a, b, c] = servers as [NamedServer, NamedServer, NamedServer, NamedServer];
  const file = join(dir, 'backends.txt');
  writeTargets(file, ['# discovered', a.address, `${b.address} 1`]);
  writeTargets(`${file}.empty`, ['# nothing yet']);
  const g = await gatewayFrom(config(s.address, file, 'one'));
  gateways.push(g.gw);
  const base = g.url();
  const hit = async () => (await request(`${base}/x`)).body;
  const snap = async () => JSON.parse((await request(`${base}/admin/upstreams`)).body) as Snap;
  const pool = async () => (await snap()).upstreams.find((u) => u.id === 'pool')!;

  // resolved before serving: the first requests already reach the discovered targets
  const first = new Set<string>();
  for (let i = 0; i < 6; i++) first.add(await hit());
  assert.deepEqual([...first].sort(), ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  assert.deepEqual((await pool()).discovery, { kind: 'file', targets: 2 });

  // b starts failing: its breaker opens after 2 failures
  b.status = 503;
  await eventually('b breaker open', async () => {
    await hit();
    return (await pool()).targets.find((t) => t.address === b.address)!.circuit_breaker === 'open';
  });

  // rewrite: a leaves, b stays, c joins
  writeTargets(file, [b.address, c.address]);
  await eventually('c in the pool', async () => (await pool()).targets.some((t) => t.address === c.address));
  let targets = (await pool()).targets;
  assert.deepEqual(targets.map((t) => t.address), [s.address, b.address, c.address]);
  assert.equal(targets.find((t) => t.address === b.address)!.circuit_breaker, 'open', 'b kept its open breaker across the refresh');
  const aHits = a.hits;
  const bHits = b.hits;
  const after1 = new Set<string>();
  for (let i = 0; i < 8; i++) after1.add(await hit());
  assert.deepEqual([...after1].sort(), ['127.0.0.2', '127.0.0.5']);
  assert.equal(a.hits, aHits, 'the removed target gets no traffic');
  assert.equal(b.hits, bHits, 'the open target gets no traffic');

  // a config reload keeps b's breaker open
  await g.gw.reload(config(s.address, file, 'two'));
  const r = await request(`${base}/x`);
  assert.equal(r.headers['x-gen'], 'two');
  targets = (await pool()).targets;
  assert.deepEqual(targets.map((t) => t.address), [s.address, b.address, c.address]);
  assert.equal(targets.find((t) => t.address === b.address)!.circuit_breaker, 'open', 'b kept its open breaker across the reload');
  for (let i = 0; i < 6; i++) assert.notEqual(await hit(), '127.0.0.4');
  assert.equal(b.hits, bHits);

  // a malformed rewrite keeps the last good set and is counted as an error
  writeTargets(file, [c.address, 'not-a-target']);
  await eventually('error counted', async () => /sentinel_discovery_refresh_total\{upstream="pool",kind="file",result="error"\} [1-9]/.test((await request(`${base}/metrics`)).body));
  assert.deepEqual((await pool()).targets.map((t) => t.address), [s.address, b.address, c.address]);
  const m = (await request(`${base}/metrics`)).body;
  assert.match(m, /sentinel_discovery_refresh_total\{upstream="pool",kind="file",result="changed"\} [1-9]/);
  assert.match(m, /sentinel_discovery_targets\{upstream="pool"\} 2/);
  assert.ok(!m.includes(`upstream:pool:${a.address}"`), 'no breaker series for the removed target');
});

test('a discovery-only upstream with an empty answer answers 503 "no healthy upstream", then serves once the file lists a target', async () => {
  const { servers, close } = await serversOnOnePort(['127.0.0.6']);
  closers.push(close);
  const file = join(dir, 'only.txt');
  writeTargets(file, []);
  const g = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; upstream "only" } }
upstreams { upstream "only" { discovery "file" { path "${file}"; watch-interval 0.1 } } }`);
  gateways.push(g.gw);
  const r = await request(`${g.url()}/x`);
  assert.equal(r.status, 503);
  assert.match(r.body, /no healthy upstream/);
  writeTargets(file, [servers[0]!.address]);
  await eventually('served', async () => (await request(`${g.url()}/x`)).body === '127.0.0.6');
});

test('a missing file at start leaves the static targets (logged), and the gateway starts', async () => {
  const { servers, close } = await serversOnOnePort(['127.0.0.7']);
  closers.push(close);
  const g = await gatewayFrom(config(servers[0]!.address, join(dir, 'does-not-exist.txt'), 'x'));
  gateways.push(g.gw);
  assert.equal((await request(`${g.url()}/x`)).body, '127.0.0.7');
});
