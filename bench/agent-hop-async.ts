// What the agent hop costs the gateway's event loop, counted rather than timed (issue #16 item 3):
// async resources created per request (promises, process.nextTick ticks, setImmediate, timers,
// socket write requests), for /pass (no filter) and /agent (one allow-all agent on request
// headers), for this checkout and optionally another (--baseline DIR).
//   node --import tsx bench/agent-hop-async.ts [--baseline DIR] [--duration 3] [--connections 50]
// The gateway of each checkout runs in this process (its sources through tsx) with an async_hooks
// init hook switched on only while wrk loads one path; the SDK's allow-all agent of the same
// checkout runs in its own process; the origin is the agent-hop benches' nginx. Counts per request
// do not depend on how fast the machine is, except what is batched per event-loop turn (the agent
// frames' setImmediate, socket writes): those shrink when more requests share a turn, so compare
// sides measured in the same run.
import { createHook } from 'node:async_hooks';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startHopOrigin } from './lib/agent-hop-side.ts';
import { benchScratchDir, freePort, runPinned } from './lib/processes.ts';
import { parseWrkOutput } from './lib/wrk.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    duration: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
  },
});
const REPO = resolve(import.meta.dirname, '..');
const tmp = benchScratchDir('agent-async-');
const { port: originPort, proc: origin } = await startHopOrigin(tmp);

let counting = false;
const counts = new Map<string, number>();
createHook({
  init(_id, type) {
    if (counting) counts.set(type, (counts.get(type) ?? 0) + 1);
  },
}).enable();

interface Gw {
  close(): Promise<void>;
}

async function side(name: string, root: string): Promise<{ port: number; stop(): Promise<void> }> {
  const socket = join(tmp, `${name}.sock`);
  const agentFile = join(tmp, `${name}-agent.mjs`);
  writeFileSync(
    agentFile,
    `import { runAgent, allow } from ${JSON.stringify(join(root, 'src', 'agent-sdk', 'index.ts'))};
await runAgent({ socketPath: ${JSON.stringify(socket)}, name: 'bench-allow', onRequestHeaders: () => allow() });
process.stdout.write('listening\\n');
process.on('SIGTERM', () => process.exit(0));
`,
  );
  const agent = spawn(process.execPath, ['--import', 'tsx', agentFile], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  // stopped on any exit of this process, a failed run included (no orphan agents)
  process.once('exit', () => agent.kill('SIGTERM'));
  await new Promise<void>((ok) => agent.stdout.on('data', (c: Buffer) => c.toString().includes('listening') && ok()));
  const port = await freePort();
  const { startGateway } = (await import(join(root, 'src', 'server', 'gateway.ts'))) as { startGateway(o: { logLevel: string; configText: string }): Promise<Gw> };
  const gw = await startGateway({
    logLevel: 'silent',
    configText: `
listeners { listener "http" { address "127.0.0.1:${port}" } }
agents { agent "allow" { unix-socket "${socket}"; events "request_headers"; timeout-ms 1000 } }
filters { filter "allow" { type "agent"; agent "allow"; failure-mode "closed" } }
routes {
  route "agent" { priority "high"; matches { path-prefix "/agent" }; upstream "origin"; filters "allow" }
  route "pass" { matches { path-prefix "/" }; upstream "origin" }
}
upstreams { upstream "origin" { target "127.0.0.1:${originPort}" } }
observability { logging { level "warn"; access-log { enabled #false } } }
`,
  });
  return {
    port,
    async stop() {
      await gw.close();
      agent.kill('SIGTERM');
    },
  };
}

async function load(port: number, path: string, seconds: number): Promise<number> {
  const out = await runPinned('wrk', null, 'wrk', ['-t1', `-c${values.connections}`, `-d${seconds}s`, '--latency', `http://127.0.0.1:${port}${path}`], (seconds + 30) * 1000);
  const w = parseWrkOutput(out);
  if (w.non2xx3xx || w.socketErrors.connect + w.socketErrors.read + w.socketErrors.write + w.socketErrors.timeout) throw new Error(`errors on ${path}: ${out}`);
  return w.requests;
}

const sides = [{ name: 'current', root: REPO }, ...(values.baseline ? [{ name: 'baseline', root: resolve(values.baseline) }] : [])];
const rows: string[] = [];
for (const s of sides) {
  const g = await side(s.name, s.root);
  for (const path of ['/pass', '/agent']) {
    await load(g.port, path, 1); // warm-up
    counts.clear();
    counting = true;
    const n = await load(g.port, path, Number(values.duration));
    counting = false;
    const per = [...counts].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / n).toFixed(2)}`);
    rows.push(`${s.name.padEnd(8)} ${path.padEnd(6)} ${n} requests; per request: ${per.join(', ')}`);
    console.log(rows.at(-1));
  }
  await g.stop();
}
await origin.stop();
process.exit(0);
