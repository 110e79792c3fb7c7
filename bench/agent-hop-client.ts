// The gateway side of the agent hop alone, without HTTP: CPU time per `AgentClient.call` of a
// request_headers event against the SDK's allow-all agent (its own process), 50 calls in flight,
// for this checkout and another (--baseline DIR) in the same process, in interleaved rounds
// (A B B A ...), so both see the same machine. This is the client, connection, frame writer and
// reader, deadline and codec of the hop, with nothing of the proxy around it; the agent process
// is the same code on both sides (each checkout's own SDK).
//   node --import tsx bench/agent-hop-client.ts --baseline DIR [--current DIR] [--pairs 12] [--duration 2] [--batch N]
// --batch N: lock-step batches of N calls (one event write per batch on both sides, whatever the
// scheduler does) instead of --inflight free-running loops, whose batch sizes follow the timing:
// under load a side that happens to get smaller batches pays more syscalls per call.
// Reported: per-pair ratio current/baseline of the client's CPU per call (process.cpuUsage of
// this process, user + system), median with a bootstrap 95% interval; and calls/s. The same for
// the agent process's CPU per call (schedstat of its threads): the SDK side of the hop.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchScratchDir } from './lib/processes.ts';
import { treeCpuNs } from './lib/procfs.ts';
import { bootstrapMedianInterval, median } from './lib/stats.ts';

const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    // another checkout as the 'current' side (default: this one): swapped runs show the method's order bias
    current: { type: 'string' },
    pairs: { type: 'string', default: '12' },
    duration: { type: 'string', default: '2' },
    inflight: { type: 'string', default: '50' },
    // N > 0: lock-step batches of N calls made in one turn, each batch awaited whole (one write
    // per batch whatever the scheduler does), so CPU per call compares code, not batch sizes
    batch: { type: 'string', default: '0' },
  },
});
const REPO = resolve(values.current ?? resolve(import.meta.dirname, '..'));
const tmp = benchScratchDir('agent-client-');

interface Side {
  name: string;
  agent: ChildProcess;
  call(cid: string): Promise<unknown>;
  close(): Promise<void>;
}

interface ClientLike {
  start(): void;
  call(type: number, cid: string, payload: unknown, o: { timeoutMs: number }): Promise<unknown>;
  close(): Promise<void>;
}

async function startSide(name: string, root: string): Promise<Side> {
  const { AgentClient } = (await import(join(root, 'src/agent-protocol/client.ts'))) as { AgentClient: new (o: object) => ClientLike };
  const { MessageType } = (await import(join(root, 'src/agent-protocol/frames.ts'))) as { MessageType: { RequestHeaders: number } };
  const sock = join(tmp, `${name}.sock`);
  const sdk = JSON.stringify(join(root, 'src/agent-sdk/index.ts'));
  const agent = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { runAgent, allow } from ${sdk}; await runAgent({ socketPath: ${JSON.stringify(sock)}, name: 'bench-allow', onRequestHeaders: () => allow() }); console.log('listening');`], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((ok) => agent.stdout!.on('data', (c: Buffer) => String(c).includes('listening') && ok()));
  const client = new AgentClient({ id: 'bench', socketPath: sock, connections: 1, connectTimeoutMs: 1000, reconnectIntervalMs: 1000, maxConcurrentCalls: 1000 });
  client.start();
  await new Promise((r) => setTimeout(r, 300));
  // The gateway's request_headers event for a GET with a few browser headers (plugins/agents/filter.ts).
  const event = (cid: string) => ({
    correlation_id: cid,
    metadata: { correlation_id: cid, request_id: cid, client_ip: '127.0.0.1', client_port: 40000, server_name: '127.0.0.1', protocol: 'HTTP/1.1', tls_version: null, tls_cipher: null, route_id: 'agent', upstream_id: 'origin', timestamp: new Date().toISOString(), traceparent: null },
    method: 'GET',
    uri: '/agent?q=1',
    headers: { host: ['127.0.0.1:8080'], 'user-agent': ['Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0'], accept: ['text/html,application/xhtml+xml'], 'accept-language': ['en-US,en;q=0.5'], 'accept-encoding': ['gzip, deflate, br'] },
  });
  return { name, agent, call: (cid) => client.call(MessageType.RequestHeaders, cid, event(cid), { timeoutMs: 5000 }), close: () => client.close() };
}

let seq = 0;
async function round(side: Side, seconds: number): Promise<{ perSec: number; cpuUs: number; agentUs: number }> {
  const until = performance.now() + seconds * 1000;
  const loop = async () => {
    let n = 0;
    while (performance.now() < until) {
      await side.call(`${side.name}-${++seq}`);
      n++;
    }
    return n;
  };
  const batch = Number(values.batch);
  const lockstep = async () => {
    let n = 0;
    while (performance.now() < until) {
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < batch; i++) calls.push(side.call(`${side.name}-${++seq}`));
      await Promise.all(calls);
      n += batch;
    }
    return [n];
  };
  const c0 = process.cpuUsage();
  const a0 = treeCpuNs(side.agent.pid!);
  const t0 = performance.now();
  const counts = batch > 0 ? await lockstep() : await Promise.all(Array.from({ length: Number(values.inflight) }, loop));
  const c = process.cpuUsage(c0);
  const agentNs = treeCpuNs(side.agent.pid!) - a0;
  const n = counts.reduce((a, b) => a + b, 0);
  return { perSec: n / ((performance.now() - t0) / 1000), cpuUs: (c.user + c.system) / n, agentUs: agentNs / 1000 / n };
}

const current = await startSide('current', REPO);
const baseline = values.baseline ? await startSide('baseline', resolve(values.baseline)) : undefined;
const duration = Number(values.duration);
// warm-up: both tiers up before anything counts
for (const s of [current, baseline]) if (s) await round(s, 2);
const ratios: number[] = [];
const agentRatios: number[] = [];
const rows: Record<string, number[]> = { current: [], baseline: [] };
const agentRows: Record<string, number[]> = { current: [], baseline: [] };
for (let p = 0; p < Number(values.pairs); p++) {
  const order = baseline ? (p % 2 === 0 ? [current, baseline] : [baseline, current]) : [current];
  const got: Record<string, { cpuUs: number; agentUs: number }> = {};
  for (const s of order) {
    const r = await round(s, duration);
    got[s.name] = r;
    rows[s.name]!.push(r.cpuUs);
    agentRows[s.name]!.push(r.agentUs);
    console.log(`[pair ${p + 1}] ${s.name.padEnd(8)} ${r.perSec.toFixed(0)} calls/s  client CPU ${r.cpuUs.toFixed(2)} µs/call  agent CPU ${r.agentUs.toFixed(2)} µs/call`);
  }
  if (baseline) {
    ratios.push(got.current!.cpuUs / got.baseline!.cpuUs);
    agentRatios.push(got.current!.agentUs / got.baseline!.agentUs);
  }
}
console.log(`\nclient CPU per call, median: current ${median(rows.current!).toFixed(2)} µs${baseline ? `, baseline ${median(rows.baseline!).toFixed(2)} µs` : ''}`);
console.log(`agent CPU per call, median: current ${median(agentRows.current!).toFixed(2)} µs${baseline ? `, baseline ${median(agentRows.baseline!).toFixed(2)} µs` : ''}`);
if (baseline) {
  for (const [what, rs] of [['client', ratios], ['agent', agentRatios]] as const) {
    const [lo, hi] = bootstrapMedianInterval(rs);
    console.log(`${what} CPU current/baseline ×${median(rs).toFixed(3)} (95% ${lo.toFixed(3)}-${hi.toFixed(3)}, n ${rs.length})`);
  }
}
for (const s of [current, baseline]) {
  if (!s) continue;
  await s.close();
  s.agent.kill('SIGTERM');
}
process.exit(0);
