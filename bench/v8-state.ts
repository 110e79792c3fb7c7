// Which V8 state does each fresh gateway process land in? Counts, per request, the calls of a few
// V8 runtime functions that mark a slow state (object-literal properties defined one by one
// through the runtime, map migrations) in N fresh gateway processes per tree, on the agent-hop
// side's /pass route (bench/lib/agent-hop-side.ts: compiled build, nginx origin). See
// docs/architecture.md, "A per-process V8 state".
//
//   node --import tsx bench/v8-state.ts [--baseline DIR] [--processes 6] [--warmup 6000] [--requests 4000]
//       [--path pass] [--concurrency 8] [--node-flags "..."] [--stacks] [--access-log] [--mixed-query]
//       [--tracing off,0,0.01] [--probes ic]
//
// The counts come from uprobes on the node binary's own symbols (perf stat -e probe_v8state:*
// -p PID around exactly --requests requests after --warmup, which is counted too): exact, and
// independent of the load on the machine; each hit costs a few µs of kernel time, so a process
// runs slower while it is counted, not differently. Needs root (it writes
// /sys/kernel/tracing/uprobe_events; the probes are removed at exit), perf, nm and readelf.
// Uprobes do not fire under valgrind (it runs translated copies of the code): under callgrind,
// bench/ab.ts --mode instr prints the same count from its dumps.
// --stacks: the gateways run with --perf-basic-prof --interpreted-frames-native-stack and the JS
// frames that call Runtime_DefineKeyedOwnPropertyInLiteral during the counted window are listed
// (use --warmup 0 to see the sites before they are optimised).
// --access-log: the gateways write a JSON access log; --mixed-query: every other request carries a
// query string (concurrently), so the per-request literals see more than one shape, as in real traffic.
// Processes of the two trees alternate (current, baseline, current, ...), one at a time.
// --tracing LIST: each tree runs once per entry (off = tracing off, a number = sampling rate, OTLP to a
// sink in this process), alternating: does a sampling rate change what the request path runs natively?
// `RATE:noexport` records and encodes the sampled spans but sends none while the process runs (a
// queue and batch larger than the run, scheduled-delay an hour): is it the export or the spans?
// `RATE:one` (e.g. `0:one`, `0:one:noexport`): one request with a sampled client traceparent before
// the warm-up: does one recorded request change what every later one costs? (`RATE:lone`: the same
// request unsampled, the control)
// `RATE:thread` exports from a worker thread (`export-thread #true`), `RATE:inline` from the request
// thread (`#false`, the default): does the exporter's undici code mix with the forwarder's?
// --probes ic: also counts inline-cache misses (Runtime_*IC_Miss), the megamorphic load/store stubs,
// cons-string flattening, string compares in the runtime, deoptimisations, optimising compiles and
// scavenges / mark-compacts; the warm-up is then not counted (a hot stub under a uprobe is slow).
// --probes jit: only the rare ones (deoptimisations, optimising compiles, scavenges, mark-compacts), at native speed.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, readFileSync, realpathSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin, startHopSide } from './lib/agent-hop-side.ts';
import { benchScratchDir, requireCommands } from './lib/processes.ts';
import { sendFixed } from './lib/instr.ts';
import { perfStatDuring } from './lib/perf-stat.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';
import { median } from './lib/stats.ts';
import { parseRates, loneRequestTraceparent, type Variant } from './lib/tracing-variants.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    processes: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '6000' },
    requests: { type: 'string', default: '4000' },
    path: { type: 'string', default: 'pass' },
    concurrency: { type: 'string', default: '8' },
    'node-flags': { type: 'string', default: '' },
    stacks: { type: 'boolean', default: false },
    'access-log': { type: 'boolean', default: false },
    'mixed-query': { type: 'boolean', default: false },
    tracing: { type: 'string' },
    probes: { type: 'string', default: '' },
    // with --stacks: the probe whose callers are listed (define, or with --probes ic e.g. keyedloadmega)
    'stacks-event': { type: 'string', default: 'define' },
    'stacks-top': { type: 'string', default: '15' },
  },
});
if (!requireCommands(['perf', 'nm', 'readelf'], 'linux-perf binutils')) process.exit(2);

/** The runtime functions counted: [event name, mangled symbol]. */
const PROBES: readonly [string, string][] = [
  ['define', '_ZN2v88internal39Runtime_DefineKeyedOwnPropertyInLiteralEiPmPNS0_7IsolateE'],
  ['migrate', '_ZN2v88internal8JSObject15MigrateInstanceEPNS0_7IsolateENS0_6HandleIS1_EE'],
  ['trymigrate', '_ZN2v88internal8JSObject18TryMigrateInstanceEPNS0_7IsolateENS0_6HandleIS1_EE'],
  ...(values.probes === 'jit'
    ? ([
        ['deopt', '_ZN2v88internal25Runtime_NotifyDeoptimizedEiPmPNS0_7IsolateE'],
        ['compileopt', '_ZN2v88internal24Runtime_CompileOptimizedEiPmPNS0_7IsolateE'],
        ['scavenge', '_ZN2v88internal4Heap8ScavengeEv'],
        ['markcompact', '_ZN2v88internal4Heap11MarkCompactEv'],
      ] as [string, string][])
    : []),
  ...(values.probes === 'ic'
    ? ([
        ['loadmiss', '_ZN2v88internal19Runtime_LoadIC_MissEiPmPNS0_7IsolateE'],
        ['keyedloadmiss', '_ZN2v88internal24Runtime_KeyedLoadIC_MissEiPmPNS0_7IsolateE'],
        ['storemiss', '_ZN2v88internal20Runtime_StoreIC_MissEiPmPNS0_7IsolateE'],
        ['keyedstoremiss', '_ZN2v88internal25Runtime_KeyedStoreIC_MissEiPmPNS0_7IsolateE'],
        ['loadmega', 'Builtins_LoadIC_Megamorphic'],
        ['keyedloadmega', 'Builtins_KeyedLoadIC_Megamorphic'],
        ['keyedloadmegastr', 'Builtins_KeyedLoadIC_MegamorphicStringKey'],
        ['keyedstoremega', 'Builtins_KeyedStoreIC_Megamorphic'],
        ['flatten', '_ZN2v88internal6String11SlowFlattenEPNS0_7IsolateENS0_6HandleINS0_10ConsStringEEENS0_14AllocationTypeE'],
        ['strequal', '_ZN2v88internal19Runtime_StringEqualEiPmPNS0_7IsolateE'],
        ['stringadd', '_ZN2v88internal17Runtime_StringAddEiPmPNS0_7IsolateE'],
        ['deopt', '_ZN2v88internal25Runtime_NotifyDeoptimizedEiPmPNS0_7IsolateE'],
        ['compileopt', '_ZN2v88internal24Runtime_CompileOptimizedEiPmPNS0_7IsolateE'],
        ['scavenge', '_ZN2v88internal4Heap8ScavengeEv'],
        ['markcompact', '_ZN2v88internal4Heap11MarkCompactEv'],
      ] as [string, string][])
    : []),
];
const GROUP = 'probe_v8state';
const UPROBES = '/sys/kernel/tracing/uprobe_events';

/** uprobe_events wants file offsets: symbol address minus its LOAD segment's vaddr, plus the segment's offset. */
function fileOffsets(binary: string): Map<string, number> {
  const syms = new Map<string, number>();
  for (const line of execFileSync('nm', [binary], { maxBuffer: 1 << 30 }).toString().split('\n')) {
    const [addr, , name] = line.split(' ');
    if (name && PROBES.some(([, s]) => s === name)) syms.set(name, parseInt(addr!, 16));
  }
  const segs: { off: number; vaddr: number; size: number }[] = [];
  const ph = execFileSync('readelf', ['-lW', binary]).toString();
  for (const m of ph.matchAll(/^\s*LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)/gm)) {
    segs.push({ off: parseInt(m[1]!, 16), vaddr: parseInt(m[2]!, 16), size: parseInt(m[3]!, 16) });
  }
  const out = new Map<string, number>();
  for (const [event, sym] of PROBES) {
    const a = syms.get(sym);
    const seg = a === undefined ? undefined : segs.find((s) => a >= s.vaddr && a < s.vaddr + s.size);
    if (a === undefined || !seg) throw new Error(`${binary}: no symbol ${sym} (a stripped node, or another V8 version)`);
    out.set(event, a - seg.vaddr + seg.off);
  }
  return out;
}

const node = realpathSync(process.execPath);
const removeProbes = (): void => {
  try {
    for (const [event] of PROBES) if (readFileSync(UPROBES, 'utf8').includes(`${GROUP}/${event} `)) appendFileSync(UPROBES, `-:${GROUP}/${event}\n`);
  } catch {
    // not there
  }
};
removeProbes();
for (const [event, off] of fileOffsets(node)) appendFileSync(UPROBES, `p:${GROUP}/${event} ${node}:0x${off.toString(16)}\n`);
process.on('exit', removeProbes);

/** Runs `load` while perf counts the probes in process `pid`; the counts per event. */
async function countProbes<T>(pid: number, load: () => Promise<T>): Promise<{ counts: Map<string, number>; result: T }> {
  const [result, counts] = await perfStatDuring(pid, PROBES.map(([e]) => `${GROUP}:${e}`), load);
  if (counts.size !== PROBES.length) throw new Error(`perf stat counted ${counts.size} of ${PROBES.length} probes`);
  return { counts, result };
}

/**
 * --stacks: records the call stacks of the define calls during `load` (perf record on the probe,
 * JIT frames named through --perf-basic-prof) and prints the JS frames that call the runtime.
 */
async function printStacks(pid: number, load: () => Promise<unknown>): Promise<void> {
  const data = join(tmp, `perf-${pid}.data`);
  const event = values['stacks-event'];
  const perf = spawn('perf', ['record', '-q', '-g', '-o', data, '-e', `${GROUP}:${event}`, '-p', String(pid)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  await load();
  const exited = new Promise((r) => perf.on('exit', r));
  perf.kill('SIGINT');
  await exited;
  const script = execFileSync('perf', ['script', '-i', data, '-F', 'ip,sym'], { maxBuffer: 1 << 30 }).toString();
  // one sample per call: the first JS frame (perf-map names start with JS:, "Function:" or "LazyCompile:" in older nodes)
  const callers = new Map<string, number>();
  let total = 0;
  for (const sample of script.split(/\n\s*\n/)) {
    const frames = sample.split('\n').map((l) => l.trim().replace(/^[0-9a-f]+\s+/, '')).filter(Boolean);
    if (frames.length === 0) continue;
    total++;
    const js = frames.filter((f) => /^(JS:|Function:|LazyCompile:|\*|~)/.test(f)).slice(0, 2).join(' <- ') || frames.slice(0, 3).join(' <- ');
    callers.set(js, (callers.get(js) ?? 0) + 1);
  }
  console.log(`  ${total} ${event} calls; callers (first two JS frames):`);
  for (const [f, c] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, Number(values['stacks-top']))) console.log(`  ${String(c).padStart(7)}  ${f}`);
}

const tmp = benchScratchDir('v8-state-');
const { port: originPort } = await startHopOrigin(tmp);
const REPO = resolve(import.meta.dirname, '..');
const roots = [['current', REPO] as const, ...(values.baseline ? [['baseline', resolve(values.baseline)] as const] : [])];
const rates = values.tracing === undefined ? [undefined] : values.tracing.split(',').map((r) => r.trim());
const sink = values.tracing === undefined ? undefined : await startOtlpSink();
/** [label, root, tracing]: each tree once per --tracing entry */
const variantOf = (r: string): Variant => parseRates(r)[0]!;
const rateLabel = (r: string) => variantOf(r).name;
const NO_EXPORT = 'max-queue-size 10000000; max-export-batch-size 10000000; scheduled-delay "3600s"';
/** `RATE:inline` / `RATE:thread`: the exporter's HTTP requests on the request thread (the default) / in the export thread */
const INLINE = 'export-thread #false';
const THREAD = 'export-thread #true';
const trees = roots.flatMap(([t, root]) =>
  rates.map((r) => {
    const label = r === undefined ? t : roots.length > 1 ? `${t} ${rateLabel(r)}` : rateLabel(r);
    const v = r === undefined ? undefined : variantOf(r);
    const tracing = v?.rate === undefined ? undefined : { endpoint: `http://127.0.0.1:${sink!.port}`, rate: v.rate, extra: v.noExport ? NO_EXPORT : v.exportThread === false ? INLINE : v.exportThread ? THREAD : undefined };
    return [label, root, tracing, v === undefined ? undefined : loneRequestTraceparent(v)] as const;
  }),
);
const n = Number(values.requests);
const warmup = Number(values.warmup);
const concurrency = Number(values.concurrency);
const nodeFlags = [...values['node-flags'].split(/\s+/).filter(Boolean), ...(values.stacks ? ['--perf-basic-prof', '--interpreted-frames-native-stack', '--no-logfile-per-isolate', `--logfile=${join(tmp, 'v8.log')}`] : [])];
/** n requests to the path; with --mixed-query half of them (concurrently) carry a query string, as real traffic varies. */
const send = async (port: number, count: number): Promise<number> => {
  if (!values['mixed-query']) return sendFixed(port, `/${values.path}`, count, concurrency);
  const half = Math.floor(count / 2);
  const bad = await Promise.all([sendFixed(port, `/${values.path}`, count - half, Math.ceil(concurrency / 2)), sendFixed(port, `/${values.path}?q=1`, half, Math.ceil(concurrency / 2))]);
  return bad[0] + bad[1];
};
/** rare events (GCs, compiles) need more digits than per-request calls */
const fmt = (x: number): string => (x !== 0 && Math.abs(x) < 0.1 ? x.toFixed(4) : x.toFixed(2));
const perReq = new Map<string, Map<string, number[]>>(trees.map(([t]) => [t, new Map(PROBES.map(([e]) => [e, [] as number[]]))]));

console.log(`${values.processes} fresh gateways per tree, /${values.path}: ${warmup} warm-up requests, then ${n} counted (${concurrency} keep-alive connections)${values['access-log'] ? ', access log on' : ''}${values['mixed-query'] ? ', every other request with a query string' : ''}`);
for (let i = 0; i < Number(values.processes); i++) {
  for (const [tree, root, tracing, lone] of trees) {
    const dir = join(tmp, `${tree.replace(/[ %]/g, '_')}${i}`);
    const side = await startHopSide(`${tree}${i}`, root, { dir, originPort, gatewayCpu: null, agentCpu: null, nodeFlags, tracing, ...(values['access-log'] ? { accessLogFile: join(dir, 'access.log') } : {}) });
    // `RATE:one`: one request recorded (a client traceparent with flags 01) before the warm-up
    if (lone !== undefined && (await sendFixed(side.port, `/${values.path}`, 1, 1, { traceparent: lone })) !== 0) throw new Error('the lone request was not answered 200');
    const warm = values.probes === 'ic' ? new Map(PROBES.map(([e]) => [e, Number.NaN])) : (await countProbes(side.gateway.pid, () => send(side.port, warmup))).counts;
    if (values.probes === 'ic') await send(side.port, warmup);
    if (values.stacks) await printStacks(side.gateway.pid, () => send(side.port, n));
    const { counts, result: bad } = await countProbes(side.gateway.pid, () => send(side.port, n));
    await side.gateway.stop();
    await side.agent.stop();
    const row = PROBES.map(([e]) => {
      const x = counts.get(e)! / n;
      perReq.get(tree)!.get(e)!.push(x);
      return `${e} ${fmt(x)}`;
    });
    const warmRow = values.probes === 'ic' ? '' : ` | warm-up ${PROBES.map(([e]) => `${e} ${(warm.get(e)! / warmup).toFixed(2)}`).join(', ')}`;
    console.log(`${tree.padEnd(9)} process ${i + 1}: per request ${row.join(', ')}${bad ? ` (${bad} non-200)` : ''}${warmRow}`);
  }
}

console.log('\nper tree: processes with any define call per request (>= 1), and the median per request');
for (const [tree] of trees) {
  const m = perReq.get(tree)!;
  const slow = m.get('define')!.filter((x) => x >= 1).length;
  console.log(`${tree}: ${slow}/${values.processes} in the define state; median ${PROBES.map(([e]) => `${e} ${fmt(median(m.get(e)!))}`).join(', ')}`);
}
process.exit(0); // the origin's pipes would keep the loop alive; the exit handlers stop it and remove the probes
