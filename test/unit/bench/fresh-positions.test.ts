import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockOrder, positionEffects, positionReport, turnOrder } from '../../../bench/lib/fresh-positions.ts';
import type { FreshData, FreshRun, FreshSegment } from '../../../bench/lib/fresh-data.ts';

test('blockOrder rotates the variants by block; turnOrder mirrors every other round', () => {
  const cases: [number, string[]][] = [
    [1, ['a', 'b', 'c']],
    [2, ['b', 'c', 'a']],
    [3, ['c', 'a', 'b']],
    [4, ['a', 'b', 'c']],
  ];
  for (const [block, want] of cases) assert.deepEqual(blockOrder(['a', 'b', 'c'], block), want, `block ${block}`);
  assert.deepEqual(turnOrder(['a', 'b'], 0), ['a', 'b']);
  assert.deepEqual(turnOrder(['a', 'b'], 1), ['b', 'a']);
  assert.deepEqual(turnOrder(['a', 'b', 'c'], 3), ['c', 'b', 'a']);
  const items = ['x', 'y'];
  turnOrder(items, 1);
  assert.deepEqual(items, ['x', 'y'], 'the input is not reversed in place');
});

const VARIANTS: FreshData['variants'] = [
  { label: 'off', rate: null, tree: 'current', root: '/x' },
  { label: '1%', rate: 0.01, tree: 'current', root: '/x' },
];

/**
 * A synthetic interleaved run of 2 variants, k rounds: each segment costs `base(variant)` µs a
 * request, times `backToBack` when the gateway's previous segment was the one just before it;
 * `idleUs` µs a request more in the whole measurement than in the own segments.
 */
function synthetic(blocks: number, k: number, base: Record<string, number>, backToBack: number, idleUs: number): FreshData {
  const runs: FreshRun[] = [];
  const labels = VARIANTS.map((v) => v.label);
  for (let block = 1; block <= blocks; block++) {
    const order = blockOrder(labels, block);
    const segs = new Map<string, FreshSegment[]>(labels.map((l) => [l, []]));
    let prev = '';
    for (let round = 0; round < k; round++) {
      for (const l of turnOrder(order, round)) {
        const us = base[l]! * (prev === l ? backToBack : 1);
        segs.get(l)!.push({ requests: 1000, cpuNs: us * 1000 * 1000, durationS: 0.1 });
        prev = l;
      }
    }
    for (const l of labels) {
      const s = segs.get(l)!;
      const own = s.reduce((a, x) => a + x.cpuNs, 0) / 1000 / s.reduce((a, x) => a + x.requests, 0);
      runs.push({ block, variant: l, cpuUsPerRequest: own + idleUs, rps: 1, calibrationMs: 100, calibrationBeforeMs: 100, calibrationAfterMs: 100, calibrationWallMs: 100, drift: 1, errors: 0, otlpBatches: 0, segments: s });
    }
  }
  return { variants: VARIANTS, warmup: 1, requests: 1, connections: 1, threshold: 1.25, interleave: k, runs };
}

test('positionEffects: waits between a gateway own segments, start order and CPU outside its segments', () => {
  // 2 gateways, mirrored: round 0 is the first round, then a gateway either follows itself (0) or waits for the other's two segments (2)
  const p = positionEffects(synthetic(4, 4, { off: 100, '1%': 100 }, 0.9, 0.5))!;
  assert.equal(p.blocks, 4);
  const w = (variant: string, key: string) => p.waits.find((c) => c.variant === variant && c.key === key);
  assert.deepEqual(
    p.waits.filter((c) => c.variant === 'all').map((c) => [c.key, c.n]),
    [
      ['0', 12],
      ['2', 12],
      ['first round', 8],
    ],
  );
  // back to back: 90 against the round's mean of 95
  assert.ok(Math.abs(w('all', '0')!.median - 90 / 95) < 1e-9);
  assert.ok(Math.abs(w('all', '2')!.median - 100 / 95) < 1e-9);
  assert.equal(w('all', 'first round')!.median, 1);
  for (const c of p.idle) assert.ok(Math.abs(c.median - 0.5) < 1e-9, `${c.variant} idle ${c.median}`);
  // The mirrored order gives the gateway started second one back-to-back segment more per block
  // (rounds 1 and 3 here, the first one round 2), so with a back-to-back discount it reads
  // cheaper in every block; the rotation starts each variant first in every other block, so
  // identical variants still read alike.
  const s = (variant: string, key: string) => p.startOrder.find((c) => c.variant === variant && c.key === key)!.median;
  assert.ok(s('all', '1') > 1 && s('all', '2') < 1, `started first ${s('all', '1')}, second ${s('all', '2')}`);
  assert.ok(Math.abs(s('off', '1') - s('1%', '1')) < 1e-9 && Math.abs(s('off', '2') - s('1%', '2')) < 1e-9);
});

test('positionEffects: a dearer variant shows in every position, not in the position columns', () => {
  const p = positionEffects(synthetic(6, 8, { off: 100, '1%': 105 }, 1, 0))!;
  for (const c of p.waits.filter((x) => x.variant !== 'all')) {
    const want = c.variant === '1%' ? 105 / 102.5 : 100 / 102.5;
    assert.ok(Math.abs(c.median - want) < 1e-9, `${c.variant} ${c.key}: ${c.median}`);
  }
  for (const c of p.waits.filter((x) => x.variant === 'all')) assert.ok(Math.abs(c.mean - 1) < 1e-9, `all ${c.key}: ${c.mean}`);
  assert.match(positionReport(p), /\| 1% \| 0 \| 21 \| 1\.0244 \| 1\.0244 \|/);
});

test('positionEffects: null without segments (one gateway at a time), and blocks missing a variant are skipped', () => {
  const d = synthetic(2, 4, { off: 100, '1%': 100 }, 1, 0);
  assert.equal(positionEffects({ ...d, runs: d.runs.map(({ segments: _s, ...r }) => r) }), null);
  assert.match(positionReport(null), /no interleaved segments/);
  const partial = positionEffects({ ...d, runs: d.runs.filter((r) => !(r.block === 2 && r.variant === 'off')) })!;
  assert.equal(partial.blocks, 1);
});
