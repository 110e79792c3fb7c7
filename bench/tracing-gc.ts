// Where does the timed 1% cost go outside the request path's own instructions? Counts, per
// request, natively (docs/tracing.md, session 14): each variant is a fresh gateway (the agent-hop
// side's /pass route, bench/lib/agent-hop-side.ts) run with --trace-gc-nvp --trace-opt
// --trace-deopt; after the warm-up every gateway gets segments of exactly --requests keep-alive
// requests in turn (the order mirrored every other round); per segment: scavenges, mark-compacts,
// bytes allocated and promoted (summed from the GC lines the segment produced), optimising
// compiles and deoptimisations (V8's trace lines), the OTLP batches the sink received, and the CPU
// time of the main thread and of the other threads (V8's compiler and GC helpers, libuv) from
// /proc/PID/task/*/schedstat. The counts do not depend on the load; the CPU split does (it is
// printed as a share, for where the time goes, not as a figure to compare across runs).
//   node --import tsx bench/tracing-gc.ts [--tracing off,0,0.01,0.01:noexport,1] [--baseline DIR]
//       [--segments 6] [--requests 10000] [--warmup 60000] [--concurrency 8] [--node-flags "--predictable-gc-schedule"]
// (--predictable-gc-schedule, the default: a fixed young generation, so the GC counts do not follow
// the allocation rate, i.e. the load: without it a loaded run scavenged ~10x as often.)
// `RATE:noexport`: records and encodes the sampled spans but sends none while the process runs.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin, startHopSide, type HopSide } from './lib/agent-hop-side.ts';
import { sendFixed } from './lib/instr.ts';
import { benchScratchDir } from './lib/processes.ts';
import { median } from './lib/stats.ts';
import { collectLines, sumGcLines, sumJitLines } from './lib/gc-trace.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';

const { values } = parseArgs({
  options: {
    tracing: { type: 'string', default: 'off,0,0.01,0.01:noexport,1' },
    baseline: { type: 'string' },
    segments: { type: 'string', default: '6' },
    requests: { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '60000' },
    concurrency: { type: 'string', default: '8' },
    'node-flags': { type: 'string', default: '--predictable-gc-schedule' },
    // list the functions TurboFan compiled during the segments, per gateway, with their milliseconds
    'list-compiles': { type: 'boolean', default: false },
  },
});
const REPO = resolve(import.meta.dirname, '..');
const tmp = benchScratchDir('tracing-gc-');
const n = Number(values.requests);
const concurrency = Number(values.concurrency);
const NO_EXPORT = 'max-queue-size 10000000; max-export-batch-size 10000000; scheduled-delay "3600s"';

interface Traced extends HopSide {
  lines: string[];
}

/** CPU ns of the main thread and of all other threads of `pid`. */
function threadCpu(pid: number): { main: number; other: number } {
  let main = 0;
  let other = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let ns: number;
    try {
      ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      continue; // a thread that ended
    }
    if (Number(tid) === pid) main += ns;
    else other += ns;
  }
  return { main, other };
}

const sink = await startOtlpSink();
const { port: originPort } = await startHopOrigin(tmp);
const roots = [['', REPO] as const, ...(values.baseline ? [['base ', resolve(values.baseline)] as const] : [])];
const rates = values.tracing.split(',').map((r) => r.trim());
const rateLabel = (r: string) => (r === 'off' ? 'off' : `${Number(r.split(':')[0]) * 100}%${r.endsWith(':noexport') ? ' noexport' : ''}`);
const sides: Traced[] = [];
for (const [t, root] of roots) {
  for (const r of rates) {
    const name = `${t}${rateLabel(r)}`;
    const tracing = r === 'off' ? undefined : { endpoint: `http://127.0.0.1:${sink.port}`, rate: Number(r.split(':')[0]), extra: r.endsWith(':noexport') ? NO_EXPORT : undefined };
    const side = await startHopSide(name.replace(/[ %]/g, '_'), root, {
      dir: join(tmp, name.replace(/[ %]/g, '_')),
      originPort,
      gatewayCpu: null,
      agentCpu: null,
      tracing,
      nodeFlags: ['--trace-gc-nvp', '--trace-opt', '--trace-deopt', ...values['node-flags'].split(/\s+/).filter(Boolean)],
    });
    sides.push({ ...side, name, lines: collectLines(side.gateway.child.stdout!) });
  }
}
// warm-up in turn, in chunks, so no gateway sits idle long after its own
const chunks = 6;
for (let c = 0; c < chunks; c++) for (const s of sides) await sendFixed(s.port, '/pass', Math.ceil(Number(values.warmup) / chunks), concurrency);

interface Seg {
  scavenges: number;
  markCompacts: number;
  allocated: number;
  promoted: number;
  opts: number;
  compileMs: number;
  deopts: number;
  batches: number;
  mainNs: number;
  otherNs: number;
}
const results = new Map<string, Seg[]>(sides.map((s) => [s.name, []]));
/** per gateway: compiled function (with OSR marked) -> [compiles, ms] */
const compiledFns = new Map<string, Map<string, [number, number]>>(sides.map((s) => [s.name, new Map()]));
const segments = Number(values.segments);
console.log(`tracing-gc: ${sides.length} gateways, ${segments} segments of ${n} /pass requests each after ${values.warmup} warm-up, ${concurrency} keep-alive connections`);
for (let i = 0; i < segments; i++) {
  const order = i % 2 === 0 ? sides : [...sides].reverse();
  for (const s of order) {
    await new Promise((r) => setTimeout(r, 150)); // a pending trace line of the previous segment arrives before the cut
    const from = s.lines.length;
    const cpu0 = threadCpu(s.gateway.child.pid!);
    const b0 = sink.batches();
    const bad = await sendFixed(s.port, '/pass', n, concurrency);
    // the export of the segment's last spans (scheduled-delay 1 s) falls inside it; every gateway idles as long
    await new Promise((r) => setTimeout(r, 1300));
    const cpu1 = threadCpu(s.gateway.child.pid!);
    const batches = sink.batches() - b0; // only this gateway has new spans while it is loaded
    const lines = s.lines.slice(from);
    const gc = sumGcLines(lines);
    const allocated = lines.reduce((a, l) => a + Number(/(?:^|\s)allocated=(\d+)/.exec(l)?.[1] ?? 0), 0);
    // one `[completed compiling ... - took PREPARE, EXECUTE, FINALIZE ms]` line per optimising compile (the
    // `[completed optimizing` line after it names the same compile); the times are wall-clock phases
    const { compiles: opts, compileMs, deopts, compiled } = sumJitLines(lines);
    for (const [fn, ms] of compiled) {
      const e = compiledFns.get(s.name)!.get(fn) ?? [0, 0];
      e[0]++;
      e[1] += ms;
      compiledFns.get(s.name)!.set(fn, e);
    }
    const seg: Seg = { scavenges: gc.scavenges, markCompacts: gc.markCompacts, allocated, promoted: gc.promotedBytes, opts, compileMs, deopts, batches, mainNs: cpu1.main - cpu0.main, otherNs: cpu1.other - cpu0.other };
    results.get(s.name)!.push(seg);
    console.log(
      `  ${s.name.padEnd(16)} scav ${seg.scavenges} mc ${seg.markCompacts} alloc ${(allocated / n).toFixed(0)} B/req promoted ${(seg.promoted / n).toFixed(1)} B/req opt ${opts} (${compileMs.toFixed(1)} ms) deopt ${deopts} batches ${batches} cpu main ${(seg.mainNs / n / 1000).toFixed(1)} other ${(seg.otherNs / n / 1000).toFixed(2)} µs/req${bad ? ` ${bad} non-200` : ''}`,
    );
  }
}
console.log(`\nper request, medians over ${segments} segments (allocated: bytes V8 reported at each GC of the segment; CPU: timing, for the split only)`);
console.log('| gateway | scavenges /1k req | mark-compacts | allocated B/req | promoted B/req | opt compiles /1k req | their ms /1k req | deopts /1k req | OTLP batches | main-thread µs/req | other threads µs/req |');
console.log('|:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
for (const [name, list] of results) {
  const m = (f: (x: Seg) => number) => median(list.map(f));
  console.log(
    `| ${name} | ${m((x) => (x.scavenges / n) * 1000).toFixed(2)} | ${list.map((x) => x.markCompacts).join(',')} | ${m((x) => x.allocated / n).toFixed(0)} | ${m((x) => x.promoted / n).toFixed(1)} | ${m((x) => (x.opts / n) * 1000).toFixed(2)} | ${m((x) => (x.compileMs / n) * 1000).toFixed(2)} | ${m((x) => (x.deopts / n) * 1000).toFixed(2)} | ${list.map((x) => x.batches).join(',')} | ${m((x) => x.mainNs / n / 1000).toFixed(1)} | ${m((x) => x.otherNs / n / 1000).toFixed(2)} |`,
  );
}
if (values['list-compiles']) {
  for (const [name, fns] of compiledFns) {
    console.log(`\n${name}: functions optimised during the segments (compiles, ms)`);
    for (const [fn, [c, ms]] of [...fns].sort((a, b) => b[1][1] - a[1][1])) console.log(`  ${String(c).padStart(3)} ${ms.toFixed(1).padStart(7)} ms  ${fn}`);
  }
}
for (const s of sides) await s.gateway.stop();
for (const s of sides) await s.agent.stop();
await sink.close();
process.exit(0);
