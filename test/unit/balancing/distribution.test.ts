import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBalancer } from '../../../plugins/balancing/index.ts';
import { seededRng } from '../../../plugins/balancing/common.ts';
import { buildMaglevTable } from '../../../plugins/balancing/maglev.ts';
import { stickyToken } from '../../../plugins/balancing/sticky.ts';
import type { Balancer } from '../../../src/upstream/types.ts';
import { makeTargets, ctx, counts, type TestTarget } from './fixtures.ts';

const keys = Array.from({ length: 20_000 }, (_, i) => `user-${i}`);

function mapping(b: Balancer, targets: TestTarget[]): number[] {
  return keys.map((k) => b.pick(targets, ctx({ headers: { 'x-user': k } }))!.target.index);
}

for (const algorithm of ['consistent_hash', 'maglev']) {
  test(`${algorithm}: even spread, and one of N leaving remaps about 1/N of keys`, () => {
    const n = 5;
    const targets = makeTargets(new Array<number>(n).fill(1));
    const b = createBalancer({ algorithm, 'hash-key': 'header:X-User' }, { rng: seededRng(1), now: () => 0 });
    const before = mapping(b, targets);
    const c = counts(n, before);
    // within ±20% of the fair share
    c.forEach((v) => assert.ok(Math.abs(v - keys.length / n) < 0.2 * (keys.length / n), `spread ${c.join(',')}`));

    targets[3]!.healthy = false;
    const after = mapping(b, targets);
    let moved = 0;
    let movedFromSurvivors = 0;
    for (let i = 0; i < keys.length; i++) {
      if (after[i] === 3) assert.fail('key mapped to the removed target');
      if (after[i] !== before[i]) {
        moved++;
        if (before[i] !== 3) movedFromSurvivors++;
      }
    }
    const share = moved / keys.length;
    // the removed target's own keys (~1/5) must move; barely anything else may
    assert.ok(share <= 1 / n + 0.03, `${algorithm} moved ${share}`);
    assert.ok(movedFromSurvivors / keys.length <= 0.03, `${algorithm} moved ${movedFromSurvivors} keys of surviving targets`);
    // and when it comes back, keys return to where they were
    targets[3]!.healthy = true;
    assert.deepEqual(mapping(b, targets), before);
  });
}

test('consistent hash: weights scale the share of keys', () => {
  const targets = makeTargets([1, 3]);
  const b = createBalancer({ algorithm: 'consistent_hash', 'hash-key': 'path', 'virtual-nodes': 200 }, { rng: seededRng(1), now: () => 0 });
  const c = counts(2, keys.map((k) => b.pick(targets, ctx({ path: `/${k}` }))!.target.index));
  const share = c[1]! / keys.length;
  assert.ok(Math.abs(share - 0.75) < 0.05, `weighted share ${share}`);
});

test('maglev table: weighted shares of slots and full coverage', () => {
  const targets = makeTargets([1, 2, 1]);
  const table = buildMaglevTable(targets, 10007);
  const c = counts(3, Array.from(table));
  assert.equal(c.reduce((a, b) => a + b, 0), 10007);
  assert.ok(Math.abs(c[1]! / 10007 - 0.5) < 0.02, `maglev weights ${c.join(',')}`);
});

test('hash key falls back to the client IP when the header is missing', () => {
  const targets = makeTargets([1, 1, 1, 1]);
  const b = createBalancer({ algorithm: 'consistent_hash', 'hash-key': 'header:x-user' }, { rng: seededRng(1), now: () => 0 });
  const a = b.pick(targets, ctx({ clientIp: '198.51.100.9' }))!.target.index;
  for (let i = 0; i < 10; i++) assert.equal(b.pick(targets, ctx({ clientIp: '198.51.100.9' }))!.target.index, a);
});

test('sticky cookie: assigns with Set-Cookie, honours the cookie, reassigns when its target is down', () => {
  const targets = makeTargets([1, 1, 1]);
  const b = createBalancer(
    { algorithm: 'sticky', 'cookie-name': 'SRV', 'cookie-ttl': '1h', 'cookie-secure': true, 'cookie-same-site': 'strict', fallback: 'round-robin' },
    { rng: seededRng(1), now: () => 0 },
  );
  const first = b.pick(targets, ctx())!;
  assert.ok(first.setCookie);
  assert.equal(first.setCookie, `SRV=${stickyToken(first.target)}; Path=/; HttpOnly; Max-Age=3600; Secure; SameSite=Strict`);
  assert.ok(!first.setCookie.includes(first.target.address), 'cookie must not leak the address');
  const token = stickyToken(first.target);
  for (let i = 0; i < 10; i++) {
    const p = b.pick(targets, ctx({ cookies: { SRV: token } }))!;
    assert.equal(p.target.index, first.target.index);
    assert.equal(p.setCookie, undefined);
  }
  targets[first.target.index]!.healthy = false;
  const moved = b.pick(targets, ctx({ cookies: { SRV: token } }))!;
  assert.notEqual(moved.target.index, first.target.index);
  assert.match(moved.setCookie!, new RegExp(`^SRV=${stickyToken(moved.target)};`));
  // a forged/unknown token is just a new assignment
  assert.ok(b.pick(targets, ctx({ cookies: { SRV: 'bogus' } }))!.setCookie);
});

test('sticky SameSite=None forces Secure; no ttl gives a session cookie', () => {
  const b = createBalancer({ algorithm: 'sticky', 'cookie-same-site': 'none' }, { rng: seededRng(1), now: () => 0 });
  const p = b.pick(makeTargets([1]), ctx())!;
  assert.equal(p.setCookie, `SERVERID=${stickyToken(p.target)}; Path=/; HttpOnly; Secure; SameSite=None`);
});

/**
 * Discrete-time simulation: one request arrives per tick (1 tick = 1 ms on the balancer's clock);
 * a request to target i stays in flight for latency[i] ticks and its latency is observed when it
 * completes. Returns picks per target.
 */
function simulate(algorithm: string, latency: number[], ticks: number): number[] {
  let now = 0;
  const b = createBalancer(algorithm, { rng: seededRng(7), now: () => now });
  const targets = makeTargets(latency.map(() => 1));
  const pending: { at: number; t: number; started: number }[] = [];
  const picks: number[] = [];
  for (; now < ticks; now++) {
    for (let i = pending.length - 1; i >= 0; i--) {
      const d = pending[i]!;
      if (d.at > now) continue;
      targets[d.t]!.inFlight--;
      b.observe?.(targets[d.t]!, now - d.started, true);
      pending.splice(i, 1);
    }
    const p = b.pick(targets, ctx())!;
    targets[p.target.index]!.inFlight++;
    pending.push({ at: now + latency[p.target.index]!, t: p.target.index, started: now });
    picks.push(p.target.index);
  }
  return counts(latency.length, picks);
}

for (const algorithm of ['p2c', 'peak_ewma', 'adaptive', 'least_connections']) {
  test(`${algorithm} moves traffic away from a slow target`, () => {
    const n = 6000;
    // target 2 is 20x slower than the others
    const c = simulate(algorithm, [1, 1, 20], n);
    const slowShare = c[2]! / n;
    assert.ok(slowShare < 0.15, `${algorithm}: slow target got ${(slowShare * 100).toFixed(1)}% (fair share 33%)`);
  });
}

test('adaptive (error-aware) moves traffic away from a target that fails fast', () => {
  let now = 0;
  const b = createBalancer('adaptive', { rng: seededRng(3), now: () => now });
  const targets = makeTargets([1, 1, 1]);
  const c = [0, 0, 0];
  for (let i = 0; i < 3000; i++) {
    now += 1;
    const p = b.pick(targets, ctx())!;
    c[p.target.index]!++;
    // target 0 answers in 0.5 ms with an error; the others take 5 ms and succeed
    if (p.target.index === 0) b.observe!(p.target, 0.5, false);
    else b.observe!(p.target, 5, true);
  }
  assert.ok(c[0]! / 3000 < 0.1, `failing target got ${c[0]}`);
  // plain peak EWMA is latency-only: the fast failure attracts traffic (why "adaptive" exists)
  const plain = createBalancer('peak_ewma', { rng: seededRng(3), now: () => now });
  const c2 = [0, 0, 0];
  for (let i = 0; i < 3000; i++) {
    now += 1;
    const p = plain.pick(targets, ctx())!;
    c2[p.target.index]!++;
    if (p.target.index === 0) plain.observe!(p.target, 0.5, false);
    else plain.observe!(p.target, 5, true);
  }
  assert.ok(c2[0]! > c[0]!, 'peak_ewma should not be error-aware');
});
