// `node --import tsx bench/tracing-perf-split.ts --dir DIR [--against off] [--symbols REGEX] [--top 25]`
//
// Where a traced gateway's extra CPU time goes, from `bench/tracing.ts --mode fresh --interleave K
// --perf DIR` (one `perf record -e cpu-clock` file per gateway and block, DIR/b<block>-<variant>.data,
// each over the gateway's whole measured span: the same requests for every gateway of a block).
// Self samples are sorted into categories (kernel, GC, TurboFan compiling, the interpreter and
// Sparkplug, optimised JavaScript by origin: the tracing plugin, undici, Sentinel's src, Node and the
// rest, builtins, native) and printed per variant as the median over blocks of samples against the
// reference variant's of the same block. Issue 15's open question (docs/tracing.md, sessions 26-27):
// whether 1%'s timed cost over its count is a fixed cost spread over the shared request path (the
// extra samples spread over every category) or the rare sampled request's own time (the extra in the
// tracing plugin's code, low tiers and TurboFan). Name JIT code with --node-flags=--perf-basic-prof.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { median } from './lib/stats.ts';
import { parsePerfReport, perfCategory as category, type PerfRow } from './lib/perf-split.ts';

const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    against: { type: 'string', default: 'off' },
    symbols: { type: 'string' },
    top: { type: 'string', default: '25' },
  },
});
if (!values.dir) throw new Error('--dir DIR: the directory bench/tracing.ts --perf wrote');
const dir = resolve(values.dir);

function rowsOf(file: string): PerfRow[] {
  return parsePerfReport(execFileSync('perf', ['report', '-i', file, '--stdio', '--no-children', '-q', '--sort', 'dso,sym', '-F', 'sample,dso,sym'], { encoding: 'utf8', maxBuffer: 256 << 20, stdio: ['ignore', 'pipe', 'ignore'] }));
}

const files = readdirSync(dir).filter((f) => /^b\d+-.+\.data$/.test(f));
if (files.length === 0) throw new Error(`${dir}: no b<block>-<variant>.data files`);
// block -> variant -> category -> samples (and symbol -> samples for --symbols)
const byBlock = new Map<number, Map<string, { cats: Map<string, number>; syms: Map<string, number> }>>();
const symbolRe = values.symbols ? new RegExp(values.symbols) : undefined;
for (const f of files) {
  const [, block, variant] = /^b(\d+)-(.+)\.data$/.exec(f)!;
  const cats = new Map<string, number>();
  const syms = new Map<string, number>();
  for (const r of rowsOf(join(dir, f))) {
    const c = category(r);
    cats.set(c, (cats.get(c) ?? 0) + r.samples);
    cats.set('TOTAL', (cats.get('TOTAL') ?? 0) + r.samples);
    if (symbolRe?.test(r.sym)) {
      const name = r.sym.replace(/file:\/\/\/\S*?\/dist[^/]*\//, '').replace(/\/\S*node_modules\//, '');
      syms.set(name, (syms.get(name) ?? 0) + r.samples);
    }
  }
  if (!byBlock.has(Number(block))) byBlock.set(Number(block), new Map());
  byBlock.get(Number(block))!.set(variant!, { cats, syms });
}

const ref = values.against!.replace('%', 'pct');
const variants = [...new Set([...byBlock.values()].flatMap((m) => [...m.keys()]))].sort();
const blocks = [...byBlock.keys()].sort((a, b) => a - b).filter((b) => byBlock.get(b)!.has(ref));
if (blocks.length === 0) throw new Error(`no block has the reference variant ${ref}`);
const allCats = [...new Set([...byBlock.values()].flatMap((m) => [...m.values()].flatMap((v) => [...v.cats.keys()])))];
const refTotal = (b: number) => byBlock.get(b)!.get(ref)!.cats.get('TOTAL')!;
// a category's samples per variant as a share of the reference's whole (so the lines add up to the total's ratio)
const share = (b: number, v: string, c: string) => (byBlock.get(b)!.get(v)?.cats.get(c) ?? 0) / refTotal(b);
allCats.sort((a, b) => (a === 'TOTAL' ? -1 : b === 'TOTAL' ? 1 : median(blocks.map((k) => share(k, ref, b))) - median(blocks.map((k) => share(k, ref, a)))));

console.log(`${files.length} perf files, ${blocks.length} blocks with "${ref}"; per variant: the category's self samples over the whole of "${ref}" in the same block (median over blocks), then minus "${ref}"'s own`);
console.log(['category'.padEnd(26), ...variants.map((v) => v.padStart(22))].join(''));
for (const c of allCats) {
  const cells = variants.map((v) => {
    const own = median(blocks.map((b) => share(b, v, c)));
    const diff = median(blocks.map((b) => share(b, v, c) - share(b, ref, c)));
    return `${(own * 100).toFixed(2)}% ${v === ref ? '' : `${diff >= 0 ? '+' : ''}${(diff * 100).toFixed(2)}`}`.padStart(22);
  });
  console.log([c.padEnd(26), ...cells].join(''));
}
if (symbolRe) {
  const top = Number(values.top);
  const sum = (v: string, s: string) => blocks.reduce((a, b) => a + (byBlock.get(b)!.get(v)?.syms.get(s) ?? 0), 0);
  const names = [...new Set([...byBlock.values()].flatMap((m) => [...m.values()].flatMap((v) => [...v.syms.keys()])))];
  names.sort((a, b) => variants.reduce((x, v) => x + sum(v, b), 0) - variants.reduce((x, v) => x + sum(v, a), 0));
  console.log(`\nsymbols matching ${values.symbols}: samples summed over the ${blocks.length} blocks`);
  console.log(['symbol'.padEnd(80), ...variants.map((v) => v.padStart(12))].join(''));
  for (const s of names.slice(0, top)) console.log([s.slice(0, 79).padEnd(80), ...variants.map((v) => String(sum(v, s)).padStart(12))].join(''));
}
