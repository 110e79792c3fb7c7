// `perf report -F sample,dso,sym` lines of a gateway, and the categories bench/tracing-perf-split.ts
// sums them into. Pure (table-tested in test/unit/bench/perf-split.test.ts).

/** One line of `perf report --stdio -q -F sample,dso,sym`: samples, the object, kernel or user, the symbol. */
export interface PerfRow {
  samples: number;
  dso: string;
  kernel: boolean;
  sym: string;
}

export function parsePerfReport(text: string): PerfRow[] {
  const rows: PerfRow[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\S.*?)\s{2,}\[(.)\]\s+(.*)$/.exec(line);
    if (m) rows.push({ samples: Number(m[1]), dso: m[2]!.trim(), kernel: m[3] === 'k', sym: m[4]!.trim() });
  }
  return rows;
}

/**
 * A self sample's category. JIT code is named by --perf-basic-prof as `JS:<tier><name> <file>`:
 * `*` TurboFan, `+` Maglev, `^` Sparkplug, `~` Ignition (interpreted frames show as the
 * interpreter's builtins unless --interpreted-frames-native-stack).
 */
export function perfCategory(r: Pick<PerfRow, 'dso' | 'kernel' | 'sym'>): string {
  const s = r.sym;
  if (r.kernel) return 'kernel';
  if (s.includes('compiler::') || s.includes('turboshaft') || s.includes('maglev::')) return 'TurboFan compiling';
  if (/Heap::|Scaveng|MarkCompact|Sweeper|Evacuat|Marking|MinorMC|GCTracer/.test(s)) return 'GC';
  if (s.startsWith('JS:wasm-function')) return 'wasm (llhttp)';
  if (s.startsWith('JS:')) {
    const tier = s[3];
    const where = s.includes('plugins/tracing') ? 'tracing' : s.includes('node_modules/undici') ? 'undici' : s.includes('/src/') ? 'src' : s.includes('node_modules') ? 'other packages' : 'node';
    if (tier === '*' || tier === '+') return `JS optimised: ${where}`;
    return where === 'tracing' ? 'JS low tier: tracing' : 'JS low tier: other';
  }
  if (/^Builtins_(Interpreter|BaselineOutOfLinePrologue|.*Handler$)/.test(s)) return 'interpreter';
  if (s.startsWith('Builtins_')) return 'builtins';
  if (r.dso.startsWith('libc')) return 'libc';
  return 'native (node, V8, libuv)';
}
