// `npm run bench:waf`: the WAF path against its anchor (issue #16). In one run, interleaved over
// rounds, on the same core: Sentinel + sentinel-waf (OWASP CRS) and nginx + ModSecurity 3
// (libnginx-mod-http-modsecurity) with the SAME CRS, at the paranoia levels asked for, on two
// benign requests that match no rule: a GET with a query string and 5 browser headers, and a
// 2 KiB JSON POST. Sentinel passthrough (no WAF) runs too, for the WAF-on / passthrough ratio.
// Every request differs (a counter in the query / body) so no cache can answer from a previous
// identical request. See bench/README.md ("WAF against ModSecurity").
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'node:http';
import { parseArgs as parseNodeArgs } from 'node:util';

import { nginxHttpCommon, originNginxConf, writeOriginFiles } from './lib/configs.ts';
import { freePort, requireCommands, killAll, runPinned, spawnPinned, waitForStatus200, waitReady, type Proc } from './lib/processes.ts';
import { flagSlowHost } from './lib/block-ratios.ts';
import { measureHostSpeed } from './lib/host-speed.ts';
import { startResourceSampler, loadAverage } from './lib/procfs.ts';
import { median } from './lib/stats.ts';
import { renderPassthrough } from './lib/targets.ts';
import { compiledWafEntries, sentinelWafConfig, wrkScript } from './lib/waf-path.ts';
import { parseWrkOutput } from './lib/wrk.ts';
import { tuningDirectives } from '../src/waf/crs/index.ts';
import { BROWSER_HEADERS, getPath, jsonBody, POST_PATH } from './lib/waf-requests.ts';

const REPO = resolve(import.meta.dirname, '..');
const MODSEC_MODULE = '/usr/lib/nginx/modules/ngx_http_modsecurity_module.so';

const { values: argv } = parseNodeArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    pl: { type: 'string', default: '1,2' },
    requests: { type: 'string', default: 'get,post' },
    targets: { type: 'string', default: 'modsec,sentinel-waf,in-process,passthrough' },
    multicore: { type: 'boolean', default: false },
    'crs-dir': { type: 'string', default: process.env.CRS_DIR ?? join(REPO, '..', 'shared', 'conformance', 'crs') },
    'extra-agent-args': { type: 'string', default: '' },
    'cpu-prof-dir': { type: 'string', default: '' },
    baseline: { type: 'string', default: '' },
    host: { type: 'string', default: '' },
    'gateway-node-flags': { type: 'string', default: '' },
    'baseline-node-flags': { type: 'string', default: '' },
    'slow-host': { type: 'string', default: '1.25' },
    help: { type: 'boolean', default: false },
  },
});

if (argv.help) {
  console.log(`usage: npm run bench:waf -- [--duration S] [--rounds N] [--connections N] [--pl 1,2]
    [--requests get,post] [--targets modsec,sentinel-waf,in-process,passthrough]
    [--multicore] [--crs-dir DIR] [--extra-agent-args "..."] [--cpu-prof-dir DIR] [--baseline DIR] [--host NAME]
    [--slow-host 1.25] [--gateway-node-flags "..."] [--baseline-node-flags "..."]
  --gateway-node-flags "...": node flags for this checkout's gateways (not the baseline's), e.g.
  "--min-semi-space-size=16", which a single-process gateway takes only on its command line
  (cluster workers get it by default: src/cluster/young-generation.ts).
  --baseline-node-flags "...": the same for the --baseline checkout's gateways (give both the same
  flags to compare code, not flags).
  --host NAME: a Host header instead of wrk's numeric 127.0.0.1:port, which CRS 920350 matches at PL1
  (a logged warning below the threshold: every request then carries detection headers and an audit line).
  --baseline DIR: another checkout (with node_modules); its sentinel+waf and in-process targets
  (pinned) run too, interleaved, named "... [base]", and the summary gives base/this CPU ratios.
  --multicore: also run Sentinel (worker-threads = cores) + sentinel-waf and passthrough
  unpinned, for the several-cores ratio (the load generator then shares the cores).
  --cpu-prof-dir: run the gateways and agents with node --cpu-prof, profiles written there.
  --slow-host X: a fixed JavaScript loop runs on CPU 0 before and after every measured window
  (bench/lib/host-speed.ts); a window whose loop took more than X times the run's median was taken
  in one of the host's slow phases: it is flagged in its line and left out of the medians and
  ratios (each summary line says how many were left out; if every window of a target was flagged,
  all of them are used and the line says so).`);
  process.exit(0);
}

const duration = Number(argv.duration);
const rounds = Number(argv.rounds);
const connections = Number(argv.connections);
const levels = argv.pl.split(',').map(Number);
const requests = argv.requests.split(',') as ('get' | 'post')[];
const wanted = new Set(argv.targets.split(','));
const crsDir = resolve(argv['crs-dir']);
const PROXY_CPU = 0;
/** node flags for the gateway and agent processes (profiling); node refuses --cpu-prof in NODE_OPTIONS. */
const nodeFlags = argv['cpu-prof-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(argv['cpu-prof-dir'])}`] : [];
const LOAD_CPU = 1;
/** --gateway-node-flags for this checkout's gateways, --baseline-node-flags for the baseline's. */
const gatewayFlags = (root: string): string[] => argv[root === REPO ? 'gateway-node-flags' : 'baseline-node-flags'].split(/\s+/).filter(Boolean);

// ---- the two requests ------------------------------------------------------------------------

// ---- ModSecurity ------------------------------------------------------------------------------

/** Our own minimal engine config (the Debian package's recommended file is not used): the same
 * request-side settings as src/waf/crs/recommended.conf; response bodies are not inspected, as
 * the Sentinel agent in this bench only sees request events. */
function modsecRules(pl: number): string {
  return `SecRuleEngine On
SecRequestBodyAccess On
SecRequestBodyLimit 13107200
SecRequestBodyNoFilesLimit 131072
SecRequestBodyLimitAction Reject
SecRule REQUEST_HEADERS:Content-Type "@rx ^(?:application(?:/soap\\+|/)|text/)xml" "id:200000,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/[a-z0-9.-]+[+]json" "id:200006,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule REQBODY_ERROR "!@eq 0" "id:200002,phase:2,t:none,log,deny,status:400,msg:'Failed to parse request body.',logdata:'%{reqbody_error_msg}',severity:2"
SecRule MULTIPART_STRICT_ERROR "!@eq 0" "id:200003,phase:2,t:none,log,deny,status:400,msg:'Multipart request body failed strict validation.'"
SecResponseBodyAccess Off
SecArgumentSeparator &
SecCookieFormat 0
SecAuditEngine Off
SecDebugLogLevel 0
SecTmpDir /tmp/
SecDataDir /tmp/
Include ${crsDir}/crs-setup.conf.example
${tuningDirectives({ paranoiaLevel: pl })}Include ${crsDir}/rules/*.conf
`;
}

function modsecNginxConf(dir: string, port: number, originPort: number, rulesFile: string): string {
  return `load_module ${MODSEC_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx-modsec.pid;
error_log stderr warn;
events { worker_connections 4096; multi_accept on; }
http {
${nginxHttpCommon(dir)}  client_body_buffer_size 64k;
  upstream origin { server 127.0.0.1:${originPort}; keepalive 128; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    modsecurity on;
    modsecurity_rules_file ${rulesFile};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`;
}

// ---- Sentinel ---------------------------------------------------------------------------------

interface Running {
  port: number;
  procs: Proc[];
}

interface TargetSpec {
  name: string;
  /** Which request kinds and levels it runs; passthrough ignores the level. */
  pl: number | null;
  multicore: boolean;
  start(dir: string, originPort: number): Promise<Running>;
}

/** The compiled gateway and agent of a checkout (this one, or --baseline). */
const compiledEntries = (root = REPO): Promise<{ gateway: string; agent: string }> => compiledWafEntries(root);

/** Like waitReady, with the browser headers: at PL2 the CRS blocks a request without Accept / User-Agent (920300, 920320). */
async function waitUp(proc: Proc, port: number, timeoutMs: number): Promise<void> {
  await waitForStatus200(proc, `127.0.0.1:${port}/small`, () => send(port, 'GET', '/small', Object.fromEntries(BROWSER_HEADERS)), timeoutMs);
}

async function startGateway(dir: string, name: string, config: string, cpu: number | null, root = REPO): Promise<Running & { proc: Proc }> {
  const { gateway } = await compiledEntries(root);
  const port = await freePort();
  const metrics = await freePort();
  const text = config.replaceAll('{{listen}}', `127.0.0.1:${port}`).replaceAll('{{metrics}}', `127.0.0.1:${metrics}`);
  const file = join(dir, `${name}.kdl`);
  writeFileSync(file, text);
  const proc = spawnPinned(name, cpu, process.execPath, [...nodeFlags, ...gatewayFlags(root), gateway, 'run', '-c', file], { cwd: root, env: { ...process.env, NODE_ENV: 'production' } });
  await waitUp(proc, port, 120_000); // an in-process WAF loads the CRS first
  return { port, procs: [proc], proc };
}

async function startAgent(dir: string, pl: number, cpu: number | null, workers: number, root = REPO): Promise<{ proc: Proc; socket: string }> {
  const { agent } = await compiledEntries(root);
  const socket = join(dir, `waf-${pl}-${cpu ?? 'any'}.sock`);
  rmSync(socket, { force: true });
  const extra = argv['extra-agent-args'].split(/\s+/).filter(Boolean);
  const proc = spawnPinned('sentinel-waf', cpu, process.execPath, [...nodeFlags, agent, '--socket', socket, '--crs-dir', crsDir, '--paranoia-level', String(pl), '--mode', 'blocking', '--workers', String(workers), ...extra], {
    cwd: root,
    // The agent block subscribes request events only (sentinelWafConfig), as examples/waf.kdl and
    // the Helm chart, which set request-side-only too (a tree that predates it ignores the variable).
    env: { ...process.env, NODE_ENV: 'production', SENTINEL_WAF_REQUEST_SIDE_ONLY: 'true' },
  });
  const deadline = Date.now() + 120_000;
  while (!proc.output().includes('listening')) {
    if (proc.exited()) throw new Error(`sentinel-waf exited during start-up:\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`sentinel-waf not listening after 120 s:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, socket };
}

function passthroughTemplate(originPort: number): string {
  return renderPassthrough(REPO, { listen: '{{listen}}', origin: `127.0.0.1:${originPort}`, metrics: '{{metrics}}' });
}

function targetsFor(): TargetSpec[] {
  const cores = availableParallelism();
  const out: TargetSpec[] = [];
  for (const pl of levels) {
    if (wanted.has('modsec')) {
      out.push({
        name: `nginx+modsecurity PL${pl}`,
        pl,
        multicore: false,
        async start(dir, originPort) {
          const port = await freePort();
          const rules = join(dir, `modsec-pl${pl}.conf`);
          writeFileSync(rules, modsecRules(pl));
          const conf = join(dir, `nginx-modsec-pl${pl}.conf`);
          writeFileSync(conf, modsecNginxConf(dir, port, originPort, rules));
          const proc = spawnPinned(`nginx-modsec-pl${pl}`, PROXY_CPU, 'nginx', ['-e', 'stderr', '-p', dir, '-c', conf]);
          await waitUp(proc, port, 60_000);
          return { port, procs: [proc] };
        },
      });
    }
    if (wanted.has('sentinel-waf')) {
      const variants: { multicore: boolean }[] = [{ multicore: false }, ...(argv.multicore ? [{ multicore: true }] : [])];
      for (const v of variants) {
        out.push({
          name: v.multicore ? `sentinel+waf PL${pl} (${cores} cores)` : `sentinel+waf PL${pl}`,
          pl,
          multicore: v.multicore,
          async start(dir, originPort) {
            // Pinned: one engine process on the one core; unpinned: one per core (--workers).
            const cpu = v.multicore ? null : PROXY_CPU;
            const agent = await startAgent(dir, pl, cpu, v.multicore ? cores : 1);
            try {
              const gw = await startGateway(dir, `sentinel-waf-pl${pl}`, sentinelWafConfig(passthroughTemplate(originPort), `unix-socket "${agent.socket}"`, v.multicore ? cores : 1), cpu);
              return { port: gw.port, procs: [gw.proc, agent.proc] };
            } catch (err) {
              await agent.proc.stop();
              throw err;
            }
          },
        });
      }
    }
  }
  for (const pl of wanted.has('in-process') ? levels : []) {
    for (const mc of [false, ...(argv.multicore ? [true] : [])]) {
      out.push({
        name: mc ? `sentinel in-process waf PL${pl} (${cores} cores)` : `sentinel in-process waf PL${pl}`,
        pl,
        multicore: mc,
        async start(dir, originPort) {
          // The engine inside the gateway (agent "waf" { in-process "sentinel-waf" }): one process.
          const transport = `in-process "sentinel-waf"\n        config { crs-dir "${crsDir}"; paranoia-level ${pl}; mode "blocking" }`;
          const gw = await startGateway(dir, `sentinel-inproc-pl${pl}`, sentinelWafConfig(passthroughTemplate(originPort), transport, mc ? cores : 1), mc ? null : PROXY_CPU);
          return { port: gw.port, procs: [gw.proc] };
        },
      });
    }
  }
  // The same two Sentinel WAF targets (pinned) from the --baseline checkout, for a same-run A/B.
  const base = argv.baseline ? resolve(argv.baseline) : '';
  for (const pl of base ? levels : []) {
    if (wanted.has('sentinel-waf')) {
      out.push({
        name: `sentinel+waf PL${pl} [base]`,
        pl,
        multicore: false,
        async start(dir, originPort) {
          const agent = await startAgent(dir, pl, PROXY_CPU, 1, base);
          try {
            const gw = await startGateway(dir, `sentinel-waf-pl${pl}-base`, sentinelWafConfig(passthroughTemplate(originPort), `unix-socket "${agent.socket}"`, 1), PROXY_CPU, base);
            return { port: gw.port, procs: [gw.proc, agent.proc] };
          } catch (err) {
            await agent.proc.stop();
            throw err;
          }
        },
      });
    }
    if (wanted.has('in-process')) {
      out.push({
        name: `sentinel in-process waf PL${pl} [base]`,
        pl,
        multicore: false,
        async start(dir, originPort) {
          const transport = `in-process "sentinel-waf"\n        config { crs-dir "${crsDir}"; paranoia-level ${pl}; mode "blocking" }`;
          const gw = await startGateway(dir, `sentinel-inproc-pl${pl}-base`, sentinelWafConfig(passthroughTemplate(originPort), transport, 1), PROXY_CPU, base);
          return { port: gw.port, procs: [gw.proc] };
        },
      });
    }
  }
  if (wanted.has('passthrough')) {
    for (const mc of [false, ...(argv.multicore ? [true] : [])]) {
      out.push({
        name: mc ? `sentinel passthrough (${cores} cores)` : 'sentinel passthrough',
        pl: null,
        multicore: mc,
        async start(dir, originPort) {
          const cfg = passthroughTemplate(originPort).replace(/worker-threads \d+/, `worker-threads ${mc ? cores : 1}`);
          const gw = await startGateway(dir, 'sentinel-pass', cfg, mc ? null : PROXY_CPU);
          return { port: gw.port, procs: [gw.proc] };
        },
      });
    }
  }
  return out;
}

// ---- checks and measurement -------------------------------------------------------------------

function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<number> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...headers, ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode ?? 0));
    });
    req.on('error', fail);
    req.end(body);
  });
}

/** The benign requests must pass and an attack must be blocked, or the figures mean nothing. */
async function check(t: TargetSpec, port: number): Promise<void> {
  const h = Object.fromEntries(BROWSER_HEADERS);
  const get = await send(port, 'GET', getPath('1'), h);
  const post = await send(port, 'POST', POST_PATH, { ...h, 'content-type': 'application/json' }, jsonBody('00000001'));
  if (get !== 200 || post !== 200) throw new Error(`${t.name}: the benign requests must answer 200, got GET ${get}, POST ${post}`);
  if (t.pl !== null) {
    const attack = await send(port, 'GET', "/products/search?q=1'+UNION+SELECT+password+FROM+users--", h);
    const bodyAttack = await send(port, 'POST', '/api/orders', { ...h, 'content-type': 'application/json' }, JSON.stringify({ q: '<script>alert(document.cookie)</script>' }));
    if (attack !== 403 || bodyAttack !== 403) throw new Error(`${t.name}: the WAF is not blocking (attack GET ${attack}, JSON POST ${bodyAttack})`);
  }
}

interface Sample {
  rps: number;
  /** CPU time of the target's processes per request (from /proc): what one core's throughput is
   * the inverse of, and less disturbed than req/s when other load shares the core. */
  cpuMs: number;
  p50: number;
  p99: number;
  cpu: number[];
  non2xx: number;
  errors: number;
  /** CPU ms of the host-speed loop on the proxies' core around this window (the slower of before and after) */
  calibrationMs: number;
  /** set after the run: the host-speed loop of this window was slow (see --slow-host) */
  slowHost?: boolean;
  /** on a median: how many windows it is over, and how many flagged ones it left out */
  note?: string;
}

async function measure(kind: 'get' | 'post', port: number, procs: Proc[], scripts: Record<string, string>, pinned: boolean, secs: number, calibrate: boolean): Promise<Sample> {
  const before = calibrate ? await measureHostSpeed(PROXY_CPU) : undefined;
  const samplers = procs.map((p) => startResourceSampler(p.pid));
  const out = await runPinned('wrk', pinned ? LOAD_CPU : null, 'wrk', ['-t1', `-c${connections}`, `-d${secs}s`, '--latency', '-s', scripts[kind]!, `http://127.0.0.1:${port}/`], (secs + 30) * 1000);
  const usage = samplers.map((s) => s.stop());
  const w = parseWrkOutput(out);
  const e = w.socketErrors;
  // Only for the pinned single-process targets: the sampler reads the listed pids, not the
  // workers a cluster primary forks.
  const cpuMs = pinned && w.requestsPerSec > 0 ? (usage.reduce((n, u) => n + u.cpuPct, 0) * 10) / w.requestsPerSec : 0;
  const after = calibrate ? await measureHostSpeed(PROXY_CPU) : undefined;
  const calibrationMs = before && after ? Math.max(before.cpuMs, after.cpuMs) : 0;
  return { rps: w.requestsPerSec, cpuMs, p50: w.latencyMs.p50, p99: w.latencyMs.p99, cpu: usage.map((u) => u.cpuPct), non2xx: w.non2xx3xx, errors: e.connect + e.read + e.write + e.timeout, calibrationMs };
}

async function main(): Promise<number> {
  if (!requireCommands(['nginx', 'wrk', 'taskset'], 'nginx wrk util-linux')) return 1;
  if (wanted.has('modsec') && !existsSync(MODSEC_MODULE)) {
    console.error(`the ModSecurity anchor needs the nginx module (${MODSEC_MODULE} is missing):\n  apt-get install -y libnginx-mod-http-modsecurity\n(or leave it out: --targets sentinel-waf,passthrough)`);
    return 1;
  }
  if (!existsSync(join(crsDir, 'rules'))) {
    console.error(`no CRS at ${crsDir} (pass --crs-dir or set CRS_DIR)`);
    return 1;
  }
  if (availableParallelism() < 2) console.warn('warning: one CPU only: the load generator shares the core with the proxies');
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-bench-waf-'));
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, d), { recursive: true });
  const scripts = { get: join(dir, 'get.lua'), post: join(dir, 'post.lua') };
  writeFileSync(scripts.get, wrkScript('get', argv.host));
  writeFileSync(scripts.post, wrkScript('post', argv.host));
  writeOriginFiles(dir);
  const originPort = await freePort();
  const originConf = join(dir, 'origin.conf');
  writeFileSync(originConf, originNginxConf(originPort, dir));
  const origin = spawnPinned('origin', LOAD_CPU, 'nginx', ['-e', 'stderr', '-p', dir, '-c', originConf]);
  const targets = targetsFor();
  const results = new Map<string, Sample[]>();
  const allSamples: Sample[] = [];
  const failures: string[] = [];
  console.log(`WAF bench: ${rounds} rounds x ${duration} s, ${connections} connections, CRS ${crsDir}, load ${loadAverage()}`);
  try {
    await waitReady(origin, originPort, '/small', 10_000);
    for (let round = 0; round < rounds; round++) {
      // Rotate the order each round so drift of the machine spreads over every target.
      const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
      for (const t of order) {
        let running: Running | undefined;
        try {
          running = await t.start(dir, originPort);
          await check(t, running.port);
          for (const kind of requests) {
            await measure(kind, running.port, running.procs, scripts, !t.multicore, 2, false); // warm-up (JIT), not recorded
            const s = await measure(kind, running.port, running.procs, scripts, !t.multicore, duration, true);
            const key = `${kind}|${t.name}`;
            (results.get(key) ?? results.set(key, []).get(key)!).push(s);
            allSamples.push(s);
            console.log(`  round ${round + 1} ${kind.toUpperCase().padEnd(4)} ${t.name.padEnd(34)} ${s.rps.toFixed(0).padStart(7)} req/s  ${s.cpuMs.toFixed(2)} CPU-ms/req  p50 ${s.p50.toFixed(2)} ms  p99 ${s.p99.toFixed(2)} ms  cpu ${s.cpu.map((c) => `${c.toFixed(0)}%`).join('+')}  host loop ${s.calibrationMs.toFixed(0)} ms${s.non2xx || s.errors ? `  (${s.non2xx} non-2xx, ${s.errors} errors)` : ''}`);
          }
        } catch (err) {
          const msg = `${t.name}: ${(err as Error).message.split('\n').slice(0, 6).join('\n')}`;
          failures.push(msg);
          console.error(`  FAILED ${msg}`);
        } finally {
          for (const p of running?.procs ?? []) await p.stop();
        }
      }
    }
  } finally {
    await origin.stop();
    killAll();
    rmSync(dir, { recursive: true, force: true });
  }
  // Flag the windows taken in a slow host phase (in place: the same objects sit in `results`).
  const flags = flagSlowHost(allSamples, Number(argv['slow-host']));
  allSamples.forEach((s, i) => (s.slowHost = flags[i]!.slowHost));
  const slow = flags.filter((f) => f.slowHost);
  console.log(`\nhost-speed loop on CPU ${PROXY_CPU}: median ${median(allSamples.map((s) => s.calibrationMs)).toFixed(1)} ms; ${slow.length} of ${flags.length} windows flagged as taken in a slow host phase (loop > ${argv['slow-host']}x median)${slow.length ? `: ${slow.map((f) => `x${f.hostSlowdown.toFixed(2)}`).join(' ')}` : ''}`);
  console.log(`medians over ${rounds} rounds, flagged windows left out (load after: ${loadAverage()})`);
  for (const kind of requests) {
    for (const pl of levels) {
      const modsec = med(results.get(`${kind}|nginx+modsecurity PL${pl}`));
      const waf = med(results.get(`${kind}|sentinel+waf PL${pl}`));
      const inproc = med(results.get(`${kind}|sentinel in-process waf PL${pl}`));
      const pass = med(results.get(`${kind}|sentinel passthrough`));
      const line = [`${kind.toUpperCase()} PL${pl}:`, `sentinel+waf ${fmt(waf)}`, `in-process ${fmt(inproc)}`, `nginx+modsecurity ${fmt(modsec)}`, `passthrough ${fmt(pass)}`];
      line.push(`ratio waf/modsec ${ratio(waf, modsec)}`, `in-process/modsec ${ratio(inproc, modsec)}`, `waf/passthrough ${ratio(waf, pass)}`, `in-process/passthrough ${ratio(inproc, pass)}`);
      console.log(`  ${line.join('  ')}`);
      if (argv.baseline) {
        const ab = (name: string): string => {
          const xs = results.get(`${kind}|${name}`) ?? [];
          const bs = results.get(`${kind}|${name} [base]`) ?? [];
          // Per-round ratio (rounds interleave the targets): base CPU-ms / this CPU-ms, > 1 = this is
          // cheaper; a round counts when both windows answered 2xx and neither was in a slow host phase.
          const pairs = Array.from({ length: Math.min(xs.length, bs.length) }, (_, i) => [xs[i]!, bs[i]!] as const).filter(([x, b]) => x.non2xx === 0 && b.non2xx === 0);
          const clean = pairs.filter(([x, b]) => !x.slowHost && !b.slowHost);
          if (pairs.length === 0) return `${name}: n/a`;
          const used = clean.length ? clean : pairs;
          const r = used.map(([x, b]) => b.cpuMs / x.cpuMs);
          const left = pairs.length - clean.length;
          const note = clean.length ? (left ? `; ${left} flagged round(s) left out` : '') : '; EVERY round flagged: all used';
          return `${name}: base/this CPU x${median(r).toFixed(3)} (rounds ${r.map((x) => x.toFixed(2)).join(' ')}; this ${median(used.map(([x]) => x.cpuMs)).toFixed(3)}, base ${median(used.map(([, b]) => b.cpuMs)).toFixed(3)} CPU-ms/req${note})`;
        };
        console.log(`  ${kind.toUpperCase()} PL${pl} vs baseline: ${ab(`sentinel+waf PL${pl}`)}  ${ab(`sentinel in-process waf PL${pl}`)}`);
      }
      if (argv.multicore) {
        const cores = availableParallelism();
        const wafMc = med(results.get(`${kind}|sentinel+waf PL${pl} (${cores} cores)`));
        const inprocMc = med(results.get(`${kind}|sentinel in-process waf PL${pl} (${cores} cores)`));
        const passMc = med(results.get(`${kind}|sentinel passthrough (${cores} cores)`));
        console.log(
          `  ${kind.toUpperCase()} PL${pl} unpinned: sentinel+waf ${fmt(wafMc)}  in-process ${fmt(inprocMc)}  passthrough ${fmt(passMc)}  ratio waf/passthrough ${ratio(wafMc, passMc)}  in-process/passthrough ${ratio(inprocMc, passMc)}  waf/modsec(1 core) ${ratio(wafMc, modsec)}  in-process/modsec(1 core) ${ratio(inprocMc, modsec)}`,
        );
      }
    }
  }
  for (const f of failures) console.log(`failed: ${f}`);
  return failures.length ? 1 : 0;
}

/** Median over the valid runs: a run with failed answers (non-2xx: agent timeouts, 5xx) measured
 * how fast the path fails, not how fast it inspects, so it does not count. */
function med(all: Sample[] | undefined): Sample | undefined {
  const valid = all?.filter((x) => x.non2xx === 0);
  if (!valid?.length) return undefined;
  // Windows taken in a slow host phase are left out, unless that would leave none.
  const clean = valid.filter((x) => !x.slowHost);
  const xs = clean.length ? clean : valid;
  const left = valid.length - clean.length;
  const note = clean.length ? (left ? `${left} of ${valid.length} flagged, left out` : '') : `all ${valid.length} flagged, used`;
  return { rps: median(xs.map((x) => x.rps)), cpuMs: median(xs.map((x) => x.cpuMs)), p50: median(xs.map((x) => x.p50)), p99: median(xs.map((x) => x.p99)), cpu: [], non2xx: 0, errors: 0, calibrationMs: median(xs.map((x) => x.calibrationMs)), ...(note ? { note } : {}) };
}
const fmt = (s: Sample | undefined): string => (s ? `${s.rps.toFixed(0)} req/s ${s.cpuMs.toFixed(2)} CPU-ms/req (p50 ${s.p50.toFixed(2)} ms${s.note ? `; ${s.note}` : ''})` : 'n/a');
/** req/s ratio, and in brackets the CPU-per-request ratio (b's CPU-ms / a's: the one-core throughput ratio). */
const ratio = (a: Sample | undefined, b: Sample | undefined): string =>
  a && b && b.rps > 0 ? `x${(a.rps / b.rps).toFixed(2)}${a.cpuMs > 0 && b.cpuMs > 0 ? ` [cpu x${(b.cpuMs / a.cpuMs).toFixed(2)}]` : ''}` : 'n/a';


process.on('SIGINT', () => {
  killAll();
  process.exit(130);
});
process.exitCode = await main();
