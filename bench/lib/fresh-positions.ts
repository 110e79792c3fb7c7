// Does the interleaved fresh-process method (bench/tracing.ts --mode fresh --interleave K) favour
// a gateway by where it stands in a block? Recomputed from a run's --json data (no gateways):
// each segment's CPU per request against the mean of the same round's segments (so the host's
// speed in that round cancels), by how many other segments ran since the gateway's own previous
// one (0 = back to back, the mirrored order gives that to the first and last gateway of a round
// in turn), and per block the gateways' CPU per request by the order in which they were started.
// An A/A run (two identical variants) reads the method's own bias directly; these tables say
// whether order, idle time or start order could make one variant look dearer (docs/tracing.md
// "Session 15"). Pure.
import { median } from './stats.ts';
import type { FreshData, FreshRun } from './fresh-data.ts';

/** The order a block starts its gateways in (bench/tracing.ts): the variants rotated by block (block 1 = as listed). */
export function blockOrder<T>(variants: readonly T[], block: number): T[] {
  const n = variants.length;
  return variants.map((_, i) => variants[(i + block - 1) % n]!);
}

/** The order of round `round` (0-based) of an interleaved block: as started, mirrored every other round (A B, B A, A B, ...). */
export function turnOrder<T>(items: readonly T[], round: number): T[] {
  return round % 2 === 0 ? [...items] : [...items].reverse();
}

export interface PositionCell {
  /** variant label, or "all" */
  variant: string;
  /** "first round" (the segment after the warm-up and the host loop), or the number of other gateways' segments since this gateway's previous one */
  key: string;
  n: number;
  /** median and mean of the segments' CPU per request / the mean of their round's segments */
  median: number;
  mean: number;
}

export interface PositionEffects {
  /** by the segments run since the gateway's own previous one ("0" = back to back) */
  waits: PositionCell[];
  /** per block, a gateway's CPU per request (whole measurement) / the block's geometric mean, by start order ("1" = started first) */
  startOrder: PositionCell[];
  /** per variant: CPU per request outside its own segments (total - own segments), µs; key "idle µs/req" */
  idle: PositionCell[];
  /** blocks used (every variant present, with segments) */
  blocks: number;
}

const cell = (variant: string, key: string, xs: number[]): PositionCell => ({ variant, key, n: xs.length, median: xs.length ? median(xs) : NaN, mean: xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : NaN });

function push(m: Map<string, number[]>, key: string, x: number): void {
  const xs = m.get(key);
  if (xs) xs.push(x);
  else m.set(key, [x]);
}

/** Position effects of an interleaved run; null when the runs have no segments (one gateway at a time). */
export function positionEffects(data: FreshData): PositionEffects | null {
  const labels = data.variants.map((v) => v.label);
  const byBlock = new Map<number, Map<string, FreshRun>>();
  for (const r of data.runs) {
    let m = byBlock.get(r.block);
    if (!m) byBlock.set(r.block, (m = new Map()));
    m.set(r.variant, r);
  }
  const waits = new Map<string, number[]>();
  const starts = new Map<string, number[]>();
  const idle = new Map<string, number[]>();
  let blocks = 0;
  for (const [block, runs] of [...byBlock].sort((a, b) => a[0] - b[0])) {
    if (!labels.every((l) => runs.get(l)?.segments?.length)) continue;
    const k = Math.min(...labels.map((l) => runs.get(l)!.segments!.length));
    if (k < 2) continue;
    blocks++;
    const order = blockOrder(labels, block);
    const perReq = (l: string, round: number) => {
      const s = runs.get(l)!.segments![round]!;
      return s.cpuNs / Math.max(1, s.requests);
    };
    // the global sequence of segments: where each gateway ran last
    const last = new Map<string, number>();
    let at = 0;
    for (let round = 0; round < k; round++) {
      const seq = turnOrder(order, round);
      const mean = seq.reduce((a, l) => a + perReq(l, round), 0) / seq.length;
      for (const l of seq) {
        const prev = last.get(l);
        const key = prev === undefined ? 'first round' : String(at - prev - 1);
        const rel = perReq(l, round) / mean;
        push(waits, `${l}\u0000${key}`, rel);
        push(waits, `all\u0000${key}`, rel);
        last.set(l, at++);
      }
    }
    const logMean = labels.reduce((a, l) => a + Math.log(runs.get(l)!.cpuUsPerRequest), 0) / labels.length;
    order.forEach((l, i) => {
      const rel = runs.get(l)!.cpuUsPerRequest / Math.exp(logMean);
      push(starts, `${l}\u0000${i + 1}`, rel);
      push(starts, `all\u0000${i + 1}`, rel);
    });
    for (const l of labels) {
      const r = runs.get(l)!;
      const segs = r.segments!;
      const requests = segs.reduce((a, s) => a + s.requests, 0);
      const ownUs = segs.reduce((a, s) => a + s.cpuNs, 0) / 1000;
      push(idle, `${l}\u0000idle µs/req`, r.cpuUsPerRequest - ownUs / Math.max(1, requests));
    }
  }
  if (blocks === 0) return null;
  const cells = (m: Map<string, number[]>) =>
    [...m]
      .map(([key, xs]) => {
        const [variant, k] = key.split('\u0000') as [string, string];
        return cell(variant, k, xs);
      })
      .sort((a, b) => (a.variant === b.variant ? a.key.localeCompare(b.key, 'en', { numeric: true }) : a.variant === 'all' ? -1 : b.variant === 'all' ? 1 : labels.indexOf(a.variant) - labels.indexOf(b.variant)));
  return { waits: cells(waits), startOrder: cells(starts), idle: cells(idle), blocks };
}

/** The tables as text (bench/tracing-fresh-analyse.ts --positions). */
export function positionReport(p: PositionEffects | null): string {
  if (!p) return 'positions: no interleaved segments in this data (one gateway at a time)';
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(4) : '-');
  const rows = (cells: PositionCell[]) => cells.map((c) => `| ${c.variant} | ${c.key} | ${c.n} | ${f(c.median)} | ${f(c.mean)} |`);
  return [
    `position effects over ${p.blocks} blocks (a segment's CPU per request / its round's mean; whole measurements / the block's geometric mean)`,
    '',
    '| variant | other segments since its previous one | segments | median | mean |',
    '|:--|:--|--:|--:|--:|',
    ...rows(p.waits),
    '',
    '| variant | started as | blocks | median | mean |',
    '|:--|:--|--:|--:|--:|',
    ...rows(p.startOrder),
    '',
    '| variant | CPU outside its own segments | blocks | median µs/req | mean µs/req |',
    '|:--|:--|--:|--:|--:|',
    ...rows(p.idle),
  ].join('\n');
}
