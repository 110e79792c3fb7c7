// UpstreamGroup with a changing target set and state that survives refreshes and reloads.
// No sockets: select/report/refresh with an injected clock and an in-memory discovery source
// (the real sources have their own tests under test/unit/discovery and test/integration/discovery).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import type { TargetSpec } from '../../../src/upstream/address.ts';
import type { DiscoverySource } from '../../../src/upstream/discovery/types.ts';
import { fakeServices, pickContext } from '../../integration/upstreams/helpers.ts';

/** A discovery source whose answer the test sets (or makes fail). */
class MemorySource implements DiscoverySource {
  readonly kind = 'memory';
  readonly intervalMs = 60_000;
  answer: string[] = [];
  fail: Error | undefined;
  calls = 0;
  resolve(): Promise<TargetSpec[]> {
    this.calls++;
    if (this.fail) return Promise.reject(this.fail);
    return Promise.resolve(
      this.answer.map((a) => {
        const i = a.lastIndexOf(':');
        return { address: a, host: a.slice(0, i), port: Number(a.slice(i + 1)), weight: 1 };
      }),
    );
  }
}

const fail = { kind: 'error', reason: 'connect_refused', latencyMs: 1 } as const;
const ok = { kind: 'response', status: 200, latencyMs: 1 } as const;
const CB = { 'failure-threshold': 1, 'success-threshold': 1, 'timeout-seconds': 30 };

function make(opts: { targets?: string[]; extra?: Partial<RawUpstream>; source?: DiscoverySource; previous?: UpstreamGroup; clock?: { now: number }; services?: ReturnType<typeof fakeServices> }) {
  const clock = opts.clock ?? { now: 1_000_000 };
  const services = opts.services ?? fakeServices();
  const g = new UpstreamGroup({
    id: 'u',
    config: { id: 'u', target: (opts.targets ?? []).map((address) => ({ address, weight: 1 })), 'circuit-breaker': CB, ...opts.extra } as RawUpstream,
    baseDir: '.',
    services,
    now: () => clock.now,
    rng: () => 0.5,
    ...(opts.source ? { discovery: opts.source } : {}),
    ...(opts.previous ? { previous: opts.previous } : {}),
  });
  return { g, services, clock };
}

/** Sends one failing attempt to `address` (other targets excluded), opening its breaker (threshold 1). */
function trip(g: UpstreamGroup, address: string): void {
  const others = new Set(g.targets.filter((t) => t.address !== address).map((t) => t.index));
  const p = g.select(pickContext({ exclude: others }))!;
  assert.equal(p.target.address, address);
  g.report(p.target, fail);
}

const breakerOf = (g: UpstreamGroup, address: string) => g.snapshot().targets.find((t) => t.address === address)?.circuit_breaker;

test('discovered targets are added to static ones; a refresh applies adds and removals, survivors keep their breaker', async () => {
  const src = new MemorySource();
  src.answer = ['10.0.0.2:80', '10.0.0.3:80'];
  const { g, services } = make({ targets: ['10.0.0.1:80'], source: src });
  await g.ready();
  assert.deepEqual(g.targets.map((t) => t.address), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']);
  trip(g, '10.0.0.2:80');
  const survivor = g.targets[1]!;
  src.answer = ['10.0.0.2:80', '10.0.0.4:80'];
  assert.equal(await g.refresh(), true);
  assert.deepEqual(g.targets.map((t) => t.address), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.4:80']);
  assert.equal(g.targets[1], survivor, 'same target object');
  assert.equal(breakerOf(g, '10.0.0.2:80'), 'open');
  // the open target is skipped, the removed one is never picked
  for (let i = 0; i < 10; i++) {
    const p = g.select(pickContext())!;
    assert.ok(['10.0.0.1:80', '10.0.0.4:80'].includes(p.target.address), p.target.address);
    g.report(p.target, ok);
  }
  const text = await services.metrics.render();
  assert.match(text, /sentinel_discovery_refresh_total\{upstream="u",kind="memory",result="changed"\} 2/);
  assert.match(text, /sentinel_discovery_targets\{upstream="u"\} 2/);
});

test('an unchanged answer rebuilds nothing (same list object); a removed target loses its state', async () => {
  const src = new MemorySource();
  src.answer = ['10.0.0.1:80', '10.0.0.2:80'];
  const { g, services } = make({ source: src });
  await g.ready();
  const list = g.targets;
  src.answer = ['10.0.0.2:80', '10.0.0.1:80']; // another order, same set
  await g.refresh();
  assert.equal(g.targets, list, 'no new list');
  trip(g, '10.0.0.1:80');
  src.answer = ['10.0.0.2:80'];
  await g.refresh();
  src.answer = ['10.0.0.1:80', '10.0.0.2:80'];
  await g.refresh();
  assert.equal(breakerOf(g, '10.0.0.1:80'), 'closed', 'came back as a new target');
  assert.match(await services.metrics.render(), /sentinel_discovery_refresh_total\{upstream="u",kind="memory",result="unchanged"\} 1/);
});

test('errors keep the last good set and are counted; an empty answer empties the pool (select -> undefined)', async () => {
  const src = new MemorySource();
  src.answer = ['10.0.0.1:80'];
  const { g, services } = make({ source: src });
  await g.ready();
  src.fail = new Error('consul unreachable');
  assert.equal(await g.refresh(), false);
  assert.deepEqual(g.targets.map((t) => t.address), ['10.0.0.1:80']);
  assert.match(await services.metrics.render(), /sentinel_discovery_refresh_total\{upstream="u",kind="memory",result="error"\} 1/);
  src.fail = undefined;
  src.answer = [];
  await g.refresh();
  assert.equal(g.targets.length, 0);
  assert.equal(g.select(pickContext()), undefined);
});

test('a failed first resolution leaves the static targets; a discovery-only upstream starts empty', async () => {
  const src = new MemorySource();
  src.fail = new Error('no DNS');
  const { g } = make({ targets: ['10.0.0.1:80'], source: src });
  await g.ready();
  assert.deepEqual(g.targets.map((t) => t.address), ['10.0.0.1:80']);
  const only = make({ source: src }).g;
  await only.ready();
  assert.equal(only.targets.length, 0);
  assert.equal(only.select(pickContext()), undefined);
});

test('reload: the next group adopts breaker, passive window and in-flight count by address; removed targets are not adopted', async () => {
  const clock = { now: 1_000_000 };
  const services = fakeServices();
  const { g: old } = make({ targets: ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'], clock, services });
  old.start();
  trip(old, '10.0.0.1:80');
  trip(old, '10.0.0.3:80');
  const inflight = old.select(pickContext({ exclude: new Set([old.targets[0]!.index, old.targets[2]!.index]) }))!;
  assert.equal(inflight.target.address, '10.0.0.2:80');
  // the new config drops 10.0.0.3 and adds 10.0.0.4
  const { g: next } = make({ targets: ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.4:80'], previous: old, clock, services });
  await next.ready();
  next.start();
  assert.equal(breakerOf(next, '10.0.0.1:80'), 'open', 'a dead target is not re-admitted by the reload');
  assert.equal(next.snapshot().targets[0]!.failure_rate, 1);
  assert.equal(next.targets[1]!.inFlight, 1, 'in-flight request of the old generation still counted');
  // the old generation's request finishes and reports on the shared state
  old.report(inflight.target, ok);
  assert.equal(next.targets[1]!.inFlight, 0);
  // ids stay unique across the two groups (retries exclude by id)
  assert.equal(new Set(next.targets.map((t) => t.index)).size, 3);
  assert.ok(!old.targets.some((t) => t.index === next.targets[2]!.index));
  for (let i = 0; i < 6; i++) {
    const p = next.select(pickContext())!;
    assert.notEqual(p.target.address, '10.0.0.1:80');
    next.report(p.target, ok);
  }
  const text = await services.metrics.render();
  assert.ok(!text.includes('upstream:u:10.0.0.3:80'), 'the removed target has no breaker series');
  assert.match(text, /sentinel_circuit_breaker_state\{component="upstream:u:10\.0\.0\.1:80",route=""\} 1/);
  await old.close();
  assert.equal(breakerOf(next, '10.0.0.1:80'), 'open', 'closing the old group does not touch shared state');
  await next.close();
});

test('reload: the previous generation\'s discovered set is the fallback when the first resolution fails', async () => {
  const src = new MemorySource();
  src.answer = ['10.0.0.7:80'];
  const { g: old } = make({ source: src, extra: { discovery: { kind: 'memory' } } as Partial<RawUpstream> });
  await old.ready();
  const failing = new MemorySource();
  failing.fail = new Error('down');
  const { g: next } = make({ source: failing, previous: old, extra: { discovery: { kind: 'memory' } } as Partial<RawUpstream> });
  await next.ready();
  assert.deepEqual(next.targets.map((t) => t.address), ['10.0.0.7:80']);
});

test('reload without health-check re-admits a target the old checks had ejected; with checks it stays ejected', async () => {
  const hc = { 'health-check': { type: { kind: 'tcp' }, 'interval-secs': 60, 'unhealthy-threshold': 1 } } as Partial<RawUpstream>;
  const { g: old } = make({ targets: ['127.0.0.1:1'], extra: hc });
  await old.runCheck(old.targets[0]!.index); // port 1: refused
  assert.equal(old.snapshot().targets[0]!.status, 'unhealthy');
  const { g: keep } = make({ targets: ['127.0.0.1:1'], extra: hc, previous: old });
  keep.start();
  assert.equal(keep.snapshot().targets[0]!.status, 'unhealthy');
  const { g: none } = make({ targets: ['127.0.0.1:1'], previous: keep });
  none.start();
  assert.equal(none.select(pickContext())?.target.address, '127.0.0.1:1');
  await Promise.all([old.close(), keep.close(), none.close()]);
});

test('the balancer (peak-EWMA averages) is kept across a reload when load-balancing is unchanged, and rebuilt otherwise', () => {
  const clock = { now: 1_000_000 };
  const lb = { 'load-balancing': 'peak_ewma' } as Partial<RawUpstream>;
  const targets = ['10.0.0.1:80', '10.0.0.2:80'];
  const { g: old } = make({ targets, extra: lb, clock });
  // with rng 0.5 and no latency data, p2c's first candidate is 10.0.0.2 and ties keep it
  assert.equal(old.select(pickContext())!.target.address, '10.0.0.2:80');
  old.report(old.targets[1]!, { kind: 'response', status: 200, latencyMs: 800 });
  assert.equal(old.select(pickContext())!.target.address, '10.0.0.1:80', 'the slow target is avoided');
  old.report(old.targets[0]!, ok);
  const { g: kept } = make({ targets, extra: lb, clock, previous: old });
  assert.equal(kept.select(pickContext())!.target.address, '10.0.0.1:80', 'the latency average survived the reload');
  kept.report(kept.targets[0]!, ok);
  const { g: fresh } = make({ targets, extra: { 'load-balancing': 'p2c' } as Partial<RawUpstream>, clock, previous: kept });
  assert.equal(fresh.select(pickContext())!.target.address, '10.0.0.2:80', 'another algorithm starts without history');
});

test('consistent hash after a refresh: keys of surviving targets do not move; sticky cookie of a removed target falls back', async () => {
  const src = new MemorySource();
  src.answer = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80', '10.0.0.4:80'];
  const { g } = make({ source: src, extra: { 'load-balancing': { algorithm: 'consistent_hash', 'hash-key': 'path' } } as Partial<RawUpstream> });
  await g.ready();
  const keys = Array.from({ length: 400 }, (_, i) => `/key/${i}`);
  const pick = (k: string) => {
    const p = g.select(pickContext({ path: k }))!;
    g.report(p.target, ok);
    return p.target.address;
  };
  const before = keys.map(pick);
  src.answer = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.4:80'];
  await g.refresh();
  const after = keys.map(pick);
  keys.forEach((_, i) => {
    if (before[i] !== '10.0.0.3:80') assert.equal(after[i], before[i], `key ${i} moved`);
    else assert.notEqual(after[i], '10.0.0.3:80');
  });

  const s = new MemorySource();
  s.answer = ['10.0.0.1:80', '10.0.0.2:80'];
  const { g: st } = make({ source: s, extra: { 'load-balancing': { algorithm: 'sticky', 'cookie-name': 'SRV' } } as Partial<RawUpstream> });
  await st.ready();
  const first = st.select(pickContext())!;
  st.report(first.target, ok);
  const token = first.setCookie!.split(';')[0]!.split('=')[1]!;
  const held = st.select(pickContext({ cookies: { SRV: token } }))!;
  assert.equal(held.target.address, first.target.address);
  assert.equal(held.setCookie, undefined);
  st.report(held.target, ok);
  s.answer = ['10.0.0.1:80', '10.0.0.2:80'].filter((a) => a !== first.target.address);
  await st.refresh();
  const moved = st.select(pickContext({ cookies: { SRV: token } }))!;
  assert.notEqual(moved.target.address, first.target.address);
  assert.ok(moved.setCookie, 'a new assignment is sent');
});

test('maglev rebuilds its table when the set changes', async () => {
  const src = new MemorySource();
  src.answer = ['10.0.0.1:80', '10.0.0.2:80'];
  const { g } = make({ source: src, extra: { 'load-balancing': { algorithm: 'maglev', 'hash-key': 'path' } } as Partial<RawUpstream> });
  await g.ready();
  src.answer = ['10.0.0.5:80', '10.0.0.6:80'];
  await g.refresh();
  const seen = new Set(Array.from({ length: 50 }, (_, i) => g.select(pickContext({ path: `/m${i}` }))!.target.address));
  assert.deepEqual([...seen].sort(), ['10.0.0.5:80', '10.0.0.6:80']);
});

test('reload with a new weight: the running generation keeps the old weight until the new group starts', () => {
  const { g: old } = make({ targets: ['10.0.0.1:80', '10.0.0.2:80'] });
  const next = new UpstreamGroup({
    id: 'u',
    config: { id: 'u', target: [{ address: '10.0.0.1:80', weight: 5 }, { address: '10.0.0.2:80', weight: 1 }] } as RawUpstream,
    baseDir: '.',
    services: fakeServices(),
    previous: old,
  });
  assert.equal(old.targets[0]!.weight, 1, 'a build that fails after this point must not have changed the running weights');
  next.start();
  assert.equal(next.targets[0]!.weight, 5);
  assert.equal(next.targets[0], old.targets[0], 'same target object, now with the new weight');
});
