// The report of `bench/tracing.ts --mode fresh`, printed by the bench at the end of a run and by
// bench/tracing-fresh-analyse.ts from --json files (one run or several pooled): the same text
// either way. Which line is the figure of record is fixed by the design before the data is seen
// (docs/tracing.md "Cost"): interleaved blocks (--interleave K) -> the plain ratio over every
// block; one gateway at a time -> the host-normalised ratio over every block. The older figure
// (plain ratio over the blocks with no flagged side) is printed next to it.
import { median } from './stats.ts';
import { blocksForHalfWidth, compareByBlock, flagSlowHost, hostDependence, logSpread, normaliseByHost, verdictAgainst, type FlaggedRun, type RatioSummary } from './block-ratios.ts';
import type { FreshData, FreshRun, FreshSegment } from './fresh-data.ts';

/** Issue 15's goals: what each sampling rate may cost against tracing off. */
export const GOALS = new Map<number, number>([
  [0.01, 0.03],
  [1, 0.25],
]);

const PROXY_CPU = 0;
const LOAD_CPU = 1;

/** The untraced variant a tree's other variants are read against: its first one ("off"). */
export function offOf(variants: FreshData['variants'], tree: string): FreshData['variants'][number] | undefined {
  return variants.find((o) => o.tree === tree && o.rate === null);
}

/**
 * The comparisons a run's variants allow: each variant against off of its tree, each traced one
 * also against the tree's other untraced variants (`off tp`: untraced, with a constant upstream
 * `traceparent`), then current against baseline at the same rate.
 */
export function comparisons(variants: FreshData['variants']): [FreshData['variants'][number], FreshData['variants'][number]][] {
  const pairs: [FreshData['variants'][number], FreshData['variants'][number]][] = [];
  for (const v of variants) {
    const off = offOf(variants, v.tree);
    if (off && off !== v) pairs.push([v, off]);
  }
  for (const v of variants) {
    if (v.rate === null) continue;
    for (const o of variants) if (o.tree === v.tree && o.rate === null && o !== offOf(variants, v.tree)) pairs.push([v, o]);
  }
  for (const v of variants) {
    const base = v.tree === 'current' ? variants.find((b) => b.tree === 'baseline' && b.rate === v.rate) : undefined;
    if (base) pairs.push([v, base]);
  }
  return pairs;
}

/**
 * What interleaving buys on this host, from an interleaved run's own segments (each side's CPU
 * during its own segments only): per block, the variant's CPU per request over the reference's
 * (a) over all segments, taken in turn, and (b) as a one-gateway-at-a-time design would have
 * seen them, the variant's first half of segments against the reference's second half (which
 * side comes first alternates by block). Same processes and requests in both; only the time
 * apart differs. Null when the runs have no segments.
 */
export function interleavingGain(runs: readonly FreshRun[], variant: string, reference: string): { blocks: number[]; interleaved: number[]; separated: number[] } | null {
  const perReq = (segs: readonly FreshSegment[]) => segs.reduce((a, s) => a + s.cpuNs, 0) / Math.max(1, segs.reduce((a, s) => a + s.requests, 0));
  const out = { blocks: [] as number[], interleaved: [] as number[], separated: [] as number[] };
  for (const block of [...new Set(runs.map((r) => r.block))].sort((a, b) => a - b)) {
    const v = runs.find((r) => r.block === block && r.variant === variant)?.segments;
    const ref = runs.find((r) => r.block === block && r.variant === reference)?.segments;
    if (!v || !ref || v.length < 2 || v.length !== ref.length) continue;
    const half = Math.floor(v.length / 2);
    const [vPart, refPart] = block % 2 === 1 ? [v.slice(0, half), ref.slice(v.length - half)] : [v.slice(v.length - half), ref.slice(0, half)];
    out.blocks.push(block);
    out.interleaved.push(perReq(v) / perReq(ref));
    out.separated.push(perReq(vPart) / perReq(refPart));
  }
  return out.blocks.length ? out : null;
}

export function freshReport(data: FreshData): string {
  const { variants, threshold, warmup, requests: n, connections } = data;
  const interleave = data.interleave ?? 0;
  const runs: (FreshRun & FlaggedRun)[] = flagSlowHost(data.runs, threshold);
  const normalised = normaliseByHost(runs);
  const blocks = new Set(runs.map((r) => r.block)).size;
  const flagged = runs.filter((r) => r.slowHost);
  const calib = median(runs.map((r) => r.calibrationMs));
  const design = interleave
    ? `all ${variants.length} gateways of a block alive at once, their ${n} measured requests each in ${interleave} segments taken in turn (order mirrored segment by segment)`
    : `${variants.length} gateways one at a time`;
  const lines = [
    '',
    `tracing cost, fresh processes: ${blocks} blocks x ${variants.length} gateways (${design}), each ${warmup} warm-up + ${n} measured requests (h2load --h1 -c${connections}, CPU ${LOAD_CPU}), gateway on CPU ${PROXY_CPU}`,
    `host calibration loop on CPU ${PROXY_CPU}: median ${calib.toFixed(1)} ms CPU; ${flagged.length} of ${runs.length} measurements flagged as taken in a slow host phase (loop > ${threshold}x median)${flagged.length ? `: ${flagged.map((r) => `block ${r.block} ${r.variant} ×${r.hostSlowdown.toFixed(2)}`).join(', ')}` : ''}`,
    '',
    '| variant | CPU µs/request, median (range) | req/s, median (range) | 2nd half / 1st half CPU, median | measurements (flagged) |',
    '|:--|--:|--:|--:|--:|',
  ];
  const range = (xs: number[], d: number) => `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)})`;
  for (const v of variants) {
    const mine = runs.filter((r) => r.variant === v.label);
    if (!mine.length) continue;
    const clean = mine.filter((r) => !r.slowHost);
    const use = clean.length ? clean : mine;
    lines.push(`| ${v.label} | ${range(use.map((r) => r.cpuUsPerRequest), 1)} | ${range(use.map((r) => r.rps), 0)} | ${median(use.map((r) => r.drift)).toFixed(3)} | ${mine.length} (${mine.length - clean.length}) |`);
  }
  const hasBoth = runs.every((r) => r.calibrationBeforeMs !== undefined && r.calibrationAfterMs !== undefined);
  lines.push(
    '',
    'Per-block ratios; median with a bootstrap 95% interval over blocks (each block = fresh processes); "spread" = standard deviation of the per-block log ratios.',
    interleave
      ? 'Figure of record (interleaved design): the plain ratio over every block (both sides shared the host\'s phases). Then: the blocks with no flagged side, and the host-normalised ratio.'
      : `Figure of record (one gateway at a time): the host-normalised ratio over every block (CPU/request / (host loop / its median), loop = ${hasBoth ? 'mean of before and after' : 'the slower of before and after: this file has no separate loops'}). Then the older figure: the plain ratio over the blocks with no flagged side, and over every block.`,
  );
  const cell = (s: RatioSummary) => `×${s.median.toFixed(3)} (95% ${s.lo.toFixed(3)}-${s.hi.toFixed(3)})`;
  for (const [v, ref] of comparisons(variants)) {
    const plain = compareByBlock(runs, v.label, ref.label);
    if (!plain.all.blocks.length) continue;
    const norm = compareByBlock(normalised, v.label, ref.label);
    // the goal applies to a sampling rate against tracing off of the same tree; an A/B of two trees is read against 3%
    const cost = ref.rate !== null ? 0.03 : ref === offOf(variants, ref.tree) ? GOALS.get(v.rate ?? -1) : undefined;
    const verdict = (s: { cpu: RatioSummary; rps: RatioSummary }) =>
      cost === undefined ? '' : `; ${ref.rate === null ? 'goal' : 'A/B'} <= ${cost * 100}% dearer: CPU/request ${verdictAgainst(s.cpu, cost, 'higher')}, req/s ${verdictAgainst(s.rps, cost, 'lower')}`;
    const need = (s: RatioSummary) => {
      const b = blocksForHalfWidth(s, 0.02);
      return b === null ? '' : `; ~${b} such blocks would give CPU/request +-2%`;
    };
    const line = (what: string, s: { blocks: number[]; cpu: RatioSummary; rps: RatioSummary }) =>
      `${what} (${s.blocks.length} blocks): CPU/request ${cell(s.cpu)}, req/s ${cell(s.rps)}, spread ${logSpread(s.cpu.ratios).toFixed(3)}${verdict(s)}${need(s.cpu)}`;
    const pad = ''.padEnd(v.label.length + ref.label.length + 3);
    const record = interleave ? line('all blocks', plain.all) : line('host-normalised, all blocks', norm.all);
    lines.push(`${v.label} / ${ref.label}: ${record}`);
    if (interleave) {
      lines.push(`${pad}  ${line('clean blocks', plain.clean)}`);
      lines.push(`${pad}  ${line('host-normalised, all blocks', norm.all)}`);
    } else {
      lines.push(`${pad}  older figure: ${line('clean blocks', plain.clean)}`);
      lines.push(`${pad}  ${line('all blocks', plain.all)}`);
      lines.push(`${pad}  ${line('host-normalised, clean blocks', norm.clean)}`);
    }
    lines.push(`${pad}  flagged blocks: ${plain.flaggedBlocks.join(', ') || 'none'}`);
    const gain = interleavingGain(runs, v.label, ref.label);
    if (gain && gain.blocks.length >= 2) {
      const [a, b] = [logSpread(gain.interleaved), logSpread(gain.separated)];
      lines.push(
        `${pad}  interleaving (diagnostic, own-segment CPU): spread ${a.toFixed(3)} taken in turn against ${b.toFixed(3)} for the same segments half a measurement apart (one side's first half, the other's second)${a > 0 ? `: ~${((b / a) ** 2).toFixed(1)}x the blocks without it` : ''}`,
      );
    }
    lines.push(`${pad}  per block CPU/request: ${plain.all.cpu.ratios.map((x, i) => `${x.toFixed(3)}${plain.flaggedBlocks.includes(plain.all.blocks[i]!) ? '*' : ''}`).join(', ')}`);
  }
  const h = hostDependence(runs);
  if (Number.isFinite(h.slope)) {
    lines.push(
      '',
      `host dependence (diagnostic): log CPU/request against log host loop within each variant, ${h.n} measurements: slope ${h.slope.toFixed(2)}, r ${h.r.toFixed(2)}; spread ${h.spread.toFixed(3)} -> ${h.residual.toFixed(3)} once the fitted slope is removed`,
    );
  }
  return lines.join('\n');
}
