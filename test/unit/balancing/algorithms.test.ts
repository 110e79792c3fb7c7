import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ALGORITHMS, createBalancer, validateLoadBalancing, canonicalAlgorithm } from '../../../plugins/balancing/index.ts';
import { seededRng } from '../../../plugins/balancing/common.ts';
import { makeTargets, ctx, counts } from './fixtures.ts';

const deps = () => ({ rng: seededRng(42), now: () => 0 });

test('name table: hyphen, underscore and case spellings resolve', () => {
  const table: [string, string][] = [
    ['round_robin', 'round_robin'],
    ['round-robin', 'round_robin'],
    ['RoundRobin', 'round_robin'],
    ['least-connections', 'least_connections'],
    ['leastconnections', 'least_connections'],
    ['weighted', 'weighted_round_robin'],
    ['weighted-round-robin', 'weighted_round_robin'],
    ['ip-hash', 'ip_hash'],
    ['iphash', 'ip_hash'],
    ['consistent-hash', 'consistent_hash'],
    ['p2c', 'power_of_two_choices'],
    ['power-of-two-choices', 'power_of_two_choices'],
    ['ewma', 'peak_ewma'],
    ['peak-ewma', 'peak_ewma'],
    ['adaptive', 'adaptive'],
    ['wlc', 'weighted_least_connections'],
    ['weighted_least_conn', 'weighted_least_connections'],
    ['maglev', 'maglev'],
    ['sticky_session', 'sticky'],
    ['random', 'random'],
  ];
  for (const [input, want] of table) {
    assert.equal(validateLoadBalancing(input), undefined, input);
    assert.equal(canonicalAlgorithm(input), want, input);
  }
  assert.equal(canonicalAlgorithm({ algorithm: 'Sticky', 'cookie-name': 'S' }), 'sticky');
});

test('unknown names are errors with a did-you-mean, not a silent round robin', () => {
  assert.match(validateLoadBalancing('least_conections')!, /unknown load-balancing algorithm "least_conections" \(did you mean "least_connections"\?\)/);
  assert.match(validateLoadBalancing('roundrobbin')!, /did you mean "roundrobin"/);
  assert.match(validateLoadBalancing('fastest')!, /unknown load-balancing algorithm "fastest"; valid: round_robin/);
  assert.match(validateLoadBalancing('locality_aware')!, /not supported/);
  assert.match(validateLoadBalancing({ algorithm: 'consistent_hash', 'hash-key': 'body:x' })!, /invalid hash-key "body:x"/);
  assert.match(validateLoadBalancing({ algorithm: 'sticky', fallback: 'sticky' })!, /cannot be "sticky"/);
  assert.match(validateLoadBalancing({ algorithm: 'sticky', fallback: 'rund_robin' })!, /did you mean "round_robin"/);
  assert.throws(() => createBalancer('nope', deps()), /unknown load-balancing algorithm "nope"/);
});

test('every algorithm skips unhealthy targets and returns undefined when none is usable', () => {
  for (const name of ALGORITHMS) {
    const targets = makeTargets([1, 2, 1]);
    targets[1]!.healthy = false;
    const b = createBalancer(name, deps());
    for (let i = 0; i < 300; i++) {
      const p = b.pick(targets, ctx({ clientIp: `198.51.100.${i % 250}`, path: `/p${i}` }));
      assert.ok(p, `${name} picked nothing`);
      assert.notEqual(p.target.index, 1, `${name} picked an unhealthy target`);
    }
    for (const t of targets) t.healthy = false;
    assert.equal(b.pick(targets, ctx()), undefined, `${name} with no healthy target`);
  }
});

test('every algorithm avoids excluded targets (retries) while another exists', () => {
  for (const name of ALGORITHMS) {
    const targets = makeTargets([1, 1, 1]);
    const b = createBalancer(name, deps());
    for (let i = 0; i < 100; i++) {
      const p = b.pick(targets, ctx({ clientIp: `203.0.113.${i}`, exclude: new Set([0, 2]) }));
      assert.equal(p?.target.index, 1, name);
    }
    assert.equal(b.pick(targets, ctx({ exclude: new Set([0, 1, 2]) })), undefined, name);
  }
});

test('round robin cycles in order and ignores weights', () => {
  const targets = makeTargets([5, 1, 1]);
  const b = createBalancer('round_robin', deps());
  const seq = Array.from({ length: 7 }, () => b.pick(targets, ctx())!.target.index);
  assert.deepEqual(seq, [0, 1, 2, 0, 1, 2, 0]);
});

test('smooth weighted round robin: nginx sequence and exact proportions', () => {
  const targets = makeTargets([5, 1, 1]);
  const b = createBalancer('weighted', deps());
  const seq = Array.from({ length: 7 }, () => b.pick(targets, ctx())!.target.index);
  assert.deepEqual(seq, [0, 0, 1, 0, 2, 0, 0]);
  const t2 = makeTargets([3, 2, 1, 0]);
  const b2 = createBalancer('weighted_round_robin', deps());
  const c = counts(4, Array.from({ length: 6000 }, () => b2.pick(t2, ctx())!.target.index));
  assert.deepEqual(c, [3000, 2000, 1000, 0]);
});

test('weighted random honours weights within 2 percentage points (seeded, 60k picks)', () => {
  const targets = makeTargets([3, 1, 1, 5]);
  const b = createBalancer('random', deps());
  const n = 60_000;
  const c = counts(4, Array.from({ length: n }, () => b.pick(targets, ctx())!.target.index));
  const want = [0.3, 0.1, 0.1, 0.5];
  c.forEach((v, i) => assert.ok(Math.abs(v / n - want[i]!) < 0.02, `target ${i}: ${v / n} vs ${want[i]}`));
});

test('least connections picks the fewest in flight; weighted variant divides by weight', () => {
  const targets = makeTargets([1, 1, 1]);
  targets[0]!.inFlight = 5;
  targets[1]!.inFlight = 2;
  targets[2]!.inFlight = 7;
  assert.equal(createBalancer('least_connections', deps()).pick(targets, ctx())!.target.index, 1);
  const w = makeTargets([1, 4, 1]);
  w[0]!.inFlight = 1; // (1+1)/1 = 2
  w[1]!.inFlight = 4; // (4+1)/4 = 1.25
  w[2]!.inFlight = 2; // (2+1)/1 = 3
  assert.equal(createBalancer('wlc', deps()).pick(w, ctx())!.target.index, 1);
  // ties rotate instead of always hitting the first target
  const tie = makeTargets([1, 1, 1]);
  const lc = createBalancer('least_connections', deps());
  assert.deepEqual(new Set(Array.from({ length: 6 }, () => lc.pick(tie, ctx())!.target.index)), new Set([0, 1, 2]));
});

test('ip hash is stable per client and only moves the clients of a failed target', () => {
  const targets = makeTargets([1, 1, 1, 1]);
  const b = createBalancer('ip_hash', deps());
  const ips = Array.from({ length: 2000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.7`);
  const before = ips.map((ip) => b.pick(targets, ctx({ clientIp: ip }))!.target.index);
  assert.deepEqual(ips.map((ip) => b.pick(targets, ctx({ clientIp: ip }))!.target.index), before);
  const c = counts(4, before);
  c.forEach((v) => assert.ok(v > 350 && v < 650, `ip hash spread ${c.join(',')}`));
  targets[2]!.healthy = false;
  const after = ips.map((ip) => b.pick(targets, ctx({ clientIp: ip }))!.target.index);
  ips.forEach((_, i) => {
    if (before[i] !== 2) assert.equal(after[i], before[i]);
    else assert.notEqual(after[i], 2);
  });
});
