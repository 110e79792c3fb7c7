// `node --import tsx bench/callgrind-diff.ts --a DUMP [--a DUMP ...] --b DUMP [--b DUMP ...] --requests N [--top 40] [--by name|group]`
//
// Where two gateways' instructions differ, function by function: the self cost (instructions) per
// request of every function in callgrind dumps of side A and side B (e.g. the kept windows of
// `bench/tracing.ts --mode instr --keep DIR`, N requests each), B - A sorted by size. JIT code,
// which callgrind can only name by address (`0x...`), is named through the process's
// /tmp/perf-<pid>.map when the gateway ran with --perf-basic-prof (the pid is taken from the
// dump's name, `<variant>.w<window>.<pid>.callgrind`). `--by group` sums by kind instead: V8's GC,
// TurboFan, megamorphic/generic inline-cache stubs, runtime calls, other builtins, JIT code of our
// files / undici / Node's own JS, native code.
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { selfCostByFunction } from './lib/callgrind-split.ts';

const { values } = parseArgs({
  options: {
    a: { type: 'string', multiple: true, default: [] },
    b: { type: 'string', multiple: true, default: [] },
    requests: { type: 'string', default: '2000' },
    top: { type: 'string', default: '40' },
    by: { type: 'string', default: 'name' },
  },
});

interface MapEntry {
  start: number;
  end: number;
  name: string;
}

const maps = new Map<string, MapEntry[]>();
/** The perf map of `pid`, sorted by start (later lines win over earlier ones at the same start). */
function perfMap(pid: string): MapEntry[] {
  let m = maps.get(pid);
  if (m) return m;
  const file = `/tmp/perf-${pid}.map`;
  const byStart = new Map<number, MapEntry>();
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const x = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line);
      if (!x) continue;
      const start = parseInt(x[1]!, 16);
      byStart.set(start, { start, end: start + parseInt(x[2]!, 16), name: x[3]! });
    }
  }
  m = [...byStart.values()].sort((p, q) => p.start - q.start);
  maps.set(pid, m);
  return m;
}

function nameOf(fn: string, pid: string | undefined): string {
  const hex = /^0x([0-9a-f]+)$/.exec(fn);
  if (!hex || pid === undefined) return fn;
  const addr = parseInt(hex[1]!, 16);
  const m = perfMap(pid);
  let lo = 0;
  let hi = m.length - 1;
  let at = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (m[mid]!.start <= addr) {
      at = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  for (let i = at; i >= 0 && i > at - 8; i--) if (addr < m[i]!.end) return treeless(m[i]!.name.replace(/^JS:/, ''));
  return '(JIT code, unnamed)';
}

/**
 * A JS function's name without the checkout it was loaded from (`file:///work/wt/x/.tmp/bench/dist-123/src/a.js`
 * -> `dist/src/a.js`, `/work/wt/y/node_modules/undici/...` -> `node_modules/undici/...`), so dumps of
 * two trees (a `--baseline` run) compare function by function.
 */
function treeless(name: string): string {
  return name.replace(/(?:file:\/\/)?\/\S*?\/(?:\.tmp\/bench\/dist-\d+\/|(node_modules\/))/g, (_m, nm: string | undefined) => nm ?? 'dist/');
}

function group(name: string): string {
  if (/Marking|MarkCompact|Sweep|Scaveng|WriteBarrier|RecordWrite|Evacuat|v8::internal::Heap::|MinorMC|ConcurrentMarking|IncrementalMarking|RememberedSet/.test(name)) return 'GC';
  if (/v8::internal::compiler::|v8::internal::maglev::/.test(name)) return 'TurboFan/Maglev';
  if (/Builtins_.*(Megamorphic|Generic|Noninlined)|Builtins_.*IC_Polymorphic/.test(name)) return 'IC stubs: megamorphic/generic';
  if (/^Builtins_.*IC/.test(name)) return 'IC stubs: other';
  if (/Runtime_|v8::internal::Runtime/.test(name)) return 'V8 runtime functions';
  if (/^Builtins_/.test(name)) return 'other builtins';
  if (/\/(src|plugins)\/.*\.js/.test(name)) return 'JIT: sentinel (src, plugins)';
  if (/undici/.test(name)) return 'JIT: undici';
  if (/fastify|avvio|find-my-way|pino/.test(name)) return 'JIT: fastify/pino';
  if (/ node:/.test(name)) return "JIT: Node's own JS";
  if (/^\(JIT code|^0x/.test(name)) return 'JIT: unnamed';
  if (/^[*~^+]/.test(name)) return 'JIT: other JS';
  return 'native (V8 C++, libuv, libc)';
}

function side(files: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const perRequest = 1 / (Number(values.requests) * files.length);
  for (const file of files) {
    const pid = /\.(\d+)\.callgrind$/.exec(basename(file))?.[1];
    for (const [fn, cost] of selfCostByFunction(readFileSync(file, 'utf8'))) {
      const name = nameOf(fn, pid);
      const key = values.by === 'group' ? group(name) : name;
      out.set(key, (out.get(key) ?? 0) + cost * perRequest);
    }
  }
  return out;
}

if (values.a.length === 0 || values.b.length === 0) throw new Error('give dumps of both sides: --a DUMP ... --b DUMP ...');
const a = side(values.a);
const b = side(values.b);
const keys = new Set([...a.keys(), ...b.keys()]);
const rows = [...keys].map((k) => ({ k, a: a.get(k) ?? 0, b: b.get(k) ?? 0 })).sort((x, y) => Math.abs(y.b - y.a) - Math.abs(x.b - x.a));
const total = (m: Map<string, number>) => [...m.values()].reduce((s, x) => s + x, 0);
console.log(`A: ${values.a.length} dump(s), B: ${values.b.length} dump(s), ${values.requests} requests each; self instructions per request`);
console.log(`total: A ${total(a).toFixed(0)}  B ${total(b).toFixed(0)}  B-A ${(total(b) - total(a)).toFixed(0)}\n`);
console.log('| B-A | A | B | function |');
console.log('|--:|--:|--:|:--|');
for (const r of rows.slice(0, Number(values.top))) console.log(`| ${(r.b - r.a).toFixed(0)} | ${r.a.toFixed(0)} | ${r.b.toFixed(0)} | ${r.k.slice(0, 140)} |`);
