// `agent "id" { in-process "sentinel-waf" }`: a known agent program run inside the gateway
// process instead of behind a Unix socket. The agent filter calls it through the same transport
// interface as a socket client (AgentTransport), so chains, failure modes, body inspection and
// metrics are unchanged; what goes away is the hop: no frame encoding, no socket write/read, no
// second process to schedule. Handlers run on the gateway's event loop (an engine call is ~1 ms
// of CPU, as it would be in the agent's own loop); with `worker-threads N` every gateway worker
// process has its own engine, so it uses every core. Replies go through parseAgentReply, the
// same validation as a socket agent's. Calls are batched per event-loop turn (see call()).
import { AgentCallError } from '../../src/agent-protocol/client.ts';
import { parseAgentReply, plainAllowReply, type AgentReply } from '../../src/agent-protocol/messages.ts';
import { allow, block, EVENT_HANDLERS, type AgentHandlers, type Decision, type EventContext } from '../../src/agent-sdk/index.ts';
import type { BreakerState } from '../../src/agent-protocol/agent-breaker.ts';
import type { CallOptions } from '../../src/agent-protocol/client.ts';
import type { ReplySink } from '../../src/agent-protocol/connection.ts';
import { LatencyStats } from '../../src/status/latency.ts';

/** What the agent filters need from an agent, over a socket (AgentClient) or in-process. */
export interface AgentTransport {
  readonly id: string;
  call(type: number, correlationId: string, payload: unknown, opts: CallOptions): Promise<AgentReply>;
  /** `call` without a promise: `sink` gets the reply or the error, once (possibly before this returns). */
  callInto(type: number, correlationId: string, payload: unknown, opts: CallOptions, sink: ReplySink): void;
  start(): void;
  /** Settles when the program can take calls; rejects when it failed to build (in-process only). */
  whenBuilt?(): Promise<void>;
  close(): Promise<void>;
  readonly openConnections: number;
  readonly pendingReplies: number;
  readonly load: { inUse: number; queued: number };
  /** for the status page (src/status) */
  readonly options: { readonly connections: number };
  readonly breaker: { state(now: number): BreakerState };
  readonly latency: LatencyStats;
}

/** `events`: the agent block's subscriptions (nothing else is ever sent to the program). */
type Program = (config: unknown, opts: { events: ReadonlySet<string> }) => AgentHandlers;

/** The programs `in-process` can name; loaded on first use (the WAF engine is large). */
const PROGRAMS: Record<string, () => Promise<Program>> = {
  'sentinel-waf': async () => (await import('../../src/waf/agent/in-process.ts')).createWafHandlers,
};

export const IN_PROCESS_PROGRAMS: readonly string[] = Object.keys(PROGRAMS);

const NEVER_ABORTED = new AbortController().signal;

/** A call waiting for the turn's batch. */
interface Queued {
  type: number;
  correlationId: string;
  payload: unknown;
  cancel: CallOptions['cancel'];
  sink: ReplySink;
}

export class InProcessAgent implements AgentTransport {
  private handlers: AgentHandlers | undefined;
  private failure: Error | undefined;
  private ready: Promise<void> | undefined;
  private running = 0;
  private closed = false;
  /** Calls made since the last batch ran (see call()). */
  private queue: Queued[] = [];
  /** One "connection": the program itself. No breaker: nothing between the filter and the handlers can fail apart from them. */
  readonly options = { connections: 1 };
  readonly breaker = { state: (): BreakerState => 'closed' };
  readonly latency = new LatencyStats();

  constructor(
    readonly id: string,
    private readonly program: string,
    private readonly config: unknown,
    private readonly events: ReadonlySet<string>,
    private readonly log: (message: string) => void = (m) => process.stderr.write(`${m}\n`),
  ) {}

  /** Loads the program and builds it (for the WAF: parses and compiles the rules, 1-2 s). */
  start(): void {
    this.ready ??= (async () => {
      const load = PROGRAMS[this.program];
      if (!load) throw new Error(`unknown in-process agent program "${this.program}" (known: ${IN_PROCESS_PROGRAMS.join(', ')})`);
      const make = await load();
      // Let the caller finish its own start-up before the synchronous build blocks the loop.
      await new Promise((r) => setImmediate(r));
      if (this.closed) return;
      this.handlers = make(this.config, { events: this.events });
    })().catch((err: unknown) => {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.log(`agent ${this.id}: in-process ${this.program} failed to start: ${this.failure.message}`);
    });
  }

  /** The build started by start(): the generation waits for it before it is served (filter.ready()). */
  async whenBuilt(): Promise<void> {
    this.start();
    await this.ready;
    if (this.failure) throw new Error(`agent ${this.id}: in-process ${this.program} failed to start: ${this.failure.message}`);
  }

  get openConnections(): number {
    return this.handlers && !this.closed ? 1 : 0;
  }

  get pendingReplies(): number {
    return this.running + this.queue.length;
  }

  get load(): { inUse: number; queued: number } {
    return { inUse: this.running, queued: this.queue.length };
  }

  /**
   * The program is not run inside call(): the call waits for a batch that runs every call made
   * during this event-loop turn back to back, from a setImmediate (after the turn's other I/O
   * callbacks: the requests parsed from the same poll). On one core the gateway then runs the
   * engine for a batch of requests, then their continuations (upstream calls, replies), as the
   * socket agent path does with its batched frames; called request by request, interleaved with
   * the gateway's own work, the same instructions cost ~1.2x the CPU (docs/waf.md, "The twentieth
   * session: the in-process path").
   */
  call(type: number, correlationId: string, payload: unknown, opts: CallOptions): Promise<AgentReply> {
    return new Promise<AgentReply>((resolve, reject) => this.callInto(type, correlationId, payload, opts, { resolve, reject }));
  }

  callInto(type: number, correlationId: string, payload: unknown, opts: CallOptions, sink: ReplySink): void {
    if (this.closed) return sink.reject(new AgentCallError('unavailable', `agent ${this.id} is closed`));
    if (opts.cancel?.cancelled) return sink.reject(new AgentCallError('cancelled', `agent ${this.id} call cancelled`));
    if (this.handlers) {
      if (this.queue.length === 0) setImmediate(this.runBatch);
      this.queue.push({ type, correlationId, payload, cancel: opts.cancel, sink });
      return;
    }
    if (this.failure) return sink.reject(new AgentCallError('unavailable', `agent ${this.id} (in-process ${this.program}) failed to start: ${this.failure.message}`));
    this.start();
    // Still building: wait for it, bounded by the call's timeout like a connection attempt.
    // (A generation is served only once its programs are built, so this is for calls made outside
    // one; a call that timed out is not run later, after its request was answered.)
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      sink.reject(new AgentCallError('timeout', `agent ${this.id} (in-process ${this.program}) not ready after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    void this.ready!.then(() => {
      clearTimeout(timer);
      if (!timedOut) this.callInto(type, correlationId, payload, opts, sink);
    });
  }

  /** Runs the queued calls in their order; a call cancelled or closed meanwhile is not run. */
  private readonly runBatch = (): void => {
    const batch = this.queue;
    this.queue = [];
    for (const q of batch) {
      if (this.closed || !this.handlers) q.sink.reject(new AgentCallError('unavailable', `agent ${this.id} is closed`));
      else if (q.cancel?.cancelled) q.sink.reject(new AgentCallError('cancelled', `agent ${this.id} call cancelled`));
      else this.invoke(this.handlers, q);
    }
  };

  async close(): Promise<void> {
    this.closed = true;
    this.handlers = undefined;
  }

  /**
   * The handler's decision as the filter's reply. A synchronous handler (the WAF answers every
   * event synchronously) settles the call at once; a plain allow (the usual answer) is the
   * validated reply the socket client gives for the template bytes, not toWire + parseAgentReply.
   * The event goes to the program as the filter built it (a RequestHeadersMessage: its `headers`
   * are made on first read; the program may read the raw headers): programs are ours and read
   * members, they do not copy or walk the event.
   */
  private invoke(handlers: AgentHandlers, q: Queued): void {
    const name = EVENT_HANDLERS[q.type as keyof typeof EVENT_HANDLERS];
    const handler = name ? (handlers[name] as ((event: unknown, ctx: EventContext) => Decision | undefined | void | Promise<Decision | undefined | void>) | undefined) : undefined;
    let result: Decision | undefined | void | Promise<Decision | undefined | void>;
    this.running += 1;
    try {
      result = handler ? handler(q.payload, { correlationId: q.correlationId, signal: NEVER_ABORTED }) : undefined;
    } catch (err) {
      this.running -= 1;
      this.settle(q, this.failed(handlers, q.correlationId, err));
      return;
    }
    if (!isThenable(result)) {
      this.running -= 1;
      this.settle(q, result ?? allow());
      return;
    }
    Promise.resolve(result).then(
      (d) => {
        this.running -= 1;
        this.settle(q, d ?? allow());
      },
      (err: unknown) => {
        this.running -= 1;
        this.settle(q, this.failed(handlers, q.correlationId, err));
      },
    );
  }

  private failed(handlers: AgentHandlers, correlationId: string, err: unknown): Decision {
    this.log(`agent ${this.id}: in-process handler failed for ${correlationId}: ${String(err)}`);
    return handlers.onHandlerError === 'allow' ? allow() : block(500, 'Agent error');
  }

  /** Settles the call with the decision's reply (a reply that does not validate rejects it, as on a socket). */
  private settle(q: Queued, d: Decision): void {
    let reply: AgentReply;
    try {
      reply = this.reply(q.correlationId, d);
    } catch (err) {
      // as before: the validation error itself, which the filter reads as an agent error
      q.sink.reject(err as AgentCallError);
      return;
    }
    q.sink.resolve(reply);
  }

  /** What the socket client returns for the decision's reply (the same validation); throws as it would. */
  private reply(correlationId: string, d: Decision): AgentReply {
    return d.isPlainAllow() ? plainAllowReply(correlationId) : parseAgentReply(d.toWire(correlationId));
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
