// The WAF engine alone under values that come back after a while (issue #16, docs/waf.md "Session 22
// (waf22)"): the bench GET of `npm run bench:waf` with its counter restarting every --period GETs,
// as wrk's does in every window or round of the in-situ benches. From the second period on, the
// query's values (~2 per GET and cache) were seen before and are admitted into the miss memo and
// the regex prefilter's cache; once those hold 20,000 values, each GET evicts as many. Per window of
// --period GETs: CPU-ms a GET (process.cpuUsage) and the old space's size. With --baseline, both
// trees run at the same time (one child each, same load), and the report gives per window the
// ratio baseline ÷ this tree and its median over the windows from the fourth on (the caches are
// full by then at the default period). `--no-repeat`: a counter that never repeats (no admissions).
//
//   node --import tsx bench/waf-cache-churn.ts [--baseline DIR] [--period 12000] [--windows 10]
//       [--no-repeat] [--host shop.example.com]
//
// CRS from $CRS_DIR (default ../shared/conformance/crs). CPU times: same-run ratios under load.
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics } from 'node:v8';

import { median } from './lib/stats.ts';
import { BROWSER_HEADERS, getPath } from './lib/waf-requests.ts';

const REPO = resolve(import.meta.dirname, '..');
const { values: argv } = parseArgs({
  options: {
    baseline: { type: 'string', default: '' },
    period: { type: 'string', default: '12000' },
    windows: { type: 'string', default: '10' },
    'no-repeat': { type: 'boolean', default: false },
    host: { type: 'string', default: 'shop.example.com' },
    child: { type: 'string', default: '' },
  },
});

interface TxLike {
  processRequestHeaders(): unknown;
  processRequestBody(): unknown;
  processLogging(): unknown;
}
interface WafLike {
  newTransaction(req: { clientIp: string; clientPort: number; serverPort: number; method: string; uri: string; protocol: string; headers: [string, string][] }): TxLike;
}

/** In the child: loads the tree's engine and prints one JSON line per window. */
async function child(root: string): Promise<void> {
  const mod = (await import(pathToFileURL(resolve(root, 'src/waf/index.ts')).href)) as { loadWaf(opts: { mode: 'blocking'; paranoiaLevel: number; crsDir: string }): WafLike };
  const crsDir = process.env.CRS_DIR ?? resolve(REPO, '..', 'shared', 'conformance', 'crs');
  const waf = mod.loadWaf({ mode: 'blocking', paranoiaLevel: 1, crsDir });
  const headers: [string, string][] = [['host', argv.host], ...BROWSER_HEADERS.map(([k, v]): [string, string] => [k.toLowerCase(), v])];
  const period = Number(argv.period);
  let sent = 0;
  for (let w = 0; w < Number(argv.windows); w++) {
    const c0 = process.cpuUsage();
    for (let i = 1; i <= period; i++) {
      sent++;
      const n = argv['no-repeat'] ? sent : i;
      const tx = waf.newTransaction({ clientIp: '127.0.0.1', clientPort: 40000 + (sent % 20000), serverPort: 0, method: 'GET', uri: getPath(String(n)), protocol: 'HTTP/1.1', headers });
      if (!tx.processRequestHeaders()) tx.processRequestBody();
      tx.processLogging();
    }
    const d = process.cpuUsage(c0);
    const old = getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')!.space_used_size;
    process.stdout.write(`${JSON.stringify({ window: w + 1, ms: (d.user + d.system) / 1000 / period, oldMb: old / 1e6 })}\n`);
  }
}

interface Window {
  window: number;
  ms: number;
  oldMb: number;
}

function run(root: string): Promise<Window[]> {
  const args = ['--import', 'tsx', import.meta.filename, '--child', root, '--period', argv.period, '--windows', argv.windows, '--host', argv.host];
  if (argv['no-repeat']) args.push('--no-repeat');
  const p = spawn(process.execPath, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  p.stdout.on('data', (b: Buffer) => (out += b.toString()));
  return new Promise((ok, fail) =>
    p.on('exit', (code) => (code === 0 ? ok(out.trim().split('\n').map((l) => JSON.parse(l) as Window)) : fail(new Error(`${root}: child exited with ${code}`)))),
  );
}

async function main(): Promise<void> {
  const roots = [REPO, ...(argv.baseline ? [resolve(argv.baseline)] : [])];
  console.log(`engine alone, bench GET, counter ${argv['no-repeat'] ? 'never repeating' : `restarting every ${argv.period} GETs`}, ${argv.windows} windows: ${roots.join(' against ')}`);
  const [mine, base] = await Promise.all(roots.map(run));
  for (let i = 0; i < mine!.length; i++) {
    const m = mine![i]!;
    const b = base?.[i];
    console.log(`  window ${m.window}: ${m.ms.toFixed(3)} CPU-ms a GET, old space ${m.oldMb.toFixed(0)} MB${b ? `; baseline ${b.ms.toFixed(3)}, ${b.oldMb.toFixed(0)} MB; baseline ÷ this x${(b.ms / m.ms).toFixed(3)}` : ''}`);
  }
  const from = 3; // windows 4 on: the caches are full at the default period
  const tail = (ws: Window[]): number[] => ws.slice(from).map((w) => w.ms);
  console.log(`windows ${from + 1}-: this ${median(tail(mine!)).toFixed(3)} CPU-ms a GET (${Math.min(...tail(mine!)).toFixed(3)}-${Math.max(...tail(mine!)).toFixed(3)})`);
  if (base) {
    console.log(`windows ${from + 1}-: baseline ${median(tail(base)).toFixed(3)} (${Math.min(...tail(base)).toFixed(3)}-${Math.max(...tail(base)).toFixed(3)}); baseline ÷ this, median of windows x${median(base.slice(from).map((b, i) => b.ms / mine![i + from]!.ms)).toFixed(3)}`);
  }
}

if (argv.child) await child(argv.child);
else await main();
