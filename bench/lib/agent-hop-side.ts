// One "side" of the agent-hop benches (bench/agent-hop.ts, bench/ab.ts): a compiled gateway from
// one checkout serving `/pass` (no filter) and `/agent` (one allow-all agent on request headers,
// v2 UDS, fail-closed) to a shared origin, and that checkout's own SDK agent. Two sides from two
// checkouts give a same-run before/after.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildSentinel } from './targets.ts';
import { originNginxConf, writeOriginFiles } from './configs.ts';
import { freePort, spawnPinned, waitReady, type Proc } from './processes.ts';

export interface HopSide {
  name: string;
  gateway: Proc;
  agent: Proc;
  port: number;
}

export interface HopSideOptions {
  /** a fresh directory for this side's files (config, agent module, socket) */
  dir: string;
  originPort: number;
  /** CPU for the gateway (null: unpinned) */
  gatewayCpu: number | null;
  /** CPU for the agent (null: unpinned) */
  agentCpu: number | null;
  /** directory for --cpu-prof profiles of both processes */
  profileDir?: string;
  /** a command the gateway runs under, e.g. ['valgrind', '--tool=callgrind', ...] */
  wrap?: readonly string[];
  /** how long start-up may take (a wrapped gateway is slow) */
  readyMs?: number;
  /** node flags for the gateway, e.g. ['--predictable-gc-schedule'] */
  nodeFlags?: readonly string[];
  /** the agent's timeout-ms (default 1000; a gateway under valgrind needs far more) */
  agentTimeoutMs?: number;
  /** OpenTelemetry tracing on the gateway: OTLP/HTTP to `endpoint` at `rate` (bench/ab.ts --tracing) */
  tracing?: { endpoint: string; rate: number; /** more tracing settings, KDL (`scheduled-delay "3600s"; ...`) */ extra?: string };
  /** the access log on, JSON lines to this file (bench/v8-state.ts --access-log) */
  accessLogFile?: string;
}

export async function startHopSide(name: string, root: string, o: HopSideOptions): Promise<HopSide> {
  // A build directory of this run's own (<root>/.tmp/bench/dist-<pid>, removed at exit): a
  // baseline worktree is shared by several helpers' runs, and one run's rebuild of the shared
  // dist must not pull files from under another run's gateway.
  const entry = await buildSentinel(root, { ownDir: true });
  const dist = resolve(entry, '..', '..', '..');
  const dir = o.dir;
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'agent.sock');
  const agentFile = join(dir, 'agent.mjs');
  writeFileSync(
    agentFile,
    `import { runAgent, allow } from ${JSON.stringify(join(dist, 'src', 'agent-sdk', 'index.js'))};
await runAgent({ socketPath: ${JSON.stringify(socket)}, name: 'bench-allow', onRequestHeaders: () => allow() });
process.stdout.write('listening\\n');
process.on('SIGTERM', () => process.exit(0));
`,
  );
  const prof = (what: string) => (o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', resolve(o.profileDir), '--cpu-prof-name', `${name}-${what}.cpuprofile`] : []);
  const agent = spawnPinned(`${name} agent`, o.agentCpu, process.execPath, [...prof('agent'), agentFile], { cwd: root });
  await new Promise<void>((ok, fail) => {
    agent.child.stdout!.on('data', (c: Buffer) => c.toString().includes('listening') && ok());
    void agent.done.then(() => fail(new Error(`${name} agent exited: ${agent.output()}`)));
  });
  const port = await freePort();
  const metricsPort = await freePort();
  const config = `system { worker-threads 1 }
listeners { listener "http" { address "127.0.0.1:${port}" } }
agents { agent "allow" { unix-socket "${socket}"; events "request_headers"; timeout-ms ${o.agentTimeoutMs ?? 1000} } }
filters { filter "allow" { type "agent"; agent "allow"; failure-mode "closed" } }
routes {
  route "agent" { priority "high"; matches { path-prefix "/agent" }; upstream "origin"; filters "allow" }
  route "pass" { matches { path-prefix "/" }; upstream "origin" }
}
upstreams { upstream "origin" { target "127.0.0.1:${o.originPort}" } }
observability { logging { level "warn"; access-log { ${o.accessLogFile ? `file "${o.accessLogFile}"` : 'enabled #false'} } }; metrics { address "127.0.0.1:${metricsPort}" }${o.tracing ? `; tracing { backend "otlp" { endpoint "${o.tracing.endpoint}" }; sampling-rate ${o.tracing.rate}${o.tracing.extra ? `; ${o.tracing.extra}` : ''} }` : ''} }
`;
  writeFileSync(join(dir, 'gw.kdl'), config);
  const [cmd, ...pre] = o.wrap?.length ? [...o.wrap, process.execPath] : [process.execPath];
  const gateway = spawnPinned(`${name} gateway`, o.gatewayCpu, cmd!, [...pre, ...(o.nodeFlags ?? []), ...prof('gateway'), entry, 'run', '-c', join(dir, 'gw.kdl')], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'production' },
  });
  await waitReady(gateway, port, '/agent', o.readyMs ?? 30_000);
  return { name, gateway, agent, port };
}

/** The nginx origin both sides forward to, pinned to CPU 1, in `dir`/origin; with its port. */
export async function startHopOrigin(dir: string): Promise<{ port: number; proc: Proc }> {
  const port = await freePort();
  const originDir = join(dir, 'origin');
  mkdirSync(originDir);
  writeOriginFiles(originDir);
  writeFileSync(join(originDir, 'nginx.conf'), originNginxConf(port, originDir));
  const origin = spawnPinned('origin', 1, 'nginx', ['-e', 'stderr', '-c', join(originDir, 'nginx.conf'), '-p', originDir]);
  await new Promise((r) => setTimeout(r, 300));
  if (origin.exited()) throw new Error(`nginx failed: ${origin.output()}`);
  return { port, proc: origin };
}
