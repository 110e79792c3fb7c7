import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INITIAL_THRESHOLD, healthCheckSettings, parseExpectedStatus, thresholdNext } from '../../../plugins/health/active.ts';
import { decodeHealthResponse, encodeHealthRequest } from '../../../plugins/health/grpc-health.ts';

test('expected-status forms', () => {
  const rows: [number | string | undefined, number, boolean][] = [
    [undefined, 200, true],
    [undefined, 204, false],
    [204, 204, true],
    ['200', 200, true],
    ['2xx', 299, true],
    ['2xx', 301, false],
    ['200-399', 302, true],
    ['200-399', 404, false],
    ['200,204', 204, true],
    ['200, 3xx', 307, true],
  ];
  for (const [spec, status, want] of rows) {
    const f = parseExpectedStatus(spec);
    assert.equal(typeof f, 'function', String(spec));
    assert.equal((f as (s: number) => boolean)(status), want, `${spec} vs ${status}`);
  }
  assert.match(parseExpectedStatus('ok') as string, /invalid expected-status "ok"/);
});

test('settings: defaults (10 s, 5 s, 2, 3), unknown type is an error, timeout capped by interval', () => {
  const s = healthCheckSettings({});
  assert.ok(typeof s !== 'string');
  assert.equal(s.kind, 'http');
  assert.equal(s.path, '/health');
  assert.equal(s.intervalMs, 10_000);
  assert.equal(s.timeoutMs, 5000);
  assert.equal(s.healthyThreshold, 2);
  assert.equal(s.unhealthyThreshold, 3);
  assert.match(healthCheckSettings({ type: { kind: 'inference' } }) as string, /not supported/);
  const capped = healthCheckSettings({ 'interval-secs': 1, 'timeout-secs': 5 });
  assert.ok(typeof capped !== 'string' && capped.timeoutMs === 1000);
});

test('threshold state machine', () => {
  const cfg = { healthyThreshold: 2, unhealthyThreshold: 3 };
  const run = (seq: boolean[]) => seq.reduce((s, ok) => thresholdNext(s, ok, cfg), INITIAL_THRESHOLD).healthy;
  assert.equal(run([]), true);
  assert.equal(run([false, false]), true);
  assert.equal(run([false, false, false]), false);
  assert.equal(run([false, false, true, false, false]), true); // not consecutive
  assert.equal(run([false, false, false, true]), false);
  assert.equal(run([false, false, false, true, true]), true);
  assert.equal(run([false, false, false, true, false, true]), false);
});

test('grpc health messages: request bytes and response decoding', () => {
  // field 1 (LEN) "svc": 0a 03 73 76 63, behind a 5-byte uncompressed frame header
  assert.deepEqual([...encodeHealthRequest('svc')], [0, 0, 0, 0, 5, 0x0a, 3, 0x73, 0x76, 0x63]);
  assert.deepEqual([...encodeHealthRequest('')], [0, 0, 0, 0, 0]);
  const long = encodeHealthRequest('x'.repeat(200));
  assert.deepEqual([...long.subarray(5, 8)], [0x0a, 0xc8, 0x01]); // varint 200
  assert.equal(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])), 1);
  assert.equal(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 2, 0x08, 2])), 2);
  assert.equal(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 0])), 0); // proto3 default UNKNOWN
  assert.equal(decodeHealthResponse(Buffer.from([0, 0, 0, 0, 9, 0x12, 2, 0x61, 0x62, 0x08, 1, 0x1d, 0, 0])), undefined); // truncated fixed32
  assert.equal(decodeHealthResponse(Buffer.from([1, 0, 0, 0, 2, 0x08, 1])), undefined); // compressed flag
});
