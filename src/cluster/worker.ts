// A cluster worker: the normal gateway (same listeners: node:cluster shares the sockets), driven
// by the primary over IPC for reload, shutdown and metrics. Signals are the primary's business.
import cluster from 'node:cluster';
import { ConfigError, formatDiagnostic } from '../config/diagnostics.ts';
import { startGateway, type Gateway, type GatewayOptions } from '../server/gateway.ts';
import { useClusterMetrics } from '../builtins/handlers.ts';
import { CLUSTER_WORKERS_ENV, isToWorker, type ToPrimary, type ToWorker } from './messages.ts';

function send(m: ToPrimary): void {
  if (process.connected) process.send!(m);
}

/** The cluster's size, from the primary (src/cluster/primary.ts forkWorker): gateway-wide bounds are split by it. */
function workerCount(): number {
  const n = Number(process.env[CLUSTER_WORKERS_ENV]);
  return Number.isInteger(n) && n > 0 ? n : 1;
}

export async function runWorker(opts: Pick<GatewayOptions, 'configPath' | 'logLevel'>): Promise<void> {
  const id = cluster.worker!.id;
  // SIGINT from a terminal reaches the whole process group and SIGHUP may too: the primary
  // coordinates both, so a worker ignores them (without a handler SIGHUP would kill it).
  process.on('SIGINT', () => undefined);
  process.on('SIGHUP', () => undefined);
  let gateway: Gateway;
  try {
    gateway = await startGateway({ ...opts, clusterWorker: { id, workers: workerCount() } });
  } catch (err) {
    if (err instanceof ConfigError) for (const d of err.diagnostics) console.error(formatDiagnostic(d));
    else console.error(`sentinel: worker ${id} failed to start: ${(err as Error).message}`);
    process.exit(1);
  }

  // The metrics builtin answers with the cluster-wide aggregate, which only the primary can build.
  let nextRequest = 0;
  const pending = new Map<number, { resolve(text: string): void; reject(err: Error): void; timer: NodeJS.Timeout }>();
  useClusterMetrics(
    () =>
      new Promise<string>((resolve, reject) => {
        const rid = nextRequest++;
        const timer = setTimeout(() => {
          pending.delete(rid);
          reject(new Error('the cluster primary did not answer the metrics request'));
        }, 10_000);
        pending.set(rid, { resolve, reject, timer });
        send({ type: 'sentinel:metrics-request', id: rid });
      }),
  );

  let stopping = false;
  const stop = (why: string) => {
    if (stopping) return;
    stopping = true;
    gateway.log.info({ reason: why }, 'worker draining');
    void gateway.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  // The primary stops workers with SIGTERM (a worker still starting has no handler yet and simply
  // dies). A worker sent SIGTERM by someone else drains the same way and the primary replaces it.
  process.on('SIGTERM', () => stop('SIGTERM'));

  process.on('message', (raw: unknown) => {
    if (!isToWorker(raw)) return;
    const m: ToWorker = raw;
    switch (m.type) {
      case 'sentinel:reload':
        gateway.reload().then(
          () => send({ type: 'sentinel:reload-result', id: m.id, ok: true }),
          (err: unknown) => send({ type: 'sentinel:reload-result', id: m.id, ok: false, error: (err as Error).message }),
        );
        break;
      case 'sentinel:metrics-snapshot':
        gateway.metrics.registry.getMetricsAsJSON().then(
          (metrics) => send({ type: 'sentinel:metrics-snapshot', id: m.id, metrics }),
          (err: unknown) => send({ type: 'sentinel:metrics-snapshot', id: m.id, error: (err as Error).message }),
        );
        break;
      case 'sentinel:metrics-text': {
        const p = pending.get(m.id);
        if (!p) break;
        pending.delete(m.id);
        clearTimeout(p.timer);
        if (m.text !== undefined) p.resolve(m.text);
        else p.reject(new Error(m.error ?? 'metrics aggregation failed'));
        break;
      }
    }
  });
  send({ type: 'sentinel:ready', listeners: gateway.config.listeners.map((l) => `${l.id}=${gateway.address(l.id).host}:${gateway.address(l.id).port}`) });
}
