// Bytes the tracing runtime allocates a request, driven the way the core drives it (start, route
// match, routed, attempt with its traceparent, finish), at a sampling rate: with a young
// generation large enough that no GC runs inside a round, the heap's growth over the round is what
// the round allocated (each round starts after a full GC). A round with a GC in it is reported and
// left out. The harness's own loop allocates nothing per request. Allocation matters beside the
// counts: it moves GC work to V8's helper threads, which an instruction count of the request path
// does not see (docs/tracing.md "Session 29").
//   node --expose-gc --max-semi-space-size=256 --min-semi-space-size=256 --import tsx bench/tracing-alloc.ts [--rate 0,0.01,1] [--requests 20000] [--rounds 5]
import type { IncomingMessage } from 'node:http';
import { getHeapStatistics } from 'node:v8';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Tracing } from '../plugins/tracing/tracer.ts';
import type { CompiledRoute } from '../src/config/compile.ts';

const { values } = parseArgs({ options: { rate: { type: 'string', default: '0,0.01,1' }, requests: { type: 'string', default: '20000' }, rounds: { type: 'string', default: '5' } } });
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc (see the first lines)');
const gc = globalThis.gc;
let gcs = 0;
// every GC but the forced one between rounds (its entry may arrive after the round has begun)
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) if (((e as unknown as { detail?: { flags?: number } }).detail?.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) continue;
  else gcs++;
}).observe({ entryTypes: ['gc'] });
const route = { id: 'all', raw: { matches: { 'path-prefix': ['/'] } } } as unknown as CompiledRoute;
const sockets = Array.from({ length: 20 }, (_, i) => ({ remoteAddress: '127.0.0.1', remotePort: 40000 + i }));
const reqs = sockets.map((socket) => ({ headers: { host: '127.0.0.1:8080', 'user-agent': 'h2load nghttp2/1.52.0' }, socket, httpVersion: '1.1' }) as unknown as IncomingMessage);
let sink = 0;

for (const rate of values.rate.split(',').map(Number)) {
  const tracing = new Tracing(
    { url: 'http://127.0.0.1:1/v1/traces', protocol: 'http/protobuf', samplingRate: rate, serviceName: 's', maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 3_600_000, exportTimeoutMs: 1000, exportThread: false },
    { instanceId: 'i', version: '0' },
    { exported: () => undefined, dropped: () => undefined },
    'http',
    (batch, done) => {
      sink += batch.body.length;
      done({});
    },
  );
  const one = (i: number) => {
    const t = tracing.start(reqs[i % reqs.length]!, 'GET', '/small', performance.now());
    if (typeof t === 'string') {
      sink += t.length; // the unsampled request's traceparent, as the forwarder sets it
      return;
    }
    const match = t.child('route match', 'internal');
    match.set('sentinel.route.id', route.id);
    tracing.routed(t, route);
    match.end();
    const attempt = t.child('GET', 'client');
    attempt.set('http.request.method', 'GET');
    attempt.set('server.address', '127.0.0.1');
    attempt.set('server.port', 8081);
    attempt.set('url.full', 'http://127.0.0.1:8081/small');
    sink += attempt.traceparent.length;
    attempt.set('http.response.status_code', 200);
    attempt.end();
    t.finish(200, undefined);
  };
  const n = Number(values.requests);
  for (let i = 0; i < 100_000; i++) one(i); // warm-up (tiers up)
  const per: number[] = [];
  for (let r = 0; r < Number(values.rounds); r++) {
    await new Promise((res) => setImmediate(res)); // the queue's batches go out between rounds
    gc();
    const g0 = gcs;
    const h0 = getHeapStatistics().used_heap_size;
    for (let i = 0; i < n; i++) one(i);
    const h1 = getHeapStatistics().used_heap_size;
    await new Promise((res) => setTimeout(res, 20)); // a GC inside the round is counted by now
    if (gcs !== g0) console.log(`  rate ${rate} round ${r}: a GC ran, left out`);
    else per.push((h1 - h0) / n);
  }
  console.log(`rate ${rate}: ${per.map((b) => b.toFixed(1)).join(', ')} B a request`);
  await tracing.shutdown(100);
}
if (sink < 0) console.log(sink);
