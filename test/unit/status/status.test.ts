// Pure parts of the status page: the latency tracker (EWMA and nearest-rank percentiles over a
// ring), the JSON-in-<script> escaping, HTML escaping, the JSON/HTML choice, the refresh bound
// and the one-line match description.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyStats, nearestRank } from '../../../src/status/latency.ts';
import { escapeHtml, jsonForScript, STATUS_PAGE_CSP } from '../../../src/status/page.ts';
import { describeMatches } from '../../../src/status/report.ts';
import { refreshSecs, wantsJson } from '../../../src/builtins/handlers.ts';

test('nearestRank', () => {
  const cases: [number[], number, number][] = [
    [[5], 0.5, 5],
    [[1, 2, 3, 4], 0.5, 2],
    [[1, 2, 3, 4], 0.95, 4],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.5, 5],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95, 10],
    [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.1, 1],
  ];
  for (const [sorted, q, want] of cases) assert.equal(nearestRank(sorted, q), want, `${q} of ${sorted.join(',')}`);
});

test('LatencyStats: empty, EWMA, percentiles over the last window, bad samples ignored', () => {
  const s = new LatencyStats(0.5, 4);
  assert.deepEqual(s.snapshot(), { count: 0, ewma_ms: null, p50_ms: null, p95_ms: null, last_ms: null });
  s.observe(10);
  assert.deepEqual(s.snapshot(), { count: 1, ewma_ms: 10, p50_ms: 10, p95_ms: 10, last_ms: 10 });
  s.observe(20); // ewma 15
  s.observe(NaN);
  s.observe(-1);
  assert.equal(s.snapshot().count, 2);
  assert.equal(s.snapshot().ewma_ms, 15);
  for (const v of [30, 40, 50]) s.observe(v); // ring keeps 20,30,40,50
  const snap = s.snapshot();
  assert.equal(snap.count, 5);
  assert.equal(snap.p50_ms, 30);
  assert.equal(snap.p95_ms, 50);
  assert.equal(snap.last_ms, 50);
  assert.equal(snap.ewma_ms, 40.63); // 15 -> 22.5 -> 31.25 -> 40.625
});

test('jsonForScript: no sequence can end or change the script element; JSON.parse gives the value back', () => {
  const value = { id: '</script><script>alert(1)</script>', c: '<!-- & --> \u2028\u2029' };
  const text = jsonForScript(value);
  assert.doesNotMatch(text, /[<>&\u2028\u2029]/);
  assert.deepEqual(JSON.parse(text), value);
});

test('escapeHtml', () => {
  const cases: [string, string][] = [
    ['plain', 'plain'],
    ['<a href="x">&</a>', '&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;'],
    ['&amp;', '&amp;amp;'],
  ];
  for (const [input, want] of cases) assert.equal(escapeHtml(input), want);
});

test('wantsJson and refreshSecs', () => {
  const json: [string, string, boolean][] = [
    ['', 'text/html,application/xhtml+xml,*/*', false],
    ['', 'application/json', true],
    ['', '*/*', false],
    ['', 'text/html, application/json', false],
    ['format=json', 'text/html', true],
    ['format=html', 'application/json', false],
    ['refresh=5&format=json', '', true],
  ];
  for (const [q, accept, want] of json) assert.equal(wantsJson(q, accept), want, `${q} | ${accept}`);
  const refresh: [string, number][] = [
    ['', 2],
    ['refresh=1', 1],
    ['refresh=300', 300],
    ['refresh=0', 2],
    ['refresh=301', 2],
    ['refresh=1.5', 2],
    ['refresh=x', 2],
  ];
  for (const [q, want] of refresh) assert.equal(refreshSecs(q), want, q);
});

test('describeMatches', () => {
  const cases: [Record<string, unknown> | undefined, string][] = [
    [undefined, '*'],
    [{}, '*'],
    [{ 'path-prefix': ['/api'] }, 'path-prefix /api'],
    [{ path: ['/a'], method: ['GET', 'HEAD'] }, 'path /a; method GET HEAD'],
    [{ host: 'x.example' }, 'host x.example'],
  ];
  for (const [m, want] of cases) assert.equal(describeMatches(m), want);
});

test('the CSP names hashes only: no unsafe-inline, no other origin', () => {
  assert.match(STATUS_PAGE_CSP, /^default-src 'none'; script-src 'sha256-[^']+'; style-src 'sha256-[^']+'; connect-src 'self';/);
  assert.doesNotMatch(STATUS_PAGE_CSP, /unsafe|https?:|\*/);
});
