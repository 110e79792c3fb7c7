// `node --import tsx bench/tracing-recorder.ts [--rounds 5] [--requests 200000] [--protocol http/protobuf|http/json]`
//
// The tracing runtime alone, in process (docs/tracing.md "Cost"): the calls the core makes for one
// passthrough request (start, route match span, routed, attempt span with its attributes and
// traceparent, finish) at sampling 0, 1% and 100%, with the real export queue and OTLP encoder
// (spans are encoded as they end) and a sender that drops the encoded batch (no HTTP). Reports CPU µs per request
// (process.cpuUsage), interleaved rounds, median. Much steadier than bench/tracing.ts on a shared
// machine: it measures only the tracing code, not the gateway around it.
import { parseArgs } from 'node:util';
import type { IncomingMessage } from 'node:http';
import { Tracing } from '../plugins/tracing/tracer.ts';
import type { CompiledRoute } from '../src/config/compile.ts';
import { median } from './lib/stats.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, requests: { type: 'string', default: '200000' }, protocol: { type: 'string', default: 'http/protobuf' } } });
const rounds = Number(values.rounds);
const requests = Number(values.requests);

const RATES = process.env.RATES ? process.env.RATES.split(",").map(Number) : [0, 0.01, 1];
const route = { id: 'all', raw: { matches: { 'path-prefix': ['/'] } } } as unknown as CompiledRoute;
const req = { headers: { host: '127.0.0.1:8080', 'user-agent': 'wrk' }, socket: { remoteAddress: '127.0.0.1', remotePort: 40000 }, httpVersion: '1.1' } as unknown as IncomingMessage;

async function measure(rate: number): Promise<{ cpuUs: number; bytes: number; dropped: number }> {
  let bytes = 0;
  let dropped = 0;
  const tracing = new Tracing(
    { url: 'http://127.0.0.1:1/v1/traces', protocol: values.protocol === 'http/json' ? 'http/json' : 'http/protobuf', samplingRate: rate, serviceName: 'sentinel', maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 1000, exportTimeoutMs: 10_000 },
    { instanceId: 'bench', version: '0' },
    { exported: () => undefined, dropped: (n) => (dropped += n) },
    'http',
    (batch, done) => {
      bytes += batch.body.length;
      done({ code: 0 });
    },
  );
  const upstreamHeaders: Record<string, string> = {};
  const run = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) {
      const start = performance.now();
      const trace = tracing.start(req, 'GET', '/small', start);
      // what src/server/generation.ts and forwarder.ts do for a sampled / an unsampled request
      if (trace.sampled) {
        const match = trace.child('route match', 'internal', start);
        match.set('sentinel.route.id', route.id);
        tracing.routed(trace, route);
        match.end();
        const attempt = trace.child('GET', 'client');
        attempt.set('http.request.method', 'GET');
        attempt.set('url.full', 'http://127.0.0.1:8081' + '/small');
        attempt.set('server.address', '127.0.0.1');
        attempt.set('server.port', 8081);
        attempt.set('sentinel.upstream.id', 'origin');
        attempt.set('sentinel.upstream.attempt', 1);
        upstreamHeaders.traceparent = attempt.traceparent;
        attempt.set('http.response.status_code', 200);
        attempt.end();
      } else upstreamHeaders.traceparent = trace.server.traceparent;
      trace.finish(200, undefined);
      // let the export queue's setImmediate run, as the event loop does between requests
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
  };
  await run(20_000); // warm-up
  const before = process.cpuUsage();
  await run(requests);
  await tracing.shutdown(5000); // the last batches are encoded inside the measurement
  const used = process.cpuUsage(before);
  return { cpuUs: (used.user + used.system) / requests, bytes, dropped };
}

async function main(): Promise<void> {
  const results = new Map<number, number[]>(RATES.map((r) => [r, []]));
  for (let round = 1; round <= rounds; round++) {
    for (let k = 0; k < RATES.length; k++) {
      const rate = RATES[(k + round - 1) % RATES.length]!;
      const r = await measure(rate);
      results.get(rate)!.push(r.cpuUs);
      console.log(`[round ${round}] rate ${String(rate).padEnd(4)} ${r.cpuUs.toFixed(2)} µs CPU/request  OTLP bytes ${r.bytes}  dropped ${r.dropped}`);
    }
  }
  console.log(`\ntracing runtime alone, ${rounds} rounds x ${requests} requests (CPU µs per request; the gateway's own passthrough cost is ~90 µs on the quiet machine)\n`);
  console.log('| sampling | per round | median |');
  console.log('|:--|:--|--:|');
  for (const [rate, xs] of results) console.log(`| ${rate * 100}% | ${xs.map((x) => x.toFixed(2)).join(', ')} | ${median(xs).toFixed(2)} |`);
}

await main();
