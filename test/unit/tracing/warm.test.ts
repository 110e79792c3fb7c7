// The sampled path's warm-up (plugins/tracing/tracer.ts, Tracing.warm): the first tracer of a
// process runs synthetic sampled requests through the recorder and the encoder so that a rare
// sampled request (1 in 100 at 1%) does not run them in V8's lower tiers; none of those spans
// reaches the generation's queue or collector. Checked in a child process: V8's tier of a
// function (%GetOptimizationStatus) is per process, and the warm-up runs once per process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const TRACER = new URL('../../../plugins/tracing/tracer.ts', import.meta.url).href;
const PROTO = new URL('../../../plugins/tracing/otlp-proto.ts', import.meta.url).href;

// V8's OptimizationStatus bits (src/runtime/runtime.h): the function runs TurboFan code
const TURBOFANNED = 1 << 6;

const script = `
import { Tracing } from ${JSON.stringify(TRACER)};
import { OtlpProtoEncoder } from ${JSON.stringify(PROTO)};
let spans = 0;
const settings = { url: 'http://127.0.0.1:1/v1/traces', protocol: 'http/protobuf', samplingRate: 0, serviceName: 's', maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMs: 1000, exportTimeoutMs: 1000, exportThread: false };
const tracing = new Tracing(settings, { instanceId: 'i', version: '0' }, { exported: (n) => (spans += n), dropped: (n) => (spans += n) }, 'http', (b, done) => { spans += b.spans; done({}); });
const status = %GetOptimizationStatus(OtlpProtoEncoder.prototype.append);
await tracing.shutdown(1000);
console.log(JSON.stringify({ status, spans }));
`;

test('the first tracer of a process runs the sampled path to TurboFan before any request, and exports none of it', () => {
  // synchronous compiles: the tier reached does not depend on a background thread's timing
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--no-concurrent-recompilation', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { status, spans } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { status: number; spans: number };
  assert.equal(spans, 0, 'the warm-up spans reached the tracer\'s sender');
  assert.ok(status & TURBOFANNED, `the encoder's append is not optimised after the warm-up (status 0x${status.toString(16)})`);
});
