// Feature scenarios: agent filters (docs/agents.md). `agent-headers`: one allow-all agent on
// request headers; `agent-body-4k`: the same agent also inspecting a 4 KiB JSON POST body
// (buffered, sent to the agent, replayed upstream). Measured against Sentinel passthrough.
//
// Also runnable on its own, without nginx/wrk (autocannon, bounded, one gateway in a child
// process serving a passthrough route and both agent routes, interleaved rounds):
//   node --import tsx bench/scenarios/agents.ts --compare [--duration 5] [--rounds 3] [--connections 20]
// Helper modes used by both: --serve-agent SOCKET (the allow-all agent), --serve-gateway FILE.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { FeatureScenario, ScenarioContext } from '../lib/scenario.ts';

const SELF = fileURLToPath(import.meta.url);
const REPO = resolve(import.meta.dirname, '..', '..');
const BODY_4K = JSON.stringify({ id: 1, items: Array.from({ length: 60 }, (_, i) => ({ n: i, name: `item-${i}`, tag: 'bench' })) }).padEnd(4096, ' ');

const POST_SCRIPT = join(tmpdir(), 'sentinel-bench-agents-post-4k.lua');
const agentProcs = new Map<string, ChildProcess>();

function agentBlock(socket: string, body: boolean): string {
  return `agents {
    agent "allow" {
        unix-socket "${socket}"
        events ${body ? '"request_headers" "request_body"' : '"request_headers"'}
        timeout-ms 1000
    }
}
filters {
    filter "allow" {
        type "agent"
        agent "allow"
        failure-mode "closed"
    }
}
`;
}

async function startAgentProcess(socket: string): Promise<ChildProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', SELF, '--serve-agent', socket], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((ok, fail) => {
    proc.stdout!.on('data', (c: Buffer) => c.toString().includes('listening') && ok());
    proc.once('exit', (code) => fail(new Error(`bench agent exited (${code})`)));
  });
  return proc;
}

function featureScenario(name: string, description: string, body: boolean): FeatureScenario {
  const socketOf = (ctx: ScenarioContext) => join(ctx.tmpDir, `${name}.sock`);
  return {
    name,
    description,
    sentinelConfig(ctx) {
      const base = ctx.passthroughConfig();
      const withFilter = base.replace(/( {8}upstream "origin"\n)/, `$1        filters "allow"\n`);
      if (withFilter === base) throw new Error('the passthrough config no longer has the route line this scenario extends');
      return `${withFilter}\n${agentBlock(socketOf(ctx), body)}${body ? 'waf {\n    body-inspection {\n        content-types "application/json"\n    }\n}\n' : ''}`;
    },
    async setup(ctx) {
      if (body) writeFileSync(POST_SCRIPT, `wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = ${JSON.stringify(BODY_4K)}\n`);
      agentProcs.set(name, await startAgentProcess(socketOf(ctx)));
    },
    async teardown() {
      const p = agentProcs.get(name);
      agentProcs.delete(name);
      if (p && p.exitCode === null) {
        p.kill('SIGTERM');
        await new Promise((r) => p.once('exit', r));
      }
    },
    // wrk's -s needs a path known before setup runs: a fixed name in the OS temp dir.
    ...(body ? { load: { path: '/small', wrkArgs: ['-s', POST_SCRIPT] } } : {}),
  };
}

export const scenarios: FeatureScenario[] = [
  featureScenario('agent-headers', 'one allow-all agent (v2 UDS) on request headers', false),
  featureScenario('agent-body-4k', 'allow-all agent on request headers + buffered 4 KiB JSON body inspection', true),
];

// ---- standalone modes ----------------------------------------------------------------------

async function serveAgent(socket: string): Promise<void> {
  const { runAgent, allow } = await import('../../src/agent-sdk/index.ts');
  const agent = await runAgent({ socketPath: socket, name: 'bench-allow', onRequestHeaders: () => allow(), onRequestBodyChunk: () => allow() });
  process.stdout.write(`bench agent listening on ${socket}\n`);
  process.on('SIGTERM', () => void agent.close().then(() => process.exit(0)));
}

async function serveGateway(file: string): Promise<void> {
  const text = readFileSync(file, 'utf8');
  const { startGateway } = await import('../../src/server/gateway.ts');
  const gw = await startGateway({ configText: text, logLevel: 'warn' });
  process.stdout.write(`gateway listening on ${gw.address('http').port}\n`);
  process.on('SIGTERM', () => void gw.close().then(() => process.exit(0)));
}

async function compare(opts: { duration: number; rounds: number; connections: number }): Promise<void> {
  // autocannon ships no types; the bit used here is typed locally.
  const autocannon = (await import('autocannon' as string)).default as (o: Record<string, unknown>) => Promise<{ requests: { average: number }; errors: number; non2xx: number }>;
  const dir = mkdtempSync(join(tmpdir(), 'sab-'));
  const upstream = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('x'.repeat(100)));
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const upPort = (upstream.address() as AddressInfo).port;
  const socketHeaders = join(dir, 'h.sock');
  const socketBody = join(dir, 'b.sock');
  const config = `
system { worker-threads 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents {
  agent "headers" { unix-socket "${socketHeaders}"; events "request_headers"; timeout-ms 1000 }
  agent "body" { unix-socket "${socketBody}"; events "request_headers" "request_body"; timeout-ms 1000 }
}
filters {
  filter "headers" { type "agent"; agent "headers"; failure-mode "closed" }
  filter "body" { type "agent"; agent "body"; failure-mode "closed" }
}
waf { body-inspection { content-types "application/json" } }
routes {
  route "headers" { priority "high"; matches { path-prefix "/headers" }; upstream "origin"; filters "headers" }
  route "body" { priority "high"; matches { path-prefix "/body" }; upstream "origin"; filters "body" }
  route "pass" { matches { path-prefix "/" }; upstream "origin" }
}
upstreams { upstream "origin" { target "127.0.0.1:${upPort}" } }
observability { logging { level "warn"; access-log { enabled #false } } }
`;
  writeFileSync(join(dir, 'gw.kdl'), config);
  const agents = [await startAgentProcess(socketHeaders), await startAgentProcess(socketBody)];
  const gwProc = spawn(process.execPath, ['--import', 'tsx', SELF, '--serve-gateway', join(dir, 'gw.kdl')], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((ok, fail) => {
    gwProc.stdout!.on('data', (c: Buffer) => {
      const m = /listening on (\d+)/.exec(c.toString());
      if (m) ok(Number(m[1]));
    });
    gwProc.once('exit', (code) => fail(new Error(`gateway exited (${code})`)));
  });
  const cases = {
    passthrough: { path: '/pass', method: 'GET' as const },
    'agent-headers': { path: '/headers', method: 'GET' as const },
    'passthrough-post-4k': { path: '/pass', method: 'POST' as const, body: BODY_4K },
    'agent-body-4k': { path: '/body', method: 'POST' as const, body: BODY_4K },
  };
  const results: Record<string, number[]> = {};
  const errors: Record<string, number> = {};
  try {
    for (let round = 0; round < opts.rounds; round++) {
      for (const [name, c] of Object.entries(cases)) {
        const r = await autocannon({
          url: `http://127.0.0.1:${port}${c.path}`,
          method: c.method,
          connections: opts.connections,
          duration: opts.duration,
          ...(c.method === 'POST' ? { body: c.body, headers: { 'content-type': 'application/json' } } : {}),
        });
        (results[name] ??= []).push(r.requests.average);
        errors[name] = (errors[name] ?? 0) + r.errors + r.non2xx;
      }
    }
  } finally {
    gwProc.kill('SIGTERM');
    for (const a of agents) a.kill('SIGTERM');
    upstream.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, median(v)]));
  console.log(`agents bench: ${opts.rounds} rounds x ${opts.duration} s, ${opts.connections} connections, median req/s`);
  console.log(`  passthrough GET          ${m.passthrough!.toFixed(0)}`);
  console.log(`  agent-headers GET        ${m['agent-headers']!.toFixed(0)}  ratio ${(m['agent-headers']! / m.passthrough!).toFixed(3)}`);
  console.log(`  passthrough POST 4 KiB   ${m['passthrough-post-4k']!.toFixed(0)}`);
  console.log(`  agent-body-4k POST       ${m['agent-body-4k']!.toFixed(0)}  ratio ${(m['agent-body-4k']! / m['passthrough-post-4k']!).toFixed(3)} (vs POST passthrough), ${(m['agent-body-4k']! / m.passthrough!).toFixed(3)} (vs GET passthrough)`);
  console.log(`  errors + non-2xx: ${JSON.stringify(errors)}`);
}

if (process.argv[1] && resolve(process.argv[1]) === SELF) {
  const { values } = parseArgs({
    options: {
      'serve-agent': { type: 'string' },
      'serve-gateway': { type: 'string' },
      compare: { type: 'boolean', default: false },
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      connections: { type: 'string', default: '20' },
    },
  });
  if (values['serve-agent']) await serveAgent(values['serve-agent']);
  else if (values['serve-gateway']) await serveGateway(values['serve-gateway']);
  else if (values.compare) await compare({ duration: Number(values.duration), rounds: Number(values.rounds), connections: Number(values.connections) });
  else process.stderr.write('usage: agents.ts --compare [--duration S] [--rounds N] [--connections N]\n');
}
