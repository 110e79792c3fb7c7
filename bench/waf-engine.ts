// The WAF engine alone (no sockets, no agent protocol) on the two requests of `npm run bench:waf`
// (bench/lib/waf-requests.ts), driven as sentinel-waf drives it: newTransaction with the header
// list the gateway sends, phase 1, body, phase 2, then logging (phases 3-5). Every request differs
// (a counter in the query / JSON body) as in the wrk scripts. Reports CPU milliseconds per request
// (process.cpuUsage, GC threads included; less disturbed by other load than wall time).
//
//   node --import tsx bench/waf-engine.ts [--rounds 3] [--iterations 1000] [--warmup N] [--pl 1] [--requests get,post]
//        [--baseline DIR] [--cpu-prof-dir DIR] [--instr [--windows 3] [--keep DIR]] [--service] [--host H]
//        [--extra-rules SETS]
// --extra-rules SETS: load these extra rule sets (src/waf/extra) in this checkout, not in --baseline's.
//
// --host H: the Host header (default 127.0.0.1:8080, numeric like wrk's, which CRS 920350 matches:
// a logged warning on every request); e.g. --host shop.example.com for a request that matches no rule.
//
// --service: through WafService (src/waf/agent/service.ts) as the in-process agent and
// sentinel-waf call it: a request_headers event, then the body as a base64 request_body chunk,
// and no request_complete (bench:waf subscribes request_headers + request_body only), so the
// service's own work and the transactions it keeps are measured too. Audit lines are built
// (JSON) but not written.
//
// --instr: instructions per request under callgrind (load-independent): each tree's child runs
// under valgrind with instrumentation off for rule loading and warm-up (--warmup, default 8,000 GET
// and 4,000 POST: until V8 has optimised what it will), then per kind --windows
// windows of --iterations requests (half for the POST) are counted (callgrind_control -z/-d); both
// trees run at the same time. Several minutes: ~1.5 min per tree at the default sizes. --keep DIR
// keeps each window's dump as DIR/<tree>.<kind>.<window>.callgrind (for callgrind_annotate). Two
// counts per window: all instructions, and the engine's own (without V8's GC and TurboFan, which
// fall into some windows and not others: bench/lib/callgrind-split.ts).
//
// --gc: the child runs with V8's --trace-gc-nvp, and each round also prints, per kind, over the
// timed blocks: scavenges per 1,000 requests, bytes promoted to the old generation per request and
// mark-compacts (counts, not times: another process's load does not change them much). The
// engine's cross-request state is what survives its scavenges (the requests run one at a time).
//
// --baseline DIR: another checkout of this repository (e.g. `git worktree add /tmp/base main`, with
// node_modules linked in); each round runs one child process per tree, alternating which goes
// first, and the report gives the per-round ratio baseline/this tree (same-run, interleaved).
// CRS from $CRS_DIR (default ../shared/conformance/crs).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { parseCallgrindSummary } from './lib/callgrind.ts';
import { splitCallgrindDump } from './lib/callgrind-split.ts';
import { sumGcLines, type GcSums } from './lib/gc-trace.ts';
import { benchScratchDir } from './lib/processes.ts';
import { bootstrapMedianInterval, median } from './lib/stats.ts';
import { BROWSER_HEADERS, getPath, jsonBody, POST_PATH } from './lib/waf-requests.ts';

const REPO = resolve(import.meta.dirname, '..');

const { values: argv } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    iterations: { type: 'string', default: '1000' },
    blocks: { type: 'string', default: '5' },
    pl: { type: 'string', default: '1' },
    requests: { type: 'string', default: 'get,post' },
    baseline: { type: 'string', default: '' },
    'cpu-prof-dir': { type: 'string', default: '' },
    instr: { type: 'boolean', default: false },
    windows: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '' },
    keep: { type: 'string', default: '' },
    child: { type: 'string', default: '' },
    service: { type: 'boolean', default: false },
    host: { type: 'string', default: '127.0.0.1:8080' },
    gc: { type: 'boolean', default: false },
    'extra-rules': { type: 'string', default: '' },
  },
});

type Kind = 'get' | 'post';
const extraArgs = argv['extra-rules'] ? ['--extra-rules', argv['extra-rules']] : [];
interface ChildResult {
  /** CPU ms per request, median over the blocks */
  cpu: Record<string, number>;
  /** requests that were blocked (must be 0: the requests are benign) */
  blocked: number;
  /** logged rule ids that matched the first request of each kind (920350 for the numeric Host, as in bench:waf) */
  matched: string;
  loadMs: number;
  /** --gc: per kind, V8's GC over the timed blocks */
  gc?: Record<string, GcSums & { requests: number }>;
}

interface WafLike {
  newTransaction(input: {
    clientIp: string;
    clientPort: number;
    serverPort: number;
    method: string;
    uri: string;
    protocol: string;
    headers: [string, string][];
  }): {
    processRequestHeaders(): unknown;
    appendRequestBody(chunk: Buffer): unknown;
    processRequestBody(): unknown;
    matchedRules(): { id: number }[];
    processLogging(): unknown;
  };
}

async function child(root: string): Promise<void> {
  const entry = existsSync(resolve(root, 'src/waf/index.js')) ? 'src/waf/index.js' : 'src/waf/index.ts';
  const mod = (await import(pathToFileURL(resolve(root, entry)).href)) as {
    loadWaf(opts: { mode: 'blocking'; paranoiaLevel: number; crsDir: string; directives?: string }): WafLike;
  };
  const crsDir = process.env.CRS_DIR ?? resolve(REPO, '..', 'shared', 'conformance', 'crs');
  // --extra-rules: this checkout only (the --baseline runs without: the difference is the sets' cost)
  let directives: string | undefined;
  if (argv['extra-rules'] && root === REPO) {
    const extra = (await import(pathToFileURL(resolve(root, entry.replace('index.', 'extra/index.'))).href)) as {
      extraRulesText(sets: string[], rulesDir: string): string;
      parseExtraRuleSets(text: string): string[];
    };
    directives = extra.extraRulesText(extra.parseExtraRuleSets(argv['extra-rules']), resolve(crsDir, 'rules'));
  }
  const t0 = performance.now();
  const waf = mod.loadWaf({ mode: 'blocking', paranoiaLevel: Number(argv.pl), crsDir, directives });
  const loadMs = performance.now() - t0;
  // As the gateway sends them: lower-cased names, Host first (wrk), Content-Length for bodies.
  const base: [string, string][] = [['host', argv.host], ...BROWSER_HEADERS.map(([k, v]): [string, string] => [k.toLowerCase(), v])];
  const [bodyPre, bodyPost] = jsonBody('{{n}}').split('{{n}}') as [string, string];
  let n = 0;
  let blocked = 0;
  const matched = new Set<string>();
  const once = (kind: Kind): void => {
    n++;
    const post = kind === 'post';
    const body = post ? Buffer.from(bodyPre + String(n % 100000000).padStart(8, '0') + bodyPost, 'latin1') : undefined;
    const headers = body ? [...base, ['content-type', 'application/json'] as [string, string], ['content-length', String(body.length)] as [string, string]] : base;
    const tx = waf.newTransaction({ clientIp: '127.0.0.1', clientPort: 40000 + (n % 20000), serverPort: 0, method: post ? 'POST' : 'GET', uri: post ? POST_PATH : getPath(String(n)), protocol: 'HTTP/1.1', headers });
    let it = tx.processRequestHeaders();
    if (!it && body) it = tx.appendRequestBody(body);
    if (!it) it = tx.processRequestBody();
    if (it) blocked++;
    if (n <= 2) for (const m of tx.matchedRules()) matched.add(`${kind}:${m.id}`);
    tx.processLogging();
  };
  const run = argv.service ? await serviceRunner(root) : once;
  const kinds = argv.requests.split(',') as Kind[];
  const iterations = Number(argv.iterations);
  // The POST costs more: half as many per block keeps the blocks similar in length.
  const count = (k: Kind): number => (k === 'post' ? Math.max(1, iterations >> 1) : iterations);
  // Warm-up: --warmup GETs (half as many POSTs), default --iterations. Under --instr the default is
  // 8,000: V8 optimises functions called once per request (newTransaction, processBody, the
  // transformations) only after several thousand requests, and a TurboFan compile inside a
  // counted window (tens of millions of instructions) swamps the engine's own work.
  // GETs and POSTs interleaved, so the type feedback covers both kinds before any window (a kind
  // seen first after the other's warm-up deoptimised the rule loop).
  const warm = Number(argv.warmup || (argv.instr ? 8000 : iterations));
  for (let i = 0; i < warm; i++) for (const k of kinds) if (k !== 'post' || (i & 1) === 0) run(k);
  if (argv.instr) {
    // Under callgrind: the parent counts each window (see instrChild); lines on stdin pace us.
    const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    process.stdout.write('warm\n');
    await lines.next();
    const gc = (globalThis as { gc?: (opts?: { type: 'minor' | 'major' }) => void }).gc;
    for (const k of kinds) {
      // One uncounted window under instrumentation first (valgrind re-translates the hot code).
      for (let i = 0; i < count(k); i++) run(k);
      for (let w = 0; w < Number(argv.windows); w++) {
        // A minor GC before each window: it starts with an empty young generation (see instrChild).
        // Not a full one: every full GC deoptimised ~17 functions (the transformations,
        // libinjection's tokenizer...: code depending on allocation sites), and their TurboFan
        // recompiles landed inside the window (~1.5 M instructions per GET, a third of the count).
        gc?.({ type: 'minor' });
        process.stdout.write(`ready ${k}\n`);
        await lines.next();
        for (let i = 0; i < count(k); i++) run(k);
        process.stdout.write(`done ${k}\n`);
        await lines.next();
      }
    }
    process.stdout.write(`${JSON.stringify({ cpu: {}, blocked, matched: [...matched].join(' '), loadMs })}\n`);
    process.exit(0);
  }
  const samples: Record<string, number[]> = {};
  for (let b = 0; b < Number(argv.blocks); b++) {
    for (const k of kinds) {
      if (argv.gc) process.stdout.write(`gc-begin ${k}\n`);
      const c0 = process.cpuUsage();
      for (let i = 0; i < count(k); i++) run(k);
      const c = process.cpuUsage(c0);
      if (argv.gc) process.stdout.write(`gc-end ${count(k)}\n`);
      (samples[k] ??= []).push((c.user + c.system) / 1000 / count(k));
    }
  }
  const cpu: Record<string, number> = {};
  for (const k of kinds) cpu[k] = median(samples[k]!);
  const result: ChildResult = { cpu, blocked, matched: [...matched].join(' '), loadMs };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

interface ServiceLike {
  onRequestHeaders(ev: unknown): unknown;
  onRequestBodyChunk(ev: unknown): unknown;
  readonly inFlight: number;
}

/** The same requests as `once`, as the agent protocol events WafService receives (see --service). */
async function serviceRunner(root: string): Promise<(k: Kind) => void> {
  const ext = existsSync(resolve(root, 'src/waf/index.js')) ? 'js' : 'ts';
  const svcMod = (await import(pathToFileURL(resolve(root, `src/waf/agent/service.${ext}`)).href)) as {
    buildWaf(c: unknown): unknown;
    WafService: new (waf: unknown, c: unknown, audit: (l: unknown) => void) => ServiceLike;
  };
  const cfgMod = (await import(pathToFileURL(resolve(root, `src/waf/agent/config.${ext}`)).href)) as {
    defaultConfig(): Record<string, unknown>;
  };
  // requestSideOnly: what the in-process agent sets for these subscriptions (a tree without it keeps every transaction).
  const config = { ...cfgMod.defaultConfig(), crsDir: process.env.CRS_DIR ?? resolve(REPO, '..', 'shared', 'conformance', 'crs'), paranoiaLevel: Number(argv.pl), requestSideOnly: true };
  const svc = new svcMod.WafService(svcMod.buildWaf(config), config, (l) => JSON.stringify(l));
  const headers: Record<string, string[]> = { host: [argv.host] };
  for (const [k, v] of BROWSER_HEADERS) headers[k.toLowerCase()] = [v];
  const [bodyPre, bodyPost] = jsonBody('{{n}}').split('{{n}}') as [string, string];
  let n = 0;
  process.on('exit', () => process.stderr.write(`service: ${svc.inFlight} transactions still pending after ${n} requests\n`));
  return (kind) => {
    n++;
    const id = `r${n}`;
    const metadata = { correlation_id: id, request_id: id, client_ip: '127.0.0.1', client_port: 40000 + (n % 20000), server_name: null, protocol: 'HTTP/1.1', tls_version: null, tls_cipher: null, route_id: 'bench', upstream_id: null, timestamp: '', traceparent: null };
    if (kind === 'get') {
      svc.onRequestHeaders({ correlation_id: id, metadata, method: 'GET', uri: getPath(String(n)), headers });
      return;
    }
    const body = Buffer.from(bodyPre + String(n % 100000000).padStart(8, '0') + bodyPost, 'latin1');
    svc.onRequestHeaders({ correlation_id: id, metadata, method: 'POST', uri: POST_PATH, headers: { ...headers, 'content-type': ['application/json'], 'content-length': [String(body.length)] } });
    svc.onRequestBodyChunk({ correlation_id: id, data: body.toString('base64'), is_last: true, total_size: body.length, chunk_index: 0, bytes_received: body.length });
  };
}

function runChild(root: string): ChildResult {
  const prof = argv['cpu-prof-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${resolve(argv['cpu-prof-dir'])}`] : [];
  const args = [...prof, ...(argv.gc ? ['--trace-gc-nvp'] : []), '--import', 'tsx', resolve(REPO, 'bench/waf-engine.ts'), '--child', root, ...extraArgs];
  for (const k of ['iterations', 'blocks', 'pl', 'requests', 'warmup', 'host'] as const) args.push(`--${k}`, argv[k]);
  if (argv.service) args.push('--service');
  if (argv.gc) args.push('--gc');
  const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`child for ${root} exited with ${r.status}`);
  const lines = r.stdout.trim().split('\n');
  // the result is the last JSON line (with --gc, V8's lines may follow it)
  const res = JSON.parse(lines.findLast((l) => l.startsWith('{'))!) as ChildResult;
  if (argv.gc) res.gc = gcByKind(lines);
  return res;
}

/** --gc: V8's --trace-gc-nvp lines between the child's gc-begin KIND / gc-end N markers, per kind. */
function gcByKind(lines: string[]): Record<string, GcSums & { requests: number }> {
  const out: Record<string, GcSums & { requests: number }> = {};
  let kind: string | undefined;
  let inBlock: string[] = [];
  for (const line of lines) {
    if (line.startsWith('gc-begin ')) {
      kind = line.slice('gc-begin '.length);
      inBlock = [];
    } else if (line.startsWith('gc-end ') && kind !== undefined) {
      const s = sumGcLines(inBlock);
      const o = (out[kind] ??= { scavenges: 0, markCompacts: 0, promotedBytes: 0, requests: 0 });
      o.scavenges += s.scavenges;
      o.markCompacts += s.markCompacts;
      o.promotedBytes += s.promotedBytes;
      o.requests += Number(line.slice('gc-end '.length));
      kind = undefined;
    } else if (kind !== undefined) inBlock.push(line);
  }
  return out;
}

/** One tree's child under callgrind: instructions per request, per kind, one entry per window. */
/** Per kind, one entry per window: instructions per request, all and without GC and TurboFan. */
interface InstrCounts {
  total: Record<string, number[]>;
  rest: Record<string, number[]>;
}

async function instrChild(name: string, root: string, cgDir: string): Promise<InstrCounts> {
  const args = ['--tool=callgrind', '--smc-check=all', '--instr-atstart=no', `--callgrind-out-file=${join(cgDir, `${name}.%p`)}`];
  // No GC inside a counted window (a minor GC before it, a young generation larger than a window's
  // allocation) and no bytecode flushing or background threads: the count is the engine's own
  // work, the same in every window. GC cost (proportional to allocation) is left out.
  // With --keep, JIT code is named in /tmp/perf-<pid>.map (copied next to the dumps as <tree>.perf.map).
  // V8's own log goes to a file: node 20.20 writes it to stdout (our pacing channel) for --logfile=/dev/null.
  const perfMap = argv.keep ? ['--perf-basic-prof', '--no-logfile-per-isolate', `--logfile=${join(cgDir, `${name}.v8.log`)}`] : [];
  args.push(process.execPath, ...perfMap, '--expose-gc', '--no-flush-bytecode', '--single-threaded', '--min-semi-space-size=256', '--max-semi-space-size=256', '--import', 'tsx', resolve(REPO, 'bench/waf-engine.ts'), '--child', root, '--instr', ...extraArgs);
  for (const k of ['iterations', 'blocks', 'pl', 'requests', 'windows', 'warmup', 'host'] as const) args.push(`--${k}`, argv[k]);
  if (argv.service) args.push('--service');
  const proc = spawn('valgrind', args, { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const pid = String(proc.pid);
  const out: InstrCounts = { total: {}, rest: {} };
  const n = (k: string): number => (k === 'post' ? Math.max(1, Number(argv.iterations) >> 1) : Number(argv.iterations));
  for await (const line of createInterface({ input: proc.stdout! })) {
    const [what, kind] = line.split(' ') as [string, string];
    if (what === 'warm') {
      execFileSync('callgrind_control', ['-i', 'on', pid], { stdio: 'ignore' });
    } else if (what === 'ready') {
      execFileSync('callgrind_control', ['-z', pid], { stdio: 'ignore' });
    } else if (what === 'done') {
      const before = new Set(readdirSync(cgDir));
      execFileSync('callgrind_control', ['-d', pid], { stdio: 'ignore' });
      const fresh = readdirSync(cgDir).filter((f) => f.startsWith(`${name}.${pid}.`) && !before.has(f));
      if (fresh.length !== 1) throw new Error(`expected one new callgrind dump for ${name}, found ${fresh.join(', ') || 'none'}`);
      const text = readFileSync(join(cgDir, fresh[0]!), 'utf8');
      (out.total[kind] ??= []).push(parseCallgrindSummary(text) / n(kind));
      const split = splitCallgrindDump(text);
      (out.rest[kind] ??= []).push(split.rest / n(kind));
      if (argv.keep) {
        mkdirSync(resolve(argv.keep), { recursive: true });
        renameSync(join(cgDir, fresh[0]!), join(resolve(argv.keep), `${name}.${kind}.${out.total[kind]!.length}.callgrind`));
      } else rmSync(join(cgDir, fresh[0]!));
    } else {
      const res = JSON.parse(line) as ChildResult;
      if (res.blocked > 0) console.log(`  warning: ${name}: ${res.blocked} benign requests blocked`);
      continue;
    }
    proc.stdin!.write('go\n');
  }
  if (argv.keep && existsSync(`/tmp/perf-${pid}.map`)) {
    copyFileSync(`/tmp/perf-${pid}.map`, join(resolve(argv.keep), `${name}.perf.map`));
    rmSync(`/tmp/perf-${pid}.map`);
  }
  return out;
}

async function instrMode(targets: [string, string][], kinds: Kind[]): Promise<void> {
  const cgDir = join(benchScratchDir('waf-engine-'), 'callgrind');
  mkdirSync(cgDir, { recursive: true });
  console.log(`waf engine instructions per request under callgrind: PL${argv.pl}, ${argv.windows} windows of ${argv.iterations} GET / ${Number(argv.iterations) >> 1} POST per tree, after ${argv.warmup || 8000} GET / ${Number(argv.warmup || 8000) >> 1} POST warm-up (uninstrumented)`);
  const counts = await Promise.all(targets.map(([name, root]) => instrChild(name, root, cgDir)));
  // 'engine': without V8's GC and optimising compiler (a marking cycle or a recompile falls into
  // some windows and not others); 'all': every instruction of the window.
  for (const which of ['rest', 'total'] as const) {
    const label = which === 'rest' ? 'engine (no GC, no TurboFan)' : 'all';
    console.log(` ${label}:`);
    const res = counts.map((c) => c[which]);
    for (let t = 0; t < targets.length; t++) {
      for (const k of kinds) console.log(`  ${targets[t]![0].padEnd(8)} ${k.padEnd(4)} instr/req ${res[t]![k]!.map((x) => x.toFixed(0)).join(' ')}`);
    }
    if (targets.length === 2) {
      for (const k of kinds) {
        const ratios = res[1]![k]!.map((b, i) => b / res[0]![k]![i]!);
        const [lo, hi] = ratios.length > 2 ? bootstrapMedianInterval(ratios) : [Math.min(...ratios), Math.max(...ratios)];
        console.log(`  ${k}: baseline / this = x${median(ratios).toFixed(3)} (windows ${lo.toFixed(3)}-${hi.toFixed(3)}, min-max ${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}); this ${median(res[0]![k]!).toFixed(0)}, baseline ${median(res[1]![k]!).toFixed(0)} instr/req`);
      }
    }
  }
}

const fmt = (xs: number[]): string => `${median(xs).toFixed(3)} [${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)}]`;

async function main(): Promise<void> {
  if (argv.child) return child(argv.child);
  const targets: [string, string][] = [['this', REPO]];
  if (argv.baseline) targets.push(['baseline', resolve(argv.baseline)]);
  const kinds = argv.requests.split(',') as Kind[];
  if (argv.instr) return instrMode(targets, kinds);
  const per: Record<string, Record<string, number[]>> = {};
  console.log(`waf engine bench: PL${argv.pl}, ${argv.rounds} rounds x ${argv.blocks} blocks x ${argv.iterations} GET / ${Number(argv.iterations) >> 1} POST, node ${process.version}`);
  for (let r = 0; r < Number(argv.rounds); r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const [name, root] of order) {
      const res = runChild(root);
      if (res.blocked > 0) console.log(`  warning: ${name}: ${res.blocked} benign requests blocked`);
      console.log(`  round ${r + 1} ${name.padEnd(8)} ${kinds.map((k) => `${k} ${res.cpu[k]!.toFixed(3)} ms`).join('  ')}  (rules loaded in ${res.loadMs.toFixed(0)} ms; matched ${res.matched || 'none'})`);
      for (const [k, g] of Object.entries(res.gc ?? {})) {
        console.log(`          ${k}: scavenges ${(g.scavenges / g.requests * 1000).toFixed(2)}/1k, promoted ${(g.promotedBytes / g.requests).toFixed(0)} B/req, mark-compacts ${g.markCompacts}`);
      }
      for (const k of kinds) ((per[name] ??= {})[k] ??= []).push(res.cpu[k]!);
    }
  }
  console.log('\nCPU ms per request, median [min-max] over rounds:');
  for (const [name] of targets) console.log(`  ${name.padEnd(8)} ${kinds.map((k) => `${k} ${fmt(per[name]![k]!)}`).join('  ')}`);
  if (argv.baseline) {
    for (const k of kinds) {
      const ratios = per.baseline![k]!.map((b, i) => b / per.this![k]![i]!);
      console.log(`  ${k}: baseline / this = x${fmt(ratios)} (per-round ratios)`);
    }
  }
}

await main();
