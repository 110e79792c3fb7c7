import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSED, breakerSettings, canPass, isFailure, next, type BreakerEvent, type BreakerState } from '../../../plugins/health/circuit-breaker.ts';
import type { AttemptOutcome } from '../../../src/upstream/types.ts';

const cfg = breakerSettings({ 'failure-threshold': 3, 'success-threshold': 2, 'timeout-seconds': 10, 'half-open-max-requests': 1 });

function run(events: [BreakerEvent['type'], number][], start: BreakerState = CLOSED): BreakerState {
  return events.reduce((s, [type, at]) => next(s, { type } as BreakerEvent, at, cfg), start);
}

test('defaults are Sentinel\'s 5 / 2 / 30 s / 1', () => {
  assert.deepEqual(breakerSettings(undefined), { failureThreshold: 5, successThreshold: 2, timeoutMs: 30_000, halfOpenMaxRequests: 1, failureStatuses: new Set() });
});

test('isFailure: transport failures always; a relayed status only when failure-status-codes lists it', () => {
  const plain = breakerSettings(undefined);
  const layer7 = breakerSettings({ 'failure-status-codes': [502, 503, 504] });
  const err = (reason: 'connect_refused' | 'connect_timeout' | 'reset' | 'timeout' | 'tls' | 'protocol' | 'other'): AttemptOutcome => ({ kind: 'error', reason, latencyMs: 1 });
  const status = (s: number): AttemptOutcome => ({ kind: 'response', status: s, latencyMs: 1 });
  const rows: [string, AttemptOutcome, boolean, boolean][] = [
    ['connect refused', err('connect_refused'), true, true],
    ['connect timeout', err('connect_timeout'), true, true],
    ['reset', err('reset'), true, true],
    ['response timeout', err('timeout'), true, true],
    ['tls', err('tls'), true, true],
    ['malformed response', err('protocol'), true, true],
    ['other error', err('other'), true, true],
    ['200', status(200), false, false],
    ['404', status(404), false, false],
    ['500', status(500), false, false],
    ['502 relayed', status(502), false, true],
    ['503 relayed', status(503), false, true],
    ['504 relayed', status(504), false, true],
    ['505', status(505), false, false],
  ];
  for (const [name, o, byDefault, listed] of rows) {
    assert.equal(isFailure(o, plain), byDefault, `${name} (default)`);
    assert.equal(isFailure(o, layer7), listed, `${name} (failure-status-codes 502 503 504)`);
  }
});

test('transition table', () => {
  const rows: { name: string; events: [BreakerEvent['type'], number][]; phase: BreakerState['phase']; failures?: number }[] = [
    { name: 'failures below threshold stay closed', events: [['failure', 0], ['failure', 1]], phase: 'closed', failures: 2 },
    { name: 'a success resets the consecutive count', events: [['failure', 0], ['failure', 1], ['success', 2], ['failure', 3], ['failure', 4]], phase: 'closed', failures: 2 },
    { name: 'threshold consecutive failures open', events: [['failure', 0], ['failure', 1], ['failure', 2]], phase: 'open' },
    { name: 'acquire before timeout stays open', events: [['failure', 0], ['failure', 0], ['failure', 0], ['acquire', 9_999]], phase: 'open' },
    { name: 'acquire after timeout goes half-open', events: [['failure', 0], ['failure', 0], ['failure', 0], ['acquire', 10_000]], phase: 'half-open' },
    { name: 'late outcomes while open are ignored', events: [['failure', 0], ['failure', 0], ['failure', 0], ['success', 1], ['failure', 2]], phase: 'open' },
    { name: 'one probe success is not enough', events: [['failure', 0], ['failure', 0], ['failure', 0], ['acquire', 10_000], ['success', 10_001]], phase: 'half-open' },
    {
      name: 'success-threshold probe successes close',
      events: [['failure', 0], ['failure', 0], ['failure', 0], ['acquire', 10_000], ['success', 10_001], ['acquire', 10_002], ['success', 10_003]],
      phase: 'closed',
      failures: 0,
    },
    { name: 'a probe failure reopens', events: [['failure', 0], ['failure', 0], ['failure', 0], ['acquire', 10_000], ['failure', 10_001]], phase: 'open' },
  ];
  for (const r of rows) {
    const s = run(r.events);
    assert.equal(s.phase, r.phase, r.name);
    if (r.failures !== undefined) assert.equal(s.failures, r.failures, r.name);
  }
});

test('reopening restarts the timer', () => {
  const s = run([['failure', 0], ['failure', 0], ['failure', 0], ['acquire', 10_000], ['failure', 12_000]]);
  assert.equal(s.openedAt, 12_000);
  assert.equal(canPass(s, 21_999, cfg), false);
  assert.equal(canPass(s, 22_000, cfg), true);
});

test('half-open admits at most half-open-max-requests probes at once', () => {
  const two = breakerSettings({ 'failure-threshold': 1, 'half-open-max-requests': 2, 'timeout-seconds': 1 });
  let s = next(CLOSED, { type: 'failure' }, 0, two);
  assert.equal(canPass(s, 500, two), false);
  assert.equal(canPass(s, 1000, two), true);
  s = next(s, { type: 'acquire' }, 1000, two);
  assert.equal(s.phase, 'half-open');
  assert.equal(canPass(s, 1000, two), true);
  s = next(s, { type: 'acquire' }, 1000, two);
  assert.equal(s.probes, 2);
  assert.equal(canPass(s, 1000, two), false);
  s = next(s, { type: 'release' }, 1001, two); // a probe that was cancelled frees its slot
  assert.equal(canPass(s, 1001, two), true);
  s = next(s, { type: 'success' }, 1002, two);
  assert.equal(s.phase, 'half-open');
  assert.equal(s.probes, 0);
  s = next(s, { type: 'success' }, 1003, two);
  assert.equal(s.phase, 'closed');
});
