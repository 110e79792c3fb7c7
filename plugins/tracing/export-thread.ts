// The OTLP/HTTP transport in a worker thread (otlp-worker.ts runs one OtlpHttpTransport there per
// tracing generation). Why: on the request thread the exporter's undici requests (a POST about
// once a second at 1% sampling) share undici's code with the forwarder's, and one of its keyed
// stores stayed megamorphic for every forwarded request at any sampling rate above 0
// (docs/tracing.md, "Session 20" and "Session 21"). A worker has its own V8 isolate: its inline
// caches never mix with the forwarder's. The queue, batching, encoding and counters stay on the
// request thread; this side hands each encoded batch over (its bytes copied once into an
// ArrayBuffer that is transferred, not cloned) and turns the thread's answers into the queue's
// callbacks.
//
// One thread per process, started by the first generation that exports and kept (unreferenced)
// for the process's life: a reload's flush never waits for a thread to start, and generations
// come and go as transports inside it.
//
// Failure behaviour (a dead, slow or crashed export thread never slows or fails a request):
// sends beyond a transport's `maxInFlight` fail at once ("busy"); a thread that has not answered
// an export `timeoutMs + WEDGED_GRACE_MS` after it was handed over is terminated; a thread that
// exits or crashes fails every export in flight and is started again at the next send after a
// back-off (1 s, doubling up to 30 s, back to 1 s after an answer); sends meanwhile fail at once.
// Each such failure reaches the queue as an export failure (counted as export_failed).
import { Worker } from 'node:worker_threads';
import type { ExportTransport, OtlpHttpOptions, SendOutcome } from './otlp-http.ts';

/** request thread -> export thread, for transport `t` */
export type ToThread =
  | { readonly t: number; readonly open: OtlpHttpOptions }
  /** one batch (`sentAt`: epoch ms, export-timeout counts from there) */
  | { readonly t: number; readonly id: number; readonly body: Uint8Array; readonly sentAt: number }
  | { readonly t: number; readonly close: true }
  | { readonly t: number; readonly destroy: true };
/** export thread -> request thread: what came of batch `id` of transport `t`, or `t` closed */
export type FromThread = { readonly t: number; readonly id: number; readonly outcome: SendOutcome } | { readonly t: number; readonly closed: true };

/** A silent thread is terminated this long after an export's own timeout. */
export const WEDGED_GRACE_MS = 2000;
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;
/** The thread's JS heap bound: it holds a pool per generation and a few batches (bytes are off-heap). */
const HEAP_MB = 64;

/** Starts the export thread's program: the compiled .js next to this file, or the .ts through tsx. */
export type SpawnWorker = () => Worker;

export const spawnExportWorker: SpawnWorker = () => {
  const here = import.meta.url;
  // No inherited Node flags: a Worker refuses V8 flags such as the cluster workers' and the Helm
  // chart's --min-semi-space-size ("invalid execArgv flags": every export failed in production), and
  // module loaders are the thread's own (tsx registered below); V8 flags are process-wide anyway.
  const options = { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: HEAP_MB } };
  if (!here.endsWith('.ts')) return new Worker(new URL('./otlp-worker.js', here), options);
  // Running from the sources (tsx registered in this thread, by --import or by bin/launch.mjs's
  // register()): a worker does not inherit module hooks, so it registers tsx itself first.
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./otlp-worker.ts', here).href;
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { ...options, eval: true });
};

/** The worker and the transports it serves; restarts it (after a back-off) when it is gone. */
export class ExportThread {
  private worker: Worker | undefined;
  private readonly transports = new Map<number, ThreadTransport>();
  private nextTransport = 1;
  private restartAt = 0;
  private restartDelay = RESTART_MIN_MS;
  private lastExit = '';

  constructor(private readonly spawn: SpawnWorker = spawnExportWorker) {}

  /** The running worker (tests terminate it); undefined before the first start and after an exit. */
  get thread(): Worker | undefined {
    return this.worker;
  }

  attach(t: ThreadTransport): number {
    const id = this.nextTransport++;
    this.transports.set(id, t);
    this.worker?.postMessage({ t: id, open: t.options } satisfies ToThread);
    return id;
  }

  detach(id: number): void {
    this.transports.delete(id);
  }

  /** The worker, started if there is none and the back-off allows; else why not. */
  running(now: number): Worker | string {
    if (this.worker !== undefined) return this.worker;
    if (now < this.restartAt) return `the export thread exited (${this.lastExit}); restarting in ${Math.ceil(this.restartAt - now)} ms`;
    let worker: Worker;
    try {
      worker = this.spawn();
    } catch (err) {
      this.exited(undefined, `start failed: ${(err as Error).message}`);
      return `the export thread could not be started (${this.lastExit})`;
    }
    this.worker = worker;
    let reason = '';
    worker.on('message', (m: FromThread) => {
      this.restartDelay = RESTART_MIN_MS;
      this.transports.get(m.t)?.answer(m);
    });
    worker.on('error', (err) => (reason = err.message));
    worker.on('exit', (code) => this.exited(worker, reason || `exit code ${code}`));
    worker.unref(); // an idle export thread never keeps the process alive (after the listeners: adding one refs it again)
    // messages are delivered in order: every transport exists in the thread before its batches
    for (const [id, t] of this.transports) worker.postMessage({ t: id, open: t.options } satisfies ToThread);
    return worker;
  }

  /** Ends a worker that stopped answering (its exports fail; the next send starts another). */
  giveUp(reason: string): void {
    const w = this.worker;
    if (w === undefined) return;
    this.exited(w, reason);
    void w.terminate();
  }

  private exited(worker: Worker | undefined, reason: string): void {
    if (worker !== undefined && this.worker !== worker) return;
    this.worker = undefined;
    this.lastExit = reason;
    this.restartAt = performance.now() + this.restartDelay;
    this.restartDelay = Math.min(this.restartDelay * 2, RESTART_MAX_MS);
    for (const t of this.transports.values()) t.failAll(`the export thread exited (${reason})`);
  }
}

let shared: ExportThread | undefined;
/** The process's export thread (created on first use). */
export function sharedExportThread(): ExportThread {
  return (shared ??= new ExportThread());
}

interface Pending {
  readonly done: (outcome: SendOutcome) => void;
  readonly at: number;
}

/** One generation's exporter, its HTTP side in the export thread. */
export class ThreadTransport implements ExportTransport {
  private readonly id: number;
  private readonly pending = new Map<number, Pending>();
  private nextBatch = 1;
  private closing = false;
  /** close() waiting for the exports in flight, then for the thread to close the sockets */
  private readonly idle: (() => void)[] = [];
  private closed: (() => void) | undefined;

  constructor(
    readonly options: OtlpHttpOptions,
    /** exports handed over and not answered, at most (the queue sends one at a time, all at a flush) */
    private readonly maxInFlight: number,
    private readonly thread: ExportThread = sharedExportThread(),
  ) {
    this.id = thread.attach(this);
  }

  /** Starts the thread ahead of the first batch (its start-up is then not spent in an export's timeout). */
  start(): void {
    this.thread.running(performance.now());
  }

  send(body: Uint8Array, done: (outcome: SendOutcome) => void): void {
    if (this.closing) {
      done({ error: 'the exporter is closed' });
      return;
    }
    const now = performance.now();
    const oldest = this.pending.values().next().value; // Map order is send order
    if (oldest !== undefined && now - oldest.at > this.options.timeoutMs + WEDGED_GRACE_MS) this.thread.giveUp('it did not answer within export-timeout');
    if (this.pending.size >= this.maxInFlight) {
      done({ error: `the export thread is busy (${this.pending.size} exports in flight)` });
      return;
    }
    const worker = this.thread.running(now);
    if (typeof worker === 'string') {
      done({ error: worker });
      return;
    }
    const id = this.nextBatch++;
    // The batch is a view into the queue's chunk: its bytes go into an ArrayBuffer of their own,
    // which is transferred (moved to the thread, not cloned).
    const own = new Uint8Array(body);
    this.pending.set(id, { done, at: now });
    try {
      worker.postMessage({ t: this.id, id, body: own, sentAt: performance.timeOrigin + now } satisfies ToThread, [own.buffer]);
    } catch (err) {
      this.pending.delete(id);
      done({ error: `handing the batch to the export thread failed: ${(err as Error).message}` });
    }
  }

  /** A message of the thread for this transport. */
  answer(m: FromThread): void {
    if ('closed' in m) {
      this.closed?.();
      return;
    }
    const p = this.pending.get(m.id);
    if (p === undefined) return; // failed already (the thread was given up, or destroy())
    this.pending.delete(m.id);
    p.done(m.outcome);
    this.wakeIfIdle();
  }

  /** The thread is gone (or this transport destroyed): every export in flight fails. */
  failAll(error: string): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.done({ error });
    this.wakeIfIdle();
    this.closed?.(); // a close() waiting for the thread: its sockets went with it
  }

  private wakeIfIdle(): void {
    if (this.pending.size === 0) for (const wake of this.idle.splice(0)) wake();
  }

  /** Waits for the exports in flight, then has the thread close this transport's sockets. */
  async close(): Promise<void> {
    if (this.pending.size > 0) await new Promise<void>((wake) => this.idle.push(wake));
    if (this.closing) return;
    this.closing = true;
    const worker = this.thread.thread;
    if (worker !== undefined) {
      await new Promise<void>((resolve) => {
        this.closed = resolve;
        worker.postMessage({ t: this.id, close: true } satisfies ToThread);
      });
    }
    this.thread.detach(this.id);
  }

  /** Fails every export in flight now; the thread cuts this transport's sockets and retries. */
  async destroy(): Promise<void> {
    this.closing = true;
    this.failAll('the exporter was closed before the collector answered');
    this.thread.thread?.postMessage({ t: this.id, destroy: true } satisfies ToThread);
    this.thread.detach(this.id);
  }
}
