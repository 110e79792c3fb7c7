import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWrkOutput, parseWrkSize, parseWrkTimeMs } from '../../../bench/lib/wrk.ts';

// Shaped exactly as wrk 4.1.0 (Debian) prints with --latency.
const FULL = `Running 10s test @ http://127.0.0.1:39071/small
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   752.15us  136.22us   4.82ms   91.76%
    Req/Sec    66.61k     2.43k   70.23k    78.00%
  Latency Distribution
     50%  735.00us
     75%  777.00us
     90%  842.00us
     99%    1.19ms
  662786 requests in 10.00s, 161.81MB read
  Socket errors: connect 0, read 3, write 1, timeout 7
  Non-2xx or 3xx responses: 12
Requests/sec:  66275.62
Transfer/sec:     16.18MB
`;

test('parseWrkOutput reads every figure of a full report', () => {
  const r = parseWrkOutput(FULL);
  assert.equal(r.requests, 662786);
  assert.equal(r.durationS, 10);
  assert.equal(r.requestsPerSec, 66275.62);
  assert.equal(r.transferBytesPerSec, 16.18 * 1024 * 1024);
  assert.deepEqual(r.latencyMs, { avg: 0.75215, stdev: 0.13622, max: 4.82, p50: 0.735, p75: 0.777, p90: 0.842, p99: 1.19 });
  assert.deepEqual(r.socketErrors, { connect: 0, read: 3, write: 1, timeout: 7 });
  assert.equal(r.non2xx3xx, 12);
});

test('parseWrkOutput: no error lines means zero errors; second-scale latencies', () => {
  const text = FULL.replace(/^\s*Socket errors.*\n/m, '').replace(/^\s*Non-2xx.*\n/m, '').replace('    99%    1.19ms', '    99%    1.42s ');
  const r = parseWrkOutput(text);
  assert.deepEqual(r.socketErrors, { connect: 0, read: 0, write: 0, timeout: 0 });
  assert.equal(r.non2xx3xx, 0);
  assert.equal(r.latencyMs.p99, 1420);
});

test('parseWrkOutput fails loudly without the latency distribution (wrk run without --latency)', () => {
  const text = FULL.replace(/ {2}Latency Distribution[\s\S]*?1\.19ms\n/, '');
  assert.throws(() => parseWrkOutput(text), /50% latency \(run wrk with --latency\)/);
});

test('parseWrkOutput fails on output that is not a wrk report', () => {
  assert.throws(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused\n'), /no Latency line/);
});

test('wrk units', () => {
  const times: Array<[string, number]> = [
    ['950.00us', 0.95],
    ['1.19ms', 1.19],
    ['2.00s', 2000],
    ['1.50m', 90_000],
  ];
  for (const [text, ms] of times) assert.equal(parseWrkTimeMs(text), ms, text);
  const sizes: Array<[string, number]> = [
    ['512.00B', 512],
    ['2.00KB', 2048],
    ['1.50MB', 1.5 * 1024 * 1024],
    ['1.00GB', 1024 ** 3],
  ];
  for (const [text, bytes] of sizes) assert.equal(parseWrkSize(text), bytes, text);
  assert.throws(() => parseWrkTimeMs('12'), /cannot read the time/);
});
