// The raw data of `bench/tracing.ts --mode fresh --json FILE` and how several runs are pooled
// (bench/tracing-fresh-analyse.ts): a quiet window of one session is short, so the blocks of
// several windows may be added up, but only when they measured the same code the same way: the
// same commit (and a clean tree) for every variant, the same variants, request counts,
// connections, design and Node. Anything else is refused, never mixed. Pure except readFreshData.
import { readFileSync } from 'node:fs';
import type { BlockRun } from './block-ratios.ts';
import type { RunThreads } from './fresh-threads.ts';

export interface FreshVariantRecord {
  /** "off", "1%", "base 1%" */
  label: string;
  /** sampling rate; null = tracing off */
  rate: number | null;
  tree: 'current' | 'baseline';
  root: string;
  /** `git rev-parse HEAD` of root, and whether its work tree differed from it (files older runs did not record) */
  commit?: string | null;
  dirty?: boolean | null;
}

/** One interleaved segment of a measurement (`--interleave K`): this gateway's own requests, CPU and time. */
export interface FreshSegment {
  requests: number;
  /** the gateway's CPU during its own segment (its CPU while the others ran is in the run's total, not here) */
  cpuNs: number;
  durationS: number;
}

export interface FreshRun extends BlockRun {
  errors: number;
  otlpBatches: number;
  /** CPU per request of the second half of the measured requests / of the first: well below 1 means the warm-up was too short */
  drift: number;
  calibrationWallMs: number;
  segments?: FreshSegment[];
  /** with --trace-opt / --trace-deopt among the node flags: V8's optimising compiles and deopts inside the measured span (bench/lib/gc-trace.ts sumJitLines) */
  /** with --threads: the measured span's CPU a request by thread (bench/lib/fresh-threads.ts) */
  threads?: RunThreads;
  jit?: { compiles: number; compileMs: number; deopts: number; deopted: string[]; compiled?: [string, number][] };
}

export interface FreshData {
  variants: FreshVariantRecord[];
  warmup: number;
  requests: number;
  connections: number;
  threshold: number;
  /** segments per variant and block; 0 = one measurement per gateway, one gateway at a time (files older than 2026-12-05 10:00 have none: 0) */
  interleave?: number;
  /** process.version of the runner (and so of the gateways) */
  node?: string;
  /** node flags every gateway ran with (`--node-flags`; files without them: none) */
  nodeFlags?: string[];
  startedAt?: string;
  runs: FreshRun[];
}

const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);

/** Checks the shape of a parsed --json file (what the report needs), naming the first thing missing. */
export function parseFreshData(text: string, name = 'data'): FreshData {
  const d = JSON.parse(text) as Partial<FreshData>;
  if (!Array.isArray(d.variants) || !Array.isArray(d.runs)) throw new Error(`${name}: no variants or runs: not a bench/tracing.ts --mode fresh --json file`);
  for (const k of ['warmup', 'requests', 'connections', 'threshold'] as const) if (!isNum(d[k])) throw new Error(`${name}: ${k} missing`);
  for (const [i, r] of d.runs.entries()) {
    for (const k of ['block', 'cpuUsPerRequest', 'rps', 'calibrationMs'] as const) if (!isNum(r[k])) throw new Error(`${name}: run ${i}: ${k} missing`);
    if (typeof r.variant !== 'string' || !d.variants.some((v) => v.label === r.variant)) throw new Error(`${name}: run ${i}: unknown variant ${String(r.variant)}`);
  }
  return d as FreshData;
}

export function readFreshData(file: string): FreshData {
  return parseFreshData(readFileSync(file, 'utf8'), file);
}

/** What two runs must share to be pooled; a string so that any difference shows in the message. */
export function poolKey(d: FreshData): string {
  return JSON.stringify({
    variants: d.variants.map((v) => ({ label: v.label, rate: v.rate, tree: v.tree, commit: v.commit ?? null })),
    warmup: d.warmup,
    requests: d.requests,
    connections: d.connections,
    threshold: d.threshold,
    interleave: d.interleave ?? 0,
    node: d.node ?? null,
    nodeFlags: d.nodeFlags ?? [],
  });
}

/**
 * One data set from several runs: blocks renumbered after each other (file order), everything else
 * taken from the first. Throws unless every file recorded a commit for every variant from a clean
 * tree and all agree on poolKey. A single file is returned as it is (its commit need not be known).
 */
export function poolFreshData(files: readonly { name: string; data: FreshData }[]): FreshData {
  if (files.length === 0) throw new Error('no data to pool');
  if (files.length === 1) return files[0]!.data;
  for (const { name, data } of files) {
    const unknown = data.variants.filter((v) => !v.commit || v.dirty !== false);
    if (unknown.length) throw new Error(`${name}: cannot pool: ${unknown.map((v) => `${v.label} ${v.commit ? 'ran from a modified tree' : 'has no recorded commit'}`).join(', ')}`);
  }
  const key = poolKey(files[0]!.data);
  for (const { name, data } of files.slice(1)) {
    if (poolKey(data) !== key) throw new Error(`cannot pool ${name} with ${files[0]!.name}: they differ in commit or options\n  ${poolKey(data)}\n  ${key}`);
  }
  const runs: FreshRun[] = [];
  let offset = 0;
  for (const { data } of files) {
    for (const r of data.runs) runs.push({ ...r, block: r.block + offset });
    offset += Math.max(0, ...data.runs.map((r) => r.block));
  }
  return { ...files[0]!.data, startedAt: files.map((f) => f.data.startedAt ?? '?').join(', '), runs };
}

/**
 * Files written before the loop before and after a measurement were recorded separately hold only
 * the slower one; the printed log of the same run has both ("[block 3] 1% ... host loop 152/159 ms
 * CPU"). Returns the runs with calibrationBeforeMs / calibrationAfterMs filled from the log where
 * the block and variant match; throws when a run has no line in the log.
 */
export function calibrationFromLog<T extends FreshRun>(runs: readonly T[], log: string): T[] {
  const loops = new Map<string, [number, number]>();
  for (const m of log.matchAll(/^\[block (\d+)\] (.+?) +\d+ req\/s .*? host loop (\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?) ms CPU/gm)) loops.set(`${m[1]} ${m[2]}`, [Number(m[3]), Number(m[4])]);
  return runs.map((r) => {
    const l = loops.get(`${r.block} ${r.variant}`);
    if (!l) throw new Error(`block ${r.block} ${r.variant}: no "host loop" line in the log`);
    return { ...r, calibrationBeforeMs: l[0], calibrationAfterMs: l[1] };
  });
}
