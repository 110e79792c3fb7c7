// Regex safety harness (not a unit test): feeds catastrophic-backtracking
// inputs to the WAF regex layer (RE2) and prints time per evaluation, next to
// V8's backtracking RegExp on small sizes for contrast; then runs every CRS @rx
// pattern on long hostile inputs and shows that time grows linearly with the
// input length.
//   node --import tsx bench/waf-regex.ts [--quick]
import { performance } from 'node:perf_hooks';

import { compileRegex } from '../src/waf/regex/index.ts';
import { crsRxPatterns } from '../test/unit/waf-regex/crs-rules.ts';

const quick = process.argv.includes('--quick');

/** Median ms per call over `runs` calls (at least one warm-up call first). */
function timeIt(fn: () => unknown, runs: number): number {
  fn();
  const samples: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    samples.push(performance.now() - t0);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)] ?? 0;
}

const fmt = (ms: number): string => (ms < 1 ? `${(ms * 1000).toFixed(1)} µs` : `${ms.toFixed(2)} ms`);

interface Evil {
  name: string;
  pattern: string;
  input: (n: number) => string;
}

const EVIL: Evil[] = [
  { name: '(a+)+$', pattern: '(a+)+$', input: (n) => `${'a'.repeat(n)}!` },
  { name: '(a|aa)+$', pattern: '(a|aa)+$', input: (n) => `${'a'.repeat(n)}!` },
  { name: '(x+x+)+y', pattern: '(x+x+)+y', input: (n) => 'x'.repeat(n) },
  { name: '^(\\w+\\s?)*$', pattern: '^(\\w+\\s?)*$', input: (n) => `${'ab '.repeat(Math.ceil(n / 3)).slice(0, n)}!` },
  { name: '(.*a){12}', pattern: '(.*a){12}', input: (n) => 'a'.repeat(n) },
];

console.log('== Catastrophic patterns: RE2 (via src/waf/regex) vs V8 RegExp (backtracking)');
const sizes = quick ? [1_000, 30_000] : [1_000, 10_000, 30_000, 100_000];
for (const e of EVIL) {
  const re = compileRegex(e.pattern);
  const cells = sizes.map((n) => {
    const input = e.input(n);
    const ms = timeIt(() => re.test(input), quick ? 3 : 7);
    return `${n.toLocaleString('en')}: ${fmt(ms)}`;
  });
  console.log(`RE2 ${e.name.padEnd(14)} ${cells.join(' | ')}`);
  // V8 only on small sizes, stopping as soon as one call gets slow.
  const native = new RegExp(e.pattern);
  const nativeCells: string[] = [];
  for (const n of [16, 20, 22, 24, 26]) {
    const input = e.input(n);
    const t0 = performance.now();
    native.test(input);
    const ms = performance.now() - t0;
    nativeCells.push(`${n}: ${fmt(ms)}`);
    if (ms > 500) break;
  }
  console.log(`V8  ${e.name.padEnd(14)} ${nativeCells.join(' | ')}`);
}

console.log('\n== Every CRS @rx pattern on long hostile inputs (dotAll+multiline, as @rx runs them)');
const patterns = crsRxPatterns().map((p) => ({ ...p, re: compileRegex(p.pattern, { dotAll: true, multiline: true }) }));
const shapes: Record<string, (n: number) => string> = {
  'a-run': (n) => 'a'.repeat(n),
  'sqli-ish': (n) => "1' OR '1'='1' UNION SELECT /*x*/ ".repeat(Math.ceil(n / 34)).slice(0, n),
  'cmd-ish': (n) => ';c"a"t$IFS/e\\tc/p\'a\'sswd|'.repeat(Math.ceil(n / 28)).slice(0, n),
  'high-bytes': (n) => '\xc3\xa9\x80\xff<'.repeat(Math.ceil(n / 5)).slice(0, n),
};
const small = 16 * 1024;
const large = 64 * 1024;
const worst: { shape: string; p: (typeof patterns)[number]; ms: number }[] = [];
for (const [shape, make] of Object.entries(shapes)) {
  const smallInput = make(small);
  const largeInput = make(large);
  let total = 0;
  const rows = patterns.map((p) => {
    const ms = timeIt(() => p.re.test(largeInput), quick ? 1 : 3);
    total += ms;
    return { p, ms };
  });
  rows.sort((a, b) => b.ms - a.ms);
  console.log(
    `${shape}: all ${patterns.length} patterns on 64 KiB took ${fmt(total)} (mean ${fmt(total / patterns.length)} per pattern)`,
  );
  worst.push(...rows.slice(0, 2).map((r) => ({ shape, ...r })));
  for (const { p } of rows.slice(0, 3)) {
    // Re-measured with more runs: a single slow sample (GC, a busy core) can top the ranking.
    const runs = quick ? 3 : 7;
    const ms = timeIt(() => p.re.test(largeInput), runs);
    const msSmall = timeIt(() => p.re.test(smallInput), runs);
    console.log(
      `  worst ${p.file.replace(/\.conf$/, '')} id:${p.id}: 16 KiB ${fmt(msSmall)}, 64 KiB ${fmt(ms)} (x${(ms / Math.max(msSmall, 1e-6)).toFixed(1)} for x4 input)`,
    );
  }
}

// Growth check on the slowest pattern/input pairs: x4 input should cost about x4 time.
console.log('\n== Scaling of the slowest pattern/input pairs (median of several runs)');
worst.sort((a, b) => b.ms - a.ms);
const scaleSizes = quick ? [64 * 1024, 256 * 1024] : [64 * 1024, 256 * 1024, 1024 * 1024];
for (const { shape, p } of worst.slice(0, 4)) {
  const make = shapes[shape]!;
  const cells = scaleSizes.map((n) => {
    const input = make(n);
    return `${n / 1024} KiB: ${fmt(timeIt(() => p.re.test(input), quick ? 3 : 7))}`;
  });
  console.log(`${p.file.replace(/\.conf$/, '')} id:${p.id} on ${shape}: ${cells.join(' | ')}`);
}
