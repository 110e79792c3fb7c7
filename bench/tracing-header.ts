// `node --import tsx bench/tracing-header.ts [--rounds 3] [--requests 200000] [--warmup 200000] [--variants none,tp]`
//
// What the upstream `traceparent` costs inside undici, counted alone (docs/tracing.md "Session 16"):
// undici's `Request` constructor (lib/core/request.js, what every dispatch builds) with the
// forwarder's header set for a passthrough request, per variant:
//   none      the headers tracing off sends (src/server/headers.ts forwardHeaders)
//   tp        the same plus `traceparent` (a 55-character slice of a longer text, as
//             plugins/tracing/trace-context.ts newRoot gives it)
//   tp-known  as tp, with `traceparent` / `tracestate` added to undici's record of well-known
//             header names first (lib/core/constants.js headerNameLowerCasedRecord, name -> its
//             lower-case form): the lever of session 16 that was measured and dropped (-21);
//             session 26 counted -272 (-399, -145) and landed it for `traceparent`
//   known     as tp-known, with the gateway's own names too (x-forwarded-*, x-real-ip,
//             x-correlation-id, x-trace-id): what every forwarded request pays for names undici
//             does not know (docs/tracing.md "Session 26")
// Each round and variant runs in a child under `valgrind --tool=callgrind --instr-atstart=no`;
// counting goes on after the warm-up and 2,000 more constructions (the hot code re-translated
// instrumented) and the dump is taken after --requests constructions: instructions per
// construction, the same whatever the machine's load.
import { parseArgs } from 'node:util';
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCallgrindSummary } from './lib/callgrind.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    requests: { type: 'string', default: '200000' },
    warmup: { type: 'string', default: '200000' },
    variants: { type: 'string', default: 'none,tp' },
    child: { type: 'string' },
  },
});
const requests = Number(values.requests);
const VARIANTS = values.variants.split(',').map((v) => v.trim());
for (const v of VARIANTS) if (v !== 'none' && v !== 'tp' && v !== 'tp-known' && v !== 'known') throw new Error(`--variants: unknown ${v}`);

/** What the dropped lever did: the trace header names as names undici already knows. */
function registerTraceHeaderNames(more: readonly string[] = []): void {
  const { headerNameLowerCasedRecord } = createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord: Record<string, string> };
  for (const n of ['traceparent', 'tracestate', ...more]) headerNameLowerCasedRecord[n] = n;
}

/** The names src/server/headers.ts forwardHeaders adds to every request, none of them in undici's record. */
const GATEWAY_NAMES = ['x-forwarded-for', 'x-real-ip', 'x-forwarded-proto', 'x-forwarded-host', 'x-correlation-id', 'x-trace-id', 'x-forwarded-by'];

type RequestCtor = new (origin: string, opts: object, handler: object) => { headers: unknown[] };

function runChild(variant: string): void {
  const Request = createRequire(import.meta.url)('undici/lib/core/request.js') as RequestCtor;
  if (variant === 'tp-known') registerTraceHeaderNames();
  if (variant === 'known') registerTraceHeaderNames(GATEWAY_NAMES);
  const handler = { onConnect() {}, onHeaders() { return true; }, onData() { return true; }, onComplete() {}, onError() {}, onUpgrade() {} };
  // ~64 root traceparents a text, as trace-context.ts pools them
  const text = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'.repeat(64);
  let sink = 0;
  const run = (count: number): void => {
    for (let i = 0; i < count; i++) {
      const headers: Record<string, string> = {
        host: '127.0.0.1:8080',
        'user-agent': 'h2load nghttp2/1.64.0',
        accept: '*/*',
        'x-forwarded-for': '127.0.0.1',
        'x-real-ip': '127.0.0.1',
        'x-forwarded-proto': 'http',
        'x-forwarded-host': '127.0.0.1:8080',
        'x-correlation-id': '7vZ0c1bQ2kq3a',
        'x-trace-id': '7vZ0c1bQ2kq3a',
        'x-forwarded-by': 'Sentinel',
      };
      if (variant !== 'none') {
        const o = (i & 63) * 55;
        headers.traceparent = text.slice(o, o + 55);
      }
      const r = new Request('http://127.0.0.1:8081', { path: '/pass', method: 'GET', headers, headersTimeout: 30_000, bodyTimeout: 30_000 }, handler);
      sink += r.headers.length;
    }
  };
  run(Number(values.warmup));
  execFileSync('callgrind_control', ['-i', 'on', String(process.pid)], { stdio: 'ignore' });
  run(2000);
  execFileSync('callgrind_control', ['-z', String(process.pid)], { stdio: 'ignore' });
  run(requests);
  execFileSync('callgrind_control', ['-d', String(process.pid)], { stdio: 'ignore' });
  if (sink === 0) console.log('no headers');
}

function instrOf(variant: string): number {
  const dir = mkdtempSync(join(tmpdir(), 'header-cg-'));
  try {
    const r = spawnSync(
      'valgrind',
      ['--tool=callgrind', '--smc-check=all', '--instr-atstart=no', `--callgrind-out-file=${join(dir, 'cg.%p')}`, process.execPath, '--import', 'tsx', import.meta.filename, '--child', variant, '--requests', String(requests), '--warmup', values.warmup],
      { encoding: 'utf8', maxBuffer: 64 << 20 },
    );
    if (r.status !== 0) throw new Error(`callgrind child failed: ${r.stderr.slice(-2000)}`);
    const dump = readdirSync(dir).find((f) => /^cg\.\d+\.1$/.test(f));
    if (!dump) throw new Error(`no callgrind dump in ${dir}: ${readdirSync(dir).join(', ')}`);
    return parseCallgrindSummary(readFileSync(join(dir, dump), 'utf8')) / requests;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (values.child) runChild(values.child);
else {
  const counts = new Map<string, number[]>(VARIANTS.map((v) => [v, []]));
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const v of VARIANTS) {
      const n = instrOf(v);
      counts.get(v)!.push(n);
      console.log(`[round ${round}] ${v.padEnd(8)} ${Math.round(n)} instructions per Request`);
    }
  }
  const none = counts.has('none') ? median(counts.get('none')!) : undefined;
  console.log(`\nundici Request construction, ${values.rounds} runs x ${requests} under callgrind (instructions each)\n`);
  console.log('| variant | per run | median | - none |');
  console.log('|:--|:--|--:|--:|');
  for (const [v, xs] of counts) console.log(`| ${v} | ${xs.map((x) => Math.round(x)).join(', ')} | ${Math.round(median(xs))} | ${none === undefined ? '' : Math.round(median(xs) - none)} |`);
}
