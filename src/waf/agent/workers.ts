// sentinel-waf --workers N: a node:cluster primary that owns the agent socket and forks N engine
// processes behind it, so the WAF uses every core (one engine is one JS thread). The primary
// listens once; with round-robin scheduling it accepts each proxy connection and hands it to the
// next worker, so the proxy's connection pool (connections-per-agent) spreads over the workers.
// Connections are long-lived, so the primary is not on the per-request path. It loads no rules.
import cluster, { type Worker } from 'node:cluster';

import { removeStaleSocket } from '../../agent-sdk/index.ts';
import { DEFAULT_RESTART_POLICY, RestartPolicy, type RestartPolicyOptions } from '../../cluster/policy.ts';

/** What a worker tells the primary once its listener is up. */
export const WORKER_READY = 'sentinel-waf:ready';

export interface WafPrimaryOptions {
  workers: number;
  socketPath: string;
  restartPolicy?: RestartPolicyOptions;
  log?: (message: string) => void;
}

/** Runs the primary until SIGTERM/SIGINT (exit 0) or a crash loop / failed start-up (exit 1). */
export async function runWafPrimary(opts: WafPrimaryOptions): Promise<void> {
  const log = opts.log ?? ((m: string) => process.stderr.write(`sentinel-waf: ${m}\n`));
  await removeStaleSocket(opts.socketPath);
  // Round-robin: the primary accepts and passes each connection on. With SCHED_NONE every worker
  // would accept on the shared socket and the kernel could give a small pool to one worker.
  cluster.schedulingPolicy = cluster.SCHED_RR;
  const policy = new RestartPolicy(opts.restartPolicy ?? DEFAULT_RESTART_POLICY);
  const ready = new Set<number>();
  let state: 'starting' | 'running' | 'stopping' = 'starting';

  const exit = (code: number) => {
    void removeStaleSocket(opts.socketPath)
      .catch(() => undefined)
      .then(() => process.exit(code));
  };
  let stopCode = 0;
  const stopAll = (code: number) => {
    if (state === 'stopping') return;
    state = 'stopping';
    stopCode = code;
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
    if (alive.length === 0) return exit(code);
    for (const w of alive) w.process.kill('SIGTERM');
    setTimeout(() => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGKILL');
    }, 5000).unref();
  };

  cluster.on('message', (worker, m: unknown) => {
    if (m !== WORKER_READY) return;
    ready.add(worker.id);
    policy.onReady();
    if (state === 'starting' && ready.size === opts.workers) {
      state = 'running';
      log(`${opts.workers} workers listening on ${opts.socketPath}`);
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    const wasReady = ready.delete(worker.id);
    if (state === 'stopping') {
      if (Object.keys(cluster.workers ?? {}).length === 0) exit(stopCode);
      return;
    }
    if (state === 'starting' && !wasReady) {
      // A rule or config error fails every worker alike: stop instead of looping.
      log(`worker ${worker.process.pid} exited during start-up (code ${code}, signal ${signal}); stopping`);
      stopAll(code || 1);
      return;
    }
    const decision = policy.onDeath(Date.now(), wasReady);
    if (decision.action === 'give-up') {
      log(`worker ${worker.process.pid} died (code ${code}, signal ${signal}); ${decision.restarts} restarts in a row, giving up`);
      stopAll(1);
      return;
    }
    log(`worker ${worker.process.pid} died (code ${code}, signal ${signal}); replacing it in ${decision.delayMs} ms`);
    setTimeout(() => state !== 'stopping' && cluster.fork(), decision.delayMs);
  });
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  process.on('SIGTERM', () => stopAll(0));
  process.on('SIGINT', () => stopAll(0));
  for (let i = 0; i < opts.workers; i++) cluster.fork();
}
