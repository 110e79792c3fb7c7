// GC per request on the WAF path (issue #16): one compiled Sentinel gateway with the WAF in-process
// or behind sentinel-waf, pinned to CPU 0, under the bench:waf load (wrk, 50 connections, CPU 1),
// started with V8's --trace-gc-nvp; prints per request: scavenges, bytes surviving them, bytes
// promoted, GC pauses, and CPU (from /proc). Bytes per request depend much less on other load
// than times do. Compiles <root> into <root>/.tmp/bench/dist first (as `npm run bench:waf` does).
//
//   node --import tsx bench/waf-gc.ts <root> inproc|agent get|post <seconds> [--host=NAME] [node flags...]
//   e.g. node --import tsx bench/waf-gc.ts . inproc post 8 --host=shop.example.com --max-semi-space-size=64
// --host=NAME sends that Host header (as bench:waf --host: wrk's numeric one matches CRS 920350).
// With --trace-deopt / --trace-opt among the node flags, also prints V8's deoptimisations and
// optimised compiles per 1,000 requests of the measured window (a deopt loop shows as both).
// --survivors=FILE: V8's sampling heap profiler over the measured window in the in-process gateway
// (the agent with `agent`), keeping only samples no scavenge collected (those a mark-compact
// collects are kept): prints the bytes per request by allocating JS function (the outermost frame
// of optimised code: inlined callees count as their caller) and writes the profile to FILE
// (SURVIVORS_INTERVAL env: bytes between samples, default 4096).
// CRS from $CRS_DIR (default ../shared/conformance/crs). Scratch files under os.tmpdir().
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, readFileSync, openSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { originNginxConf, writeOriginFiles } from './lib/configs.ts';
import { freePort } from './lib/processes.ts';
import { renderPassthrough } from './lib/targets.ts';
import { compiledWafEntries, wrkScript } from './lib/waf-path.ts';
import { BROWSER_HEADERS } from './lib/waf-requests.ts';
const [rootArg, mode, kind, secs, ...rest] = process.argv.slice(2) as [string, string, string, string, ...string[]];
const root = resolve(rootArg);
const host = rest.find((a) => a.startsWith('--host='))?.slice('--host='.length) ?? '';
const survivors = rest.find((a) => a.startsWith('--survivors='))?.slice('--survivors='.length);
const nodeArgs = rest.filter((a) => !a.startsWith('--host=') && !a.startsWith('--survivors='));
const flags = ['--trace-gc-nvp', ...nodeArgs];
// the process whose survivors are sampled: the gateway in-process, the agent otherwise
const survFlags = survivors ? ['--import', resolve(import.meta.dirname, 'lib', 'survivors-preload.mjs')] : [];
const survEnv = survivors ? { SURVIVORS_OUT: resolve(survivors) } : {};
const crs = process.env.CRS_DIR ?? resolve(import.meta.dirname, '..', '..', 'shared', 'conformance', 'crs');
const dir = mkdtempSync(join(tmpdir(), 'sentinel-waf-gc-'));
for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { recursive: true });
const [port, origin, metrics] = [await freePort(), await freePort(), await freePort()];
writeOriginFiles(dir);
writeFileSync(join(dir, 'origin.conf'), originNginxConf(origin, dir));
const o = spawn('taskset', ['-c', '1', 'nginx', '-e', 'stderr', '-p', dir, '-c', join(dir, 'origin.conf')], { stdio: 'ignore', detached: true });
const base = renderPassthrough(root, { listen: `127.0.0.1:${port}`, origin: `127.0.0.1:${origin}`, metrics: `127.0.0.1:${metrics}` });
const transport = mode === 'inproc' ? `in-process "sentinel-waf"\n        config { crs-dir "${crs}"; paranoia-level 1; mode "blocking" }` : `unix-socket "${dir}/waf.sock"`;
const cfg = `${base.replace(/( {8}upstream "origin"\n)/, `$1        filters "waf"\n`).replace(/worker-threads \d+/, 'worker-threads 1')}
agents { agent "waf" { ${transport}
 events "request_headers" "request_body"
 timeout-ms 10000 } }
filters { filter "waf" { type "agent"; agent "waf"; failure-mode "closed" } }
waf { body-inspection { content-types "application/json" "application/x-www-form-urlencoded" } }
`;
writeFileSync(join(dir, 'gw.kdl'), cfg);
const { dist } = await compiledWafEntries(root);
const procs: ReturnType<typeof spawn>[] = [o];
if (mode === 'agent') {
  const a = spawn('taskset', ['-c', '0', process.execPath, ...flags, ...survFlags, join(dist, 'src/waf/agent/main.js'), '--socket', `${dir}/waf.sock`, '--crs-dir', crs, '--paranoia-level', '1', '--mode', 'blocking', '--workers', '1'], { stdio: ['ignore', openSync(join(dir, 'agent.log'), 'w'), openSync(join(dir, 'agent.err'), 'w')], detached: true, cwd: root, env: { ...process.env, ...survEnv, SENTINEL_WAF_REQUEST_SIDE_ONLY: 'true' } });
  procs.push(a);
  for (let i = 0; i < 600 && !readFileSync(join(dir, 'agent.err'), 'utf8').includes('listening'); i++) await new Promise((r) => setTimeout(r, 200));
}
const g = spawn('taskset', ['-c', '0', process.execPath, ...flags, ...(mode === 'inproc' ? survFlags : []), join(dist, 'src/cli/main.js'), 'run', '-c', join(dir, 'gw.kdl')], { stdio: ['ignore', openSync(join(dir, 'gw.log'), 'w'), openSync(join(dir, 'gw.err'), 'w')], detached: true, cwd: root, env: { ...process.env, ...(mode === 'inproc' ? survEnv : {}), NODE_ENV: 'production' } });
procs.push(g);
const hdr = Object.fromEntries(BROWSER_HEADERS);
for (let i = 0; ; i++) {
  const r = await fetch(`http://127.0.0.1:${port}/small`, { headers: hdr }).catch(() => undefined);
  if (r?.status === 200) break;
  if (i === 600 || g.exitCode !== null) {
    // say why (the gateway's stderr) and leave no process behind
    console.error(`the gateway did not answer 200 (last: ${r?.status ?? 'no answer'}):\n${readFileSync(join(dir, 'gw.err'), 'utf8').slice(-2000)}`);
    for (const p of procs) {
      try {
        process.kill(-p.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
    }
    process.exit(1);
  }
  await new Promise((res) => setTimeout(res, 200));
}
writeFileSync(join(dir, 'load.lua'), wrkScript(kind === 'post' ? 'post' : 'get', host));
const wrk = (s: number) => execFileSync('taskset', ['-c', '1', 'wrk', '-t1', '-c50', `-d${s}s`, '-s', join(dir, 'load.lua'), `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
wrk(3); // warm-up
const cpu = (pid: number) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' '); return (Number(f[11]) + Number(f[12])) * 10; };
const pids = procs.slice(1).map((p) => p.pid!);
const lines = (f: string) => readFileSync(join(dir, f), 'utf8').split('\n');
const l0 = { gw: lines('gw.log').length, ag: mode === 'agent' ? lines('agent.log').length : 0 };
const target = pids[0]!; // the agent, or the in-process gateway
if (survivors) process.kill(target, 'SIGUSR2');
const c0 = pids.map(cpu);
const out = wrk(Number(secs));
const c1 = pids.map(cpu);
if (survivors) process.kill(target, 'SIGUSR2');
const reqs = Number(/(\d+) requests in/.exec(out)![1]);
const non = /Non-2xx[^\d]*(\d+)/.exec(out)?.[1] ?? '0';
const summarize = (ls: string[]) => {
  const gcs = ls.filter((l) => l.includes(' gc='));
  const f = (l: string, k: string) => Number(new RegExp(`\\b${k}=([\\d.]+)`).exec(l)?.[1] ?? 0);
  const sc = gcs.filter((l) => / gc=s /.test(l)), mc = gcs.filter((l) => !/ gc=s /.test(l));
  const sum = (xs: string[], k: string) => xs.reduce((n, l) => n + f(l, k), 0);
  const deopts = ls.filter((l) => l.includes('[bailout (kind: deopt')).length;
  const opts = ls.filter((l) => /\[completed (optimizing|compiling)/.test(l)).length;
  const jit = nodeArgs.some((a) => a.startsWith('--trace-deopt') || a.startsWith('--trace-opt')) ? `; deopts ${(deopts / reqs * 1000).toFixed(2)}/1k req, optimised compiles ${(opts / reqs * 1000).toFixed(2)}/1k req` : '';
  return `scavenges ${(sc.length / reqs * 1000).toFixed(1)}/1k req, survived ${(sum(sc, 'new_space_survived') / reqs / 1024).toFixed(1)} KB/req, promoted ${(sum(gcs, 'promoted') / reqs / 1024).toFixed(1)} KB/req, pause ${(sum(sc, 'pause') / reqs).toFixed(3)} ms/req; other GCs ${mc.length} (${mc.map((l) => /gc=(\w+)/.exec(l)?.[1]).join(',')}) pause ${(sum(mc, 'pause') / reqs).toFixed(3)} ms/req; heap after last ${(f(gcs.at(-1) ?? '', 'total_size_after') / 1e6).toFixed(0)} MB${jit}`;
};
console.log(`${root} ${mode} ${kind}: ${reqs} req (${non} non-2xx), CPU ${pids.map((p, i) => ((c1[i]! - c0[i]!) / reqs).toFixed(3)).join('+')} ms/req`);
console.log(`  gateway: ${summarize(lines('gw.log').slice(l0.gw))}`);
if (mode === 'agent') console.log(`  agent:   ${summarize(lines('agent.log').slice(l0.ag))}`);
if (survivors) {
  for (let i = 0; i < 100; i++) {
    try {
      if (readFileSync(survivors, 'utf8').length > 0) break;
    } catch {
      // not written yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  printSurvivors(JSON.parse(readFileSync(survivors, 'utf8')) as ProfileNode & { head?: ProfileNode }, reqs);
}
for (const p of procs) {
  try {
    process.kill(-p.pid!, 'SIGTERM');
  } catch {
    // already gone
  }
}
rmSync(dir, { recursive: true, force: true });

interface ProfileNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: ProfileNode[] }
/** Bytes per request still sampled (survived every scavenge) by allocating function, and by its caller chain. */
function printSurvivors(p: ProfileNode & { head?: ProfileNode }, n: number): void {
  const site = new Map<string, number>();
  const chain = new Map<string, number>();
  const name = (f: ProfileNode['callFrame']) => `${f.functionName || '(anon)'} ${f.url.replace(/^.*\/dist\//, '')}:${f.lineNumber + 1}`;
  let total = 0;
  const walk = (node: ProfileNode, stack: string[]) => {
    const s = [...stack, name(node.callFrame)];
    if (node.selfSize > 0) {
      total += node.selfSize;
      const k = s.at(-1)!;
      site.set(k, (site.get(k) ?? 0) + node.selfSize);
      const c = s.slice(-4).reverse().join(' < ');
      chain.set(c, (chain.get(c) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, s);
  };
  walk(p.head ?? p, []);
  const top = (m: Map<string, number>, k: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([s, b]) => `    ${(b / n).toFixed(0).padStart(6)} B/req  ${s}`).join('\n');
  console.log(`  survivors (sampled, every scavenge survived): ${(total / n / 1024).toFixed(2)} KB/req\n  by allocating function:\n${top(site, 20)}\n  by the last 4 frames:\n${top(chain, 12)}`);
}
