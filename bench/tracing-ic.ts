// `node --import tsx bench/tracing-ic.ts [--rates 0,0.01] [--requests 40000] [--tree DIR] [--keep DIR]`
//
// Which of V8's inline caches the gateway's request thread sees turn polymorphic or megamorphic
// at one sampling rate and not at another (docs/tracing.md "Where 1% went"). Each rate gets its
// own compiled gateway (bench/lib/agent-hop-side.ts, `/pass` to an nginx origin, tracing to an
// OTLP sink in this process) started with `--log-ic --log-deopt`; all get the same requests. Then
// each IC event's code address is resolved to its function through the log's `code-creation`
// entries, each site (function, line, column) keeps its worst state (monomorphic, polymorphic,
// megamorphic), and every pair of rates is compared: how many sites are worse in one process than
// in the other, and which. Deoptimisations after warm-up are listed per rate. Load-independent up
// to JIT timing: run it twice before reading much into a small difference. ~2 min.
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin, startHopSide, type HopSide } from './lib/agent-hop-side.ts';
import { benchScratchDir } from './lib/processes.ts';
import { sendFixed } from './lib/instr.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';

const { values } = parseArgs({
  options: {
    rates: { type: 'string', default: '0,0.01' },
    requests: { type: 'string', default: '40000' },
    concurrency: { type: 'string', default: '8' },
    keep: { type: 'string' },
    // another checkout (with node_modules) to analyse instead of this one, e.g. a before-tree
    tree: { type: 'string' },
  },
});
const rates = values.rates.split(',').map((r) => r.trim());
const total = Number(values.requests);
const REPO = resolve(values.tree ?? resolve(import.meta.dirname, '..'));
const tmp = benchScratchDir('tracing-ic-');
const logDir = values.keep ? resolve(values.keep) : join(tmp, 'logs');
mkdirSync(logDir, { recursive: true });

const { port: originPort, proc: origin } = await startHopOrigin(tmp);
const sink = await startOtlpSink();
const sides: HopSide[] = [];
for (const rate of rates) {
  const name = `rate-${rate}`;
  // V8 prefixes one `isolate-<address>-<pid>-` per thread to a relative --logfile: it lands in the gateway's cwd (REPO)
  sides.push(
    await startHopSide(name, REPO, {
      dir: join(tmp, name),
      originPort,
      gatewayCpu: null,
      agentCpu: null,
      nodeFlags: ['--log-ic', '--log-deopt', `--logfile=tracing-ic-${name}.log`],
      tracing: rate === 'off' ? undefined : { endpoint: `http://127.0.0.1:${sink.port}`, rate: Number(rate) },
    }),
  );
}
const started = Date.now();
for (let part = 0; part < 4; part++) await Promise.all(sides.map((s) => sendFixed(s.port, '/pass', total / 4, Number(values.concurrency))));
const warmedUpS = (Date.now() - started) / 1000 / 4; // deopts after the first quarter of the load count as "after warm-up"
for (const s of sides) {
  await s.gateway.stop();
  await s.agent.stop();
}
await origin.stop();
await sink.close();

// each rate's request thread: its largest isolate log
const logOf = new Map<string, string>();
for (const s of sides) {
  const mine = readdirSync(REPO).filter((f) => f.startsWith('isolate-') && f.endsWith(`-tracing-ic-${s.name}.log`));
  for (const f of mine) renameSync(join(REPO, f), join(logDir, f));
  const main = mine.map((f) => join(logDir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
  if (!main) throw new Error(`no V8 log for ${s.name}`);
  logOf.set(s.name, main);
}

const RANK: Record<string, number> = { '1': 1, '^': 1, P: 2, N: 3 };
const STATE = ['-', 'mono', 'poly', 'mega'];

/** Splits one V8 log line (CSV; fields may be quoted with "" escapes). */
function fields(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let v = '';
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (line[i] === '"') {
          i++;
          break;
        } else v += line[i++];
      }
      out.push(v);
      i++; // the comma
    } else {
      const j = line.indexOf(',', i);
      const end = j < 0 ? line.length : j;
      out.push(line.slice(i, end));
      i = end + 1;
    }
  }
  return out;
}

interface Analysis {
  worst: Map<string, number>;
  lateDeopts: string[];
}

function analyse(file: string): Analysis {
  const code: { start: number; end: number; name: string }[] = [];
  const ics: string[][] = [];
  const lateDeopts: string[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('code-creation,')) {
      const f = fields(line);
      const start = Number.parseInt(f[4] ?? '', 16);
      if (Number.isFinite(start)) code.push({ start, end: start + Number(f[5]), name: f[6] ?? '?' });
    } else if (/^(Keyed)?(Load|Store)(Global)?IC,|^StoreInArrayLiteralIC,/.test(line)) ics.push(fields(line));
    else if (line.startsWith('code-deopt,')) {
      const f = fields(line);
      if (Number(f[1]) / 1e6 > warmedUpS && f[6] !== 'dependency-change') lateDeopts.push(`${(Number(f[1]) / 1e6).toFixed(1)} s ${f[7]} ${f[8]}`);
    }
  }
  code.sort((a, b) => a.start - b.start);
  const find = (pc: number): string => {
    let lo = 0;
    let hi = code.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (code[mid]!.start <= pc) lo = mid + 1;
      else hi = mid - 1;
    }
    const c = code[hi];
    return c && pc < c.end ? c.name.replace(/^JS:/, '').replace(/^[*~^ ]+/, '').replace(`file://${REPO}/.tmp/bench/dist/`, '') : '?';
  };
  const worst = new Map<string, number>();
  for (const f of ics) {
    const site = `${f[0]} ${find(Number.parseInt(f[1] ?? '', 16))} @${f[3]}:${f[4]}`;
    worst.set(site, Math.max(worst.get(site) ?? 0, RANK[f[6] ?? ''] ?? 0));
  }
  return { worst, lateDeopts };
}

const analyses = new Map([...logOf].map(([name, file]) => [name, analyse(file)]));
console.log(`V8 logs (request thread) in ${logDir}; ${total} requests per gateway to /pass`);
for (const [name, a] of analyses) {
  console.log(`\n${name}: ${a.worst.size} IC sites, ${a.lateDeopts.length} deoptimisations after warm-up`);
  for (const d of a.lateDeopts.slice(0, 20)) console.log(`  deopt ${d}`);
}
const names = [...analyses.keys()];
for (let i = 0; i < names.length; i++) {
  for (let j = i + 1; j < names.length; j++) {
    const [x, y] = [names[i]!, names[j]!];
    const [ax, ay] = [analyses.get(x)!, analyses.get(y)!];
    const worse = (p: Analysis, q: Analysis) => [...new Set([...p.worst.keys(), ...q.worst.keys()])].filter((k) => (p.worst.get(k) ?? 0) >= 2 && (p.worst.get(k) ?? 0) > (q.worst.get(k) ?? 0)).sort();
    const wy = worse(ay, ax);
    const wx = worse(ax, ay);
    console.log(`\n${y} against ${x}: ${wy.length} IC sites polymorphic/megamorphic only (or worse) at ${y}, ${wx.length} only at ${x}`);
    for (const k of wy) console.log(`  ${STATE[ax.worst.get(k) ?? 0]} -> ${STATE[ay.worst.get(k)!]}  ${k}`);
  }
}
