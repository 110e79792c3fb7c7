// Feature scenarios: OpenTelemetry tracing (docs/tracing.md) at 1% and 100% sampling, exporting
// OTLP/HTTP to a local sink (a node:http server in the runner that reads each batch and answers
// 200). Reported as ratios to passthrough (tracing off) under the same load in the same round:
// the goal is 1% <= 3% and 100% <= 25% throughput cost.
import http from 'node:http';
import type { FeatureScenario, ScenarioContext } from '../lib/scenario.ts';

let sink: http.Server | undefined;
let sinkPort = 0;
let batches = 0;
let bytes = 0;

function tracingConfig(ctx: ScenarioContext, rate: number): string {
  // The runner asks for the config before setup(): the sink's port is chosen here.
  sinkPort = 20000 + Math.floor(Math.random() * 10000);
  const base = ctx.passthroughConfig();
  const withTracing = base.replace(/\nobservability \{\n/, `\nobservability {\n    tracing {\n        backend "otlp" { endpoint "http://127.0.0.1:${sinkPort}" }\n        sampling-rate ${rate}\n    }\n`);
  if (withTracing === base) throw new Error('the passthrough config no longer has the observability block this scenario extends');
  return withTracing;
}

async function startSink(): Promise<void> {
  batches = 0;
  bytes = 0;
  sink = http.createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      batches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    sink!.once('error', reject);
    sink!.listen(sinkPort, '127.0.0.1', resolve);
  });
}

async function stopSink(expectSpans: boolean): Promise<void> {
  const s = sink;
  sink = undefined;
  if (!s) return;
  s.closeAllConnections();
  await new Promise<void>((r) => s.close(() => r()));
  // a run whose spans never reached the sink did not measure export: report it as failed
  if (expectSpans && batches === 0) throw new Error('the OTLP sink received no spans');
  process.stderr.write(`tracing sink: ${batches} OTLP requests, ${(bytes / 1048576).toFixed(1)} MiB\n`);
}

const onePercent: FeatureScenario = {
  name: 'tracing-1pct',
  description: 'OpenTelemetry tracing, sampling-rate 0.01, OTLP/HTTP to a local sink',
  sentinelConfig: (ctx) => tracingConfig(ctx, 0.01),
  setup: startSink,
  teardown: () => stopSink(false),
};

const everything: FeatureScenario = {
  name: 'tracing-100pct',
  description: 'OpenTelemetry tracing, sampling-rate 1 (3 spans per request), OTLP/HTTP to a local sink',
  sentinelConfig: (ctx) => tracingConfig(ctx, 1),
  setup: startSink,
  teardown: () => stopSink(true),
};

export const scenarios = [onePercent, everything];
