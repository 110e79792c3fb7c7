// Instructions per request of the whole WAF path (issue #16, "the in-process anomaly"): the
// compiled gateway with the WAF in-process (`inproc`), the same with an empty rule set
// (`inproc-norules`: the gateway's half of the in-process path, the bridge and a transaction's
// set-up, no CRS rule run), or the gateway plus the sentinel-waf agent process (`agent`), or
// passthrough (`pass`), every process under callgrind. Per window the
// counters of all of a side's processes are zeroed, exactly --requests benign GETs (or 2 KiB JSON
// POSTs: --request post) are sent over --concurrency keep-alive connections, each with its own
// counter in the query (or order id) and the bench's browser headers, and the counters are dumped.
// Printed per side and process: instructions per request, split into V8's GC, its optimising
// compilers, once-a-second timer work and the rest (bench/lib/callgrind-split.ts); what other load
// on the machine does not change. The sides run at the same time, their windows alternate.
//
//   node --import tsx bench/waf-path-instr.ts [--sides inproc,inproc-norules,agent,pass] [--baseline DIR]
//       [--windows 3] [--requests 400] [--warmup 4000] [--concurrency 50] [--request get|post]
//       [--host shop.example.com] [--gateway-node-flags "--min-semi-space-size=16"]
//       [--node-flags "..."] [--keep-dumps DIR]
//
// A side KIND@FLAGS (e.g. inproc@--min-semi-space-size=64, inproc@ for none) gives that side's
// gateway FLAGS ('+' between) instead of --gateway-node-flags.
// --baseline DIR adds each side again from another checkout (with node_modules), named NAME[base].
// --gateway-node-flags: node flags for the gateways (default --min-semi-space-size=16, as the
// quiet bench:waf runs start this checkout's gateways); --node-flags: for every process.
// BENCH_CALLGRIND_FLAGS="--cache-sim=yes" adds simulated cache misses (printed when present).
// --plain: no callgrind; the processes run at full speed with --trace-gc-nvp --trace-opt
// --trace-deopt (their output kept in --keep-dumps DIR as SIDE-ROLE.out, for the functions
// compiled and deoptimised) and each window counts per request, per process, from their output: scavenges,
// bytes surviving them and promoted, mark-compacts, optimised compiles and deoptimisations, and
// the CPU time (/proc, load-dependent). Counts per request, not per second: a loaded machine
// stretches the windows but does not change them much.
// CRS from $CRS_DIR (default ../shared/conformance/crs).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { parseCallgrindSummary } from './lib/callgrind.ts';
import { splitCallgrindDump } from './lib/callgrind-split.ts';
import { originNginxConf, writeOriginFiles } from './lib/configs.ts';
import { callgrindWrap, sendFixed, type FixedRequest } from './lib/instr.ts';
import { benchScratchDir, freePort } from './lib/processes.ts';
import { median } from './lib/stats.ts';
import { renderPassthrough } from './lib/targets.ts';
import { compiledWafEntries, sentinelWafConfig } from './lib/waf-path.ts';
import { BROWSER_HEADERS, getPath, jsonBody, POST_PATH } from './lib/waf-requests.ts';

const REPO = resolve(import.meta.dirname, '..');
const { values: argv } = parseArgs({
  options: {
    sides: { type: 'string', default: 'inproc,agent' },
    baseline: { type: 'string', default: '' },
    windows: { type: 'string', default: '3' },
    requests: { type: 'string', default: '400' },
    warmup: { type: 'string', default: '4000' },
    concurrency: { type: 'string', default: '50' },
    request: { type: 'string', default: 'get' },
    host: { type: 'string', default: 'shop.example.com' },
    'gateway-node-flags': { type: 'string', default: '--min-semi-space-size=16' },
    'node-flags': { type: 'string', default: '' },
    'keep-dumps': { type: 'string', default: '' },
    plain: { type: 'boolean', default: false },
    'crs-dir': { type: 'string', default: process.env.CRS_DIR ?? join(REPO, '..', 'shared', 'conformance', 'crs') },
  },
});
const words = (s: string): string[] => s.split(/\s+/).filter(Boolean);
const crsDir = resolve(argv['crs-dir']);
const post = argv.request === 'post';
const dir = benchScratchDir('sentinel-waf-path-instr-');
const cgDir = join(dir, 'cg');
mkdirSync(cgDir, { recursive: true });
if (argv['keep-dumps']) mkdirSync(argv['keep-dumps'], { recursive: true });

interface Proc { role: 'gateway' | 'agent'; child: ChildProcess; out: string }
interface Side { name: string; port: number; procs: Proc[] }
const started: ChildProcess[] = [];

const PLAIN_FLAGS = ['--trace-gc-nvp', '--trace-opt', '--trace-deopt'];

function spawnCounted(name: string, args: string[], cwd: string, env: Record<string, string>): ChildProcess {
  const [cmd, ...rest] = argv.plain ? [process.execPath, ...PLAIN_FLAGS, ...args] : [...callgrindWrap(cgDir, name), process.execPath, ...args];
  const out = openSync(join(dir, `${name}.out`), 'w');
  const child = spawn(cmd!, rest, { cwd, env: { ...process.env, NODE_ENV: 'production', ...env }, stdio: ['ignore', out, out], detached: true });
  started.push(child);
  return child;
}

const headers: Record<string, string> = { Host: argv.host, ...Object.fromEntries(BROWSER_HEADERS) };
if (!argv.host) delete headers.Host;
const [bodyPre, bodyPost] = jsonBody('{{n}}').split('{{n}}') as [string, string];
let counter = 0;

/** The next request of the bench: a benign GET (or the JSON POST) with a fresh counter. */
function nextRequest(): FixedRequest {
  const id = String(++counter).padStart(8, '0');
  if (!post) return { path: getPath(String(counter)), headers };
  const body = bodyPre + id + bodyPost;
  return { method: 'POST', path: POST_PATH, headers: { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) }, body };
}
const sendBench = (port: number, n: number, concurrency: number): Promise<number> => sendFixed(port, nextRequest, n, concurrency);

/** A rules directory with one empty .conf (the CRS's `Include *.conf` must match a file). */
function emptyRulesDir(): string {
  const d = join(dir, 'no-rules');
  mkdirSync(d, { recursive: true });
  writeFileSync(join(d, 'empty.conf'), '# no rules\n');
  return d;
}

async function startSide(spec: string, root: string, label: string, originPort: number): Promise<Side> {
  // KIND@FLAGS: this side's gateway gets FLAGS ('+' between; '@' alone: none) instead of --gateway-node-flags
  const [kind, own] = spec.split('@') as [string, string | undefined];
  const gatewayFlags = own === undefined ? words(argv['gateway-node-flags']) : own.split('+').filter(Boolean);
  label = label.replace(/[^\w[\]=.-]+/g, '_');
  const { gateway, agent } = await compiledWafEntries(root);
  const port = await freePort();
  const metrics = await freePort();
  const base = renderPassthrough(root, { listen: `127.0.0.1:${port}`, origin: `127.0.0.1:${originPort}`, metrics: `127.0.0.1:${metrics}` }).replace(/worker-threads \d+/, 'worker-threads 1');
  const procs: Proc[] = [];
  let config = base;
  if (kind === 'inproc' || kind === 'inproc-norules') {
    // inproc-norules: the same in-process path with an empty rule set (crs-setup and the
    // recommended conf only): the gateway's half, the bridge and a transaction's set-up, no CRS rules
    const rules = kind === 'inproc-norules' ? `; rules-dir "${emptyRulesDir()}"` : '';
    config = sentinelWafConfig(base, `in-process "sentinel-waf"\n        config { crs-dir "${crsDir}"${rules}; paranoia-level 1; mode "blocking" }`, 1).replace('timeout-ms 10000', 'timeout-ms 600000');
  }
  else if (kind === 'agent') {
    const socket = join(dir, `${label}.sock`);
    rmSync(socket, { force: true });
    const child = spawnCounted(`${label}-agent`, [...words(argv['node-flags']), agent, '--socket', socket, '--crs-dir', crsDir, '--paranoia-level', '1', '--mode', 'blocking', '--workers', '1'], root, { SENTINEL_WAF_REQUEST_SIDE_ONLY: 'true' });
    procs.push({ role: 'agent', child, out: join(dir, `${label}-agent.out`) });
    for (let i = 0; !readFileSync(join(dir, `${label}-agent.out`), 'utf8').includes('listening'); i++) {
      if (i > 3000 || child.exitCode !== null) throw new Error(`${label}: sentinel-waf did not start:\n${readFileSync(join(dir, `${label}-agent.out`), 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // valgrind slows the agent tens of times: no call may time out and fail closed
    config = sentinelWafConfig(base, `unix-socket "${socket}"`, 1).replace('timeout-ms 10000', 'timeout-ms 600000');
  } else if (kind !== 'pass') throw new Error(`unknown side ${kind}: expected inproc, inproc-norules, agent or pass`);
  const file = join(dir, `${label}.kdl`);
  writeFileSync(file, config);
  const child = spawnCounted(`${label}-gateway`, [...words(argv['node-flags']), ...gatewayFlags, gateway, 'run', '-c', file], root, {});
  procs.unshift({ role: 'gateway', child, out: join(dir, `${label}-gateway.out`) });
  for (let i = 0; ; i++) {
    const bad = await sendBench(port, 1, 1).catch(() => 1);
    if (bad === 0) break;
    if (i > 1200 || child.exitCode !== null) throw new Error(`${label}: the gateway did not answer 200:\n${readFileSync(join(dir, `${label}-gateway.out`), 'utf8').slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return { name: label, port, procs };
}

interface Count { total: number; gc: number; compiler: number; periodic: number; rest: number; d1?: number; ll?: number; i1?: number }

const cpuMs = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

/** --plain: what each process's trace output says about one window, per request. */
async function plainWindow(side: Side, n: number): Promise<{ text: string; bad: number }> {
  const at = side.procs.map((p) => readFileSync(p.out).length);
  const c0 = side.procs.map((p) => cpuMs(p.child.pid!));
  const bad = await sendBench(side.port, n, Number(argv.concurrency));
  const parts = side.procs.map((p, i) => {
    const ls = readFileSync(p.out).subarray(at[i]).toString('utf8').split('\n');
    const gcs = ls.filter((l) => l.includes(' gc='));
    const f = (l: string, k: string): number => Number(new RegExp(`\\b${k}=([\\d.]+)`).exec(l)?.[1] ?? 0);
    const sc = gcs.filter((l) => / gc=s /.test(l));
    const sum = (xs: string[], k: string): number => xs.reduce((a, l) => a + f(l, k), 0);
    const per = (x: number): string => (x / n * 1000).toFixed(1);
    const deopts = ls.filter((l) => l.includes('[bailout (kind: deopt')).length;
    const compiles = ls.filter((l) => /\[completed (optimizing|compiling)/.test(l)).length;
    return `${p.role}: CPU ${((cpuMs(p.child.pid!) - c0[i]!) / n).toFixed(3)} ms, scavenges ${per(sc.length)}/1k, survived ${(sum(sc, 'new_space_survived') / n / 1024).toFixed(1)} KiB, promoted ${(sum(gcs, 'promoted') / n / 1024).toFixed(1)} KiB, other GCs ${gcs.length - sc.length}, pause ${(sum(gcs, 'pause') / n).toFixed(3)} ms, compiles ${per(compiles)}/1k, deopts ${per(deopts)}/1k`;
  });
  return { text: parts.join(' | '), bad };
}

/** Zeroes every process of the side, sends n requests, dumps, and returns the counts per process. */
async function countWindow(side: Side, n: number, w: number): Promise<{ counts: Count[]; bad: number }> {
  for (const p of side.procs) execFileSync('callgrind_control', ['-z', String(p.child.pid)], { stdio: 'ignore' });
  const bad = await sendBench(side.port, n, Number(argv.concurrency));
  const counts: Count[] = [];
  for (const p of side.procs) {
    const name = `${side.name}-${p.role}.${p.child.pid}.`;
    const before = new Set(readdirSync(cgDir));
    execFileSync('callgrind_control', ['-d', String(p.child.pid)], { stdio: 'ignore' });
    const fresh = readdirSync(cgDir).filter((f) => f.startsWith(name) && !before.has(f));
    if (fresh.length !== 1) throw new Error(`expected one new dump for ${name}, found ${fresh.join(', ') || 'none'}`);
    const text = readFileSync(join(cgDir, fresh[0]!), 'utf8');
    const split = splitCallgrindDump(text);
    parseCallgrindSummary(text);
    const c: Count = { total: split.total, gc: split.gc, compiler: split.compiler, periodic: split.periodic, rest: split.rest };
    // with --cache-sim=yes the summary carries Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
    const ev = /^events:\s*(.+)$/m.exec(text)?.[1]?.trim().split(/\s+/) ?? [];
    const sum = /^summary:\s*(.+)$/m.exec(text)?.[1]?.trim().split(/\s+/).map(Number) ?? [];
    const at = (e: string): number => sum[ev.indexOf(e)] ?? 0;
    if (ev.includes('D1mr')) {
      c.i1 = at('I1mr');
      c.d1 = at('D1mr') + at('D1mw');
      c.ll = at('ILmr') + at('DLmr') + at('DLmw');
    }
    if (argv['keep-dumps']) renameSync(join(cgDir, fresh[0]!), join(argv['keep-dumps'], `${side.name}-${p.role}-${w}.callgrind`));
    else rmSync(join(cgDir, fresh[0]!));
    counts.push(c);
  }
  return { counts, bad };
}

const kinds = argv.sides.split(',');
const origin = await freePort();
writeOriginFiles(dir);
for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { recursive: true });
writeFileSync(join(dir, 'origin.conf'), originNginxConf(origin, dir));
const nginx = spawn('taskset', ['-c', '1', 'nginx', '-e', 'stderr', '-p', dir, '-c', join(dir, 'origin.conf')], { stdio: 'ignore', detached: true });
started.push(nginx);
const cleanup = (): void => {
  for (const c of started) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
};
process.on('exit', cleanup);

const sides: Side[] = [];
try {
  for (const k of kinds) {
    sides.push(await startSide(k, REPO, k, origin));
    if (argv.baseline) sides.push(await startSide(k, resolve(argv.baseline), `${k}[base]`, origin));
  }
  const n = Number(argv.requests);
  const warm = Number(argv.warmup);
  console.log(`waf-path-instr: ${post ? 'POST' : 'GET'}, sides ${sides.map((s) => s.name).join(', ')}; warm-up ${warm} uninstrumented, then ${argv.windows} windows of ${n} requests, ${argv.concurrency} connections`);
  for (const s of sides) await sendBench(s.port, warm, Number(argv.concurrency));
  if (argv.plain) {
    for (let w = 0; w < Number(argv.windows); w++) {
      for (const s of w % 2 === 0 ? sides : [...sides].reverse()) {
        const { text, bad } = await plainWindow(s, n);
        console.log(`[window ${w + 1}] ${s.name.padEnd(13)} per request: ${text}${bad ? ` | non-200 ${bad}` : ''}`);
      }
    }
    // a graceful stop, so that --cpu-prof / --heap-prof in --node-flags write their files
    await Promise.all(sides.flatMap((s) => s.procs).map((p) => new Promise((done) => {
      const t = setTimeout(done, 20_000);
      p.child.once('exit', () => (clearTimeout(t), done(undefined)));
      p.child.kill('SIGTERM');
    })));
    // --keep-dumps DIR: the processes' trace output (--trace-opt/--trace-deopt by function)
    if (argv['keep-dumps']) for (const s of sides) for (const p of s.procs) writeFileSync(join(argv['keep-dumps'], `${s.name}-${p.role}.out`), readFileSync(p.out));
    process.exit(0);
  }
  for (const s of sides) {
    for (const p of s.procs) execFileSync('callgrind_control', ['-i', 'on', String(p.child.pid)], { stdio: 'ignore' });
    await sendBench(s.port, 200, Number(argv.concurrency)); // re-translate the hot code instrumented
  }
  const results = new Map<string, Count[][]>();
  for (let w = 0; w < Number(argv.windows); w++) {
    const order = w % 2 === 0 ? sides : [...sides].reverse();
    for (const s of order) {
      const { counts, bad } = await countWindow(s, n, w);
      const all = results.get(s.name) ?? [];
      all.push(counts);
      results.set(s.name, all);
      const per = (x: number): string => (x / n / 1000).toFixed(1);
      const fmt = (c: Count, i: number): string => `${s.procs[i]!.role} ${per(c.total)}k (gc ${per(c.gc)}k, compiler ${per(c.compiler)}k, periodic ${per(c.periodic)}k, rest ${per(c.rest)}k${c.d1 !== undefined ? `; misses/req I1 ${(c.i1! / n).toFixed(0)} D1 ${(c.d1 / n).toFixed(0)} LL ${(c.ll! / n).toFixed(0)}` : ''})`;
      console.log(`[window ${w + 1}] ${s.name.padEnd(13)} total ${per(counts.reduce((a, c) => a + c.total, 0))}k instr/req, rest ${per(counts.reduce((a, c) => a + c.rest, 0))}k | ${counts.map(fmt).join(' | ')}${bad ? ` | non-200 ${bad}` : ''}`);
    }
  }
  console.log('\nmedians per request (k instructions):');
  for (const s of sides) {
    const ws = results.get(s.name)!;
    const m = (f: (c: Count[]) => number): string => (median(ws.map(f)) / n / 1000).toFixed(1);
    const parts = s.procs.map((p, i) => `${p.role} ${m((c) => c[i]!.total)} (rest ${m((c) => c[i]!.rest)}, gc ${m((c) => c[i]!.gc)})`);
    console.log(`  ${s.name.padEnd(13)} total ${m((c) => c.reduce((a, x) => a + x.total, 0))}, rest ${m((c) => c.reduce((a, x) => a + x.rest, 0))}, gc ${m((c) => c.reduce((a, x) => a + x.gc, 0))} | ${parts.join(' | ')}`);
  }
} finally {
  cleanup();
  rmSync(dir, { recursive: true, force: true });
}
