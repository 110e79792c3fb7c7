// What TurboFan makes of the request path in gateways that differ only in what tracing has seen:
// each --tracing variant (bench/lib/tracing-variants.ts: off, 0, 0.01, 0:one, 0:one:noexport, ...)
// is started fresh (agent-hop side: compiled build, /pass to an nginx origin), warmed up with
// --warmup requests, then --requests are sent; V8's --trace-opt/--trace-deopt (and with --inlining
// --trace-turbo-inlining) lines are kept per phase in DIR/<variant>-<i>.<phase>.log, and the
// optimising compiles and deopts of each phase are counted per function. Counts, not time: robust
// to the machine's load (docs/tracing.md "Session 30").
//
//   node --import tsx bench/tracing-jit.ts --tracing 0,0:one,0.01 [--processes 2] [--warmup 20000]
//       [--requests 10000] [--inlining] [--dir DIR] [--functions admit,begin,finish,attempts]
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin, startHopSide } from './lib/agent-hop-side.ts';
import { benchScratchDir } from './lib/processes.ts';
import { sendFixed } from './lib/instr.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';
import { collectLines } from './lib/gc-trace.ts';
import { parseRates, loneRequestTraceparent } from './lib/tracing-variants.ts';
import { readFileSync } from 'node:fs';

/** The main thread's user and system clock ticks (/proc/PID/task/PID/stat fields 14 and 15). */
function mainTicks(pid: number): { user: number; sys: number } {
  const text = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]), sys: Number(f[12]) };
}

const { values } = parseArgs({
  options: {
    tracing: { type: 'string', default: '0,0:one,0.01' },
    processes: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '20000' },
    requests: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '8' },
    inlining: { type: 'boolean', default: false },
    dir: { type: 'string' },
    'node-flags': { type: 'string', default: '' },
  },
});
const tmp = benchScratchDir('tracing-jit-');
const dir = resolve(values.dir ?? join(tmp, 'logs'));
mkdirSync(dir, { recursive: true });
const { port: originPort } = await startHopOrigin(tmp);
const sink = await startOtlpSink();
const NO_EXPORT = 'max-queue-size 10000000; max-export-batch-size 10000000; scheduled-delay "3600s"';
const flags = ['--trace-opt', '--trace-deopt', ...(values.inlining ? ['--trace-turbo-inlining'] : []), ...values['node-flags'].split(/\s+/).filter(Boolean)];
const specs = values.tracing.split(',').map((s) => s.trim());

/** `[marking 0x... <JSFunction name (sfi = ...)>` / `[completed compiling ... <JSFunction name ...> (target TURBOFAN)` / `[bailout (kind: deopt-eager, reason: ...): begin deoptimization of <JSFunction name ...>` */
const fnName = (line: string): string => /<JSFunction ([^ >]*)/.exec(line)?.[1] ?? '?';
function summarise(lines: string[]): { compiles: Map<string, number>; deopts: Map<string, number> } {
  const compiles = new Map<string, number>();
  const deopts = new Map<string, number>();
  for (const l of lines) {
    if (l.startsWith('[completed compiling') || l.startsWith('[completed optimizing')) compiles.set(fnName(l), (compiles.get(fnName(l)) ?? 0) + 1);
    else if (l.includes('bailout (kind:')) {
      const reason = /reason: ([^)]*)\)/.exec(l)?.[1] ?? '?';
      const k = `${fnName(l)} (${reason})`;
      deopts.set(k, (deopts.get(k) ?? 0) + 1);
    }
  }
  return { compiles, deopts };
}
const show = (m: Map<string, number>): string => [...m].sort((a, b) => b[1] - a[1]).map(([k, n]) => (n > 1 ? `${k} x${n}` : k)).join(', ') || '-';

for (let i = 1; i <= Number(values.processes); i++) {
  for (const spec of specs) {
    const v = parseRates(spec)[0]!;
    const tag = `${v.name.replace(/[ %]/g, '_')}-${i}`;
    const side = await startHopSide(tag, resolve(import.meta.dirname, '..'), {
      dir: join(tmp, tag),
      originPort,
      gatewayCpu: null,
      agentCpu: null,
      nodeFlags: flags,
      ...(v.rate === undefined ? {} : { tracing: { endpoint: `http://127.0.0.1:${sink.port}`, rate: v.rate, extra: v.noExport ? NO_EXPORT : undefined } }),
    });
    const lines = collectLines(side.gateway.child.stdout!);
    const lone = loneRequestTraceparent(v);
    if (lone !== undefined && (await sendFixed(side.port, '/pass', 1, 1, { traceparent: lone })) !== 0) throw new Error('the lone request failed');
    const bad1 = await sendFixed(side.port, '/pass', Number(values.warmup), Number(values.concurrency));
    await new Promise((r) => setTimeout(r, 200));
    const mark = lines.length;
    const t0 = mainTicks(side.gateway.pid);
    const bad2 = await sendFixed(side.port, '/pass', Number(values.requests), Number(values.concurrency));
    await new Promise((r) => setTimeout(r, 200));
    const end = lines.length;
    const t1 = mainTicks(side.gateway.pid);
    await side.gateway.stop();
    await side.agent.stop();
    writeFileSync(join(dir, `${tag}.warmup.log`), lines.slice(0, mark).join('\n'));
    writeFileSync(join(dir, `${tag}.measured.log`), lines.slice(mark, end).join('\n'));
    const w = summarise(lines.slice(0, mark));
    const m = summarise(lines.slice(mark, end));
    const sum = (x: Map<string, number>) => [...x.values()].reduce((a, b) => a + b, 0);
    console.log(`${v.name.padEnd(16)} #${i}: warm-up ${sum(w.compiles)} compiles, ${sum(w.deopts)} deopts; measured ${sum(m.compiles)} compiles, ${sum(m.deopts)} deopts; main thread system share ${((100 * (t1.sys - t0.sys)) / Math.max(1, t1.sys - t0.sys + t1.user - t0.user)).toFixed(1)}% of ${t1.sys - t0.sys + t1.user - t0.user} ticks${bad1 + bad2 ? ` (${bad1 + bad2} non-200)` : ''}`);
    console.log(`   warm-up deopts: ${show(w.deopts)}`);
    console.log(`   measured compiles: ${show(m.compiles)}`);
    console.log(`   measured deopts: ${show(m.deopts)}`);
  }
}
console.log(`logs: ${dir}`);
await sink.close();
process.exit(0);
