// `node --import tsx bench/tracing-recorder.ts [--rounds 5] [--requests 200000] [--warmup 20000] [--protocol http/protobuf|http/json] [--instr] [--batch 512] [--full-batches | --sink]`
//
// The tracing runtime alone, in process (docs/tracing.md "Cost"): the calls the core makes for one
// passthrough request (start, route match span, routed, attempt span with its attributes and
// traceparent, finish) at sampling 0, 1% and 100%, with the real export queue and OTLP encoder
// (spans are encoded as they end) and a sender that drops the encoded batch (no HTTP). Reports CPU µs per request
// (process.cpuUsage), interleaved rounds, median. Much steadier than bench/tracing.ts on a shared
// machine: it measures only the tracing code, not the gateway around it.
// --instr: instructions per request instead of CPU time, deterministic whatever the machine's load:
// each round and rate runs in a child under `valgrind --tool=callgrind --instr-atstart=no`, the
// counters go on after the warm-up (plus 2,000 requests to re-translate the hot code
// instrumented) and are dumped after the measured requests and the final flush (GC and the
// encoding included). Use a smaller --requests (20000: ~1 min a run).
// --warmup: requests before the measurement. At 1% the sampled path runs 1 time in 100, so it
// reaches TurboFan ~100x later than the unsampled one: with the default 20,000 its compilation
// falls into the measured requests (docs/tracing.md "Session 10"); 200,000 measures past it.
// --sink: the spans go over the real OTLP/HTTP transport (otlp-http.ts) to the bench's OTLP sink
// in a child process (its work is not counted), in batches of --batch spans and only when a batch
// is full (scheduled-delay an hour), so a run sends a known number of exports of a fixed size:
// `RATES=1 ... --instr` with and without --sink gives the instructions of one export of --batch
// spans; --full-batches the same batching with the recorder's own sender, which drops each batch
// (docs/tracing.md "Session 16": at 1%, ~11,000 requests a second send ~330 spans a second).
// The queue is unbounded there (a million spans): under valgrind the exports fall behind the loop,
// and a span dropped as queue_full would not be encoded either.
import { parseArgs } from 'node:util';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCallgrindSummary } from './lib/callgrind.ts';
import type { IncomingMessage } from 'node:http';
import { Tracing } from '../plugins/tracing/tracer.ts';
import type { CompiledRoute } from '../src/config/compile.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '200000' }, warmup: { type: 'string', default: '20000' }, protocol: { type: 'string', default: 'http/protobuf' }, instr: { type: 'boolean', default: false }, sink: { type: 'boolean', default: false }, 'full-batches': { type: 'boolean', default: false }, batch: { type: 'string', default: '512' } } });
const rounds = Number(values.rounds);
const requests = Number(values.requests);

const RATES = process.env.RATES ? process.env.RATES.split(",").map(Number) : [0, 0.01, 1];
const route = { id: 'all', raw: { matches: { 'path-prefix': ['/'] } } } as unknown as CompiledRoute;
const req = { headers: { host: '127.0.0.1:8080', 'user-agent': 'wrk' }, socket: { remoteAddress: '127.0.0.1', remotePort: 40000 }, httpVersion: '1.1' } as unknown as IncomingMessage;

async function measure(rate: number): Promise<{ cpuUs: number; sysUs: number; bytes: number; dropped: number }> {
  let bytes = 0;
  let dropped = 0;
  let exported = 0;
  const sink = values.sink ? await startSinkChild() : undefined;
  const batch = Number(values.batch);
  const full = values.sink || values['full-batches'];
  const tracing = new Tracing(
    {
      url: sink ? `http://127.0.0.1:${sink.port}/v1/traces` : 'http://127.0.0.1:1/v1/traces',
      protocol: values.protocol === 'http/json' ? 'http/json' : 'http/protobuf',
      samplingRate: rate,
      serviceName: 'sentinel',
      maxQueueSize: full ? 1 << 20 : 2048,
      maxExportBatchSize: batch,
      scheduledDelayMs: full ? 3_600_000 : 1000,
      exportTimeoutMs: 10_000,
      // the recorder's figures since session 10 are with the HTTP side on this thread
      exportThread: false,
    },
    { instanceId: 'bench', version: '0' },
    { exported: (n) => (exported += n), dropped: (n) => (dropped += n) },
    'http',
    sink
      ? undefined
      : (batch, done) => {
          bytes += batch.body.length;
          done({});
        },
  );
  const upstreamHeaders: Record<string, string> = {};
  const run = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      const trace = tracing.start(req, 'GET', '/small', start);
      // what src/server/generation.ts and forwarder.ts do for a sampled / an unsampled request
      if (typeof trace !== 'string') {
        const match = trace.child('route match', 'internal', start);
        match.set('sentinel.route.id', route.id);
        tracing.routed(trace, route);
        match.end();
        const attempt = trace.child('GET', 'client');
        attempt.set('http.request.method', 'GET');
        attempt.set('server.address', '127.0.0.1');
        attempt.set('server.port', 8081);
        attempt.set('sentinel.upstream.id', 'origin');
        attempt.set('sentinel.upstream.attempt', 1);
        attempt.set('url.full', 'http://127.0.0.1:8081' + '/small');
        upstreamHeaders.traceparent = attempt.traceparent;
        attempt.set('http.response.status_code', 200);
        attempt.end();
        trace.finish(200, undefined);
      } else upstreamHeaders.traceparent = trace;
      // let the export queue's setImmediate run, as the event loop does between requests
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
  };
  await run(Number(values.warmup)); // warm-up
  const counted = process.env.RECORDER_UNDER_CALLGRIND === '1';
  if (counted) {
    execFileSync('callgrind_control', ['-i', 'on', String(process.pid)], { stdio: 'ignore' });
    await run(2000);
    execFileSync('callgrind_control', ['-z', String(process.pid)], { stdio: 'ignore' });
  }
  const before = process.cpuUsage();
  const exportedBefore = exported;
  await run(requests);
  await tracing.shutdown(5000); // the last batches are sent inside the measurement
  const used = process.cpuUsage(before);
  if (counted) execFileSync('callgrind_control', ['-d', String(process.pid)], { stdio: 'ignore' });
  if (full) {
    console.log(`sink: ${exported - exportedBefore} spans exported in the measured part (${((exported - exportedBefore) / batch).toFixed(1)} batches of ${batch}), ${dropped} dropped`);
    sink?.proc.kill();
  }
  return { cpuUs: (used.user + used.system) / requests, sysUs: used.system / requests, bytes, dropped };
}

/** The bench's OTLP sink (bench/lib/otlp-sink.ts) in a child process, so its work is not counted. */
async function startSinkChild(): Promise<{ port: number; proc: ChildProcess }> {
  const script = `import { startOtlpSink } from ${JSON.stringify(new URL('./lib/otlp-sink.ts', import.meta.url).href)}; const s = await startOtlpSink(); console.log(s.port); process.stdin.resume().on('end', () => process.exit(0));`;
  // the sink exits when this process's end of its stdin closes (this process ended, however)
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolvePort, reject) => {
    proc.stdout!.once('data', (d: Buffer) => resolvePort(Number(String(d).trim())));
    proc.once('exit', (code) => reject(new Error(`sink exited ${code}`)));
  });
  return { port, proc };
}

/** One rate in a child under callgrind: instructions per request of the measured part. */
function instrOf(rate: number): number {
  const dir = mkdtempSync(join(tmpdir(), 'recorder-cg-'));
  try {
    const r = spawnSync(
      'valgrind',
      ['--tool=callgrind', '--smc-check=all', '--instr-atstart=no', `--callgrind-out-file=${join(dir, 'cg.%p')}`, process.execPath, '--import', 'tsx', import.meta.filename, '--rounds', '1', '--requests', String(requests), '--warmup', values.warmup, '--protocol', values.protocol, '--batch', values.batch, ...(values.sink ? ['--sink'] : []), ...(values['full-batches'] ? ['--full-batches'] : [])],
      { env: { ...process.env, RATES: String(rate), RECORDER_UNDER_CALLGRIND: '1' }, encoding: 'utf8', maxBuffer: 64 << 20 },
    );
    if (r.status !== 0) throw new Error(`callgrind child failed: ${r.stderr.slice(-2000)}`);
    for (const line of r.stdout.split('\n')) if (line.startsWith('sink:')) console.log(`  ${line}`);
    // the dump callgrind_control -d wrote (cg.<pid>.1); cg.<pid> is the (empty) one at exit
    const dump = readdirSync(dir).find((f) => /^cg\.\d+\.1$/.test(f));
    if (!dump) throw new Error(`no callgrind dump in ${dir}: ${readdirSync(dir).join(', ')}`);
    return parseCallgrindSummary(readFileSync(join(dir, dump), 'utf8')) / requests;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (values.instr) {
    const counts = new Map<number, number[]>(RATES.map((r) => [r, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const rate of RATES) {
        const n = instrOf(rate);
        counts.get(rate)!.push(n);
        console.log(`[round ${round}] rate ${String(rate).padEnd(4)} ${Math.round(n)} instructions/request (callgrind)`);
      }
    }
    console.log(`\ntracing runtime alone (${values.protocol}), ${rounds} runs x ${requests} requests under callgrind (instructions per request, every thread: GC and JIT included)\n`);
    console.log('| sampling | per run | median |');
    console.log('|:--|:--|--:|');
    for (const [rate, xs] of counts) console.log(`| ${rate * 100}% | ${xs.map((x) => Math.round(x)).join(', ')} | ${Math.round(median(xs))} |`);
    return;
  }
  const results = new Map<number, number[]>(RATES.map((r) => [r, []]));
  for (let round = 1; round <= rounds; round++) {
    for (let k = 0; k < RATES.length; k++) {
      const rate = RATES[(k + round - 1) % RATES.length]!;
      const r = await measure(rate);
      results.get(rate)!.push(r.cpuUs);
      console.log(`[round ${round}] rate ${String(rate).padEnd(4)} ${r.cpuUs.toFixed(2)} µs CPU/request (system ${r.sysUs.toFixed(2)})  OTLP bytes ${r.bytes}  dropped ${r.dropped}`);
    }
  }
  console.log(`\ntracing runtime alone, ${rounds} rounds x ${requests} requests (CPU µs per request; the gateway's own passthrough cost is ~90 µs on the quiet machine)\n`);
  console.log('| sampling | per round | median |');
  console.log('|:--|:--|--:|');
  for (const [rate, xs] of results) console.log(`| ${rate * 100}% | ${xs.map((x) => x.toFixed(2)).join(', ')} | ${median(xs).toFixed(2)} |`);
}

await main();
