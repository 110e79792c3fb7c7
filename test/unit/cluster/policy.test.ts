import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorkersFlag, resolveWorkerCount, RestartPolicy } from '../../../src/cluster/policy.ts';

test('worker count: --workers wins, 0 means one per CPU, 1 is the single process', () => {
  const cases: [configured: number, flag: number | undefined, cpus: number, expected: number][] = [
    [0, undefined, 8, 8],
    [0, undefined, 1, 1],
    [1, undefined, 8, 1],
    [4, undefined, 2, 4],
    [4, 1, 8, 1],
    [1, 3, 8, 3],
    [2, 0, 6, 6],
    [0, undefined, 0, 1],
  ];
  for (const [configured, flag, cpus, expected] of cases) assert.equal(resolveWorkerCount(configured, flag, cpus), expected, `${configured}/${flag}/${cpus}`);
  assert.throws(() => resolveWorkerCount(-1, undefined, 4), /non-negative/);
});

test('--workers flag parsing', () => {
  assert.equal(parseWorkersFlag('0'), 0);
  assert.equal(parseWorkersFlag('12'), 12);
  for (const bad of [undefined, '', '-1', '1.5', 'two']) assert.throws(() => parseWorkersFlag(bad), /--workers needs a non-negative integer/);
});

test('restart policy: doubling delay, give up on the 6th death within 60 s', () => {
  const p = new RestartPolicy({ maxRestarts: 5, windowMs: 60_000, baseDelayMs: 100, maxDelayMs: 1_000 });
  const delays: number[] = [];
  for (let i = 0; i < 5; i++) {
    const d = p.onDeath(1_000 + i * 1_000);
    assert.equal(d.action, 'restart');
    if (d.action === 'restart') delays.push(d.delayMs);
  }
  assert.deepEqual(delays, [100, 200, 400, 800, 1_000]);
  assert.deepEqual(p.onDeath(6_000), { action: 'give-up', restarts: 5 });
});

test('restart policy: deaths older than the window are forgotten', () => {
  const p = new RestartPolicy({ maxRestarts: 2, windowMs: 10_000, baseDelayMs: 50, maxDelayMs: 5_000 });
  assert.deepEqual(p.onDeath(0), { action: 'restart', delayMs: 50 });
  assert.deepEqual(p.onDeath(5_000), { action: 'restart', delayMs: 100 });
  // 0 has left the window: two deaths inside it (5 s, 12 s) -> still restarting
  assert.deepEqual(p.onDeath(12_000), { action: 'restart', delayMs: 100 });
  assert.equal(p.onDeath(13_000).action, 'give-up');
  // a long quiet spell resets everything
  assert.deepEqual(p.onDeath(100_000), { action: 'restart', delayMs: 50 });
});

test('restart policy: replacements that keep failing to start give up however slowly they fail', () => {
  const p = new RestartPolicy({ maxRestarts: 3, windowMs: 10_000, baseDelayMs: 100, maxDelayMs: 5_000 });
  // a running worker dies, then every replacement dies during startup, 30 s apart (outside the window)
  assert.equal(p.onDeath(0, true).action, 'restart');
  for (let i = 1; i <= 3; i++) assert.equal(p.onDeath(i * 30_000, false).action, 'restart', `failed start ${i}`);
  assert.deepEqual(p.onDeath(4 * 30_000, false), { action: 'give-up', restarts: 3 });
});

test('restart policy: a replacement that becomes ready ends the run of failed starts', () => {
  const p = new RestartPolicy({ maxRestarts: 2, windowMs: 1_000, baseDelayMs: 100, maxDelayMs: 5_000 });
  assert.equal(p.onDeath(0, false).action, 'restart');
  assert.equal(p.onDeath(10_000, false).action, 'restart');
  p.onReady();
  assert.equal(p.onDeath(20_000, false).action, 'restart');
  assert.equal(p.onDeath(30_000, false).action, 'restart');
  assert.equal(p.onDeath(40_000, false).action, 'give-up');
});
