// The client for one agent: a small pool of v2 connections with reconnect + backoff, a per-agent
// concurrency limit (callers queue for a permit, bounded by their own timeout), a per-agent
// circuit breaker, and the timeout/cancel handling of every call.
import { CircuitBreaker, DEFAULT_BREAKER, type BreakerSettings, type BreakerState } from './agent-breaker.ts';
import { AgentCallError, AgentConnection, type ProtocolConnection, type ProtocolIssue, type ReplySink } from './connection.ts';
import { V1Connection } from './v1.ts';
import { MessageType } from './frames.ts';
import { CancelReason, type AgentReply, type HandshakeRequest } from './messages.ts';
import { Semaphore } from './semaphore.ts';
import { callDeadlines, type Deadline } from './deadlines.ts';
import { LatencyStats } from '../status/latency.ts';

export { AgentCallError, type AgentErrorKind } from './connection.ts';

export interface AgentClientOptions {
  id: string;
  socketPath: string;
  /** connections-per-agent */
  connections: number;
  connectTimeoutMs: number;
  /** upper bound of the reconnect backoff (first retries are faster) */
  reconnectIntervalMs: number;
  /** max-concurrent-calls: permits per agent */
  maxConcurrentCalls: number;
  breaker?: BreakerSettings;
  /** the agent's `config {}` block, pushed in a Configure event on every new connection */
  config?: unknown;
  proxyVersion?: string;
  pingIntervalMs?: number;
  maxFrameBytes?: number;
  /** 2 (default): v2 binary UDS; 1: legacy length-prefixed JSON, one call at a time per connection */
  protocolVersion?: 1 | 2;
  /** 'msgpack': also offer MessagePack in the v2 handshake (the agent chooses); default JSON only */
  encoding?: 'json' | 'msgpack';
  hooks?: AgentClientHooks;
}

export interface AgentClientHooks {
  protocolIssue?(agent: string, issue: ProtocolIssue): void;
  connections?(agent: string, open: number): void;
  reconnect?(agent: string, ok: boolean, error?: string): void;
  breaker?(agent: string, state: BreakerState): void;
}

/**
 * What can cancel a call: the request (its client went away) or a chain of agents (another agent
 * already decided). The request context is one as it is (cancelCode absent = client disconnect),
 * so a call needs no AbortSignal: on Node 20 an AbortController per request costs more than the
 * rest of the request context together.
 */
export interface CallCanceller {
  readonly cancelled: boolean;
  /** the protocol's cancel code (CancelReason) sent to the agent; absent: ClientDisconnect */
  readonly cancelCode?: number;
  /** `listener` runs once when cancelled (at once if it already is) */
  onCancel(listener: () => void): void;
  offCancel(listener: () => void): void;
}

/** A CallCanceller of its own (the calls of one agent chain). */
export class CancelScope implements CallCanceller {
  cancelled = false;
  cancelCode: number = CancelReason.ClientDisconnect;
  private listeners: (() => void)[] = [];

  cancel(code: number): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.cancelCode = code;
    const ls = this.listeners;
    this.listeners = [];
    for (const l of ls) l();
  }

  onCancel(listener: () => void): void {
    if (this.cancelled) listener();
    else this.listeners.push(listener);
  }

  offCancel(listener: () => void): void {
    const i = this.listeners.indexOf(listener);
    if (i >= 0) this.listeners.splice(i, 1);
  }
}

export interface CallOptions {
  timeoutMs: number;
  /** cancels the call: the client went away, or another agent already decided */
  cancel?: CallCanceller;
}

interface Slot {
  conn: ProtocolConnection | undefined;
  connecting: Promise<ProtocolConnection> | undefined;
  failures: number;
  nextAttemptAt: number;
  timer: NodeJS.Timeout | undefined;
}

export class AgentClient {
  readonly breaker: CircuitBreaker;
  /** call latency as the status page shows it (src/status), kept with the client across reloads */
  readonly latency = new LatencyStats();
  private readonly semaphore: Semaphore;
  private readonly slots: Slot[];
  private closed = false;
  private configureSeq = 0;
  /** the connection the previous call went out on (see pick) */
  private lastPicked: ProtocolConnection | undefined;
  /** what a PendingCall needs of its client (one object per client, not per call) */
  private readonly host: CallHost;

  constructor(readonly options: AgentClientOptions) {
    this.semaphore = new Semaphore(options.maxConcurrentCalls);
    this.breaker = new CircuitBreaker(options.breaker ?? DEFAULT_BREAKER, (s) => options.hooks?.breaker?.(options.id, s));
    this.slots = Array.from({ length: Math.max(1, options.connections) }, () => ({ conn: undefined, connecting: undefined, failures: 0, nextAttemptAt: 0, timer: undefined }));
    this.host = { id: options.id, breaker: this.breaker, semaphore: this.semaphore, pick: () => this.pick(), connection: () => this.connection() };
  }

  get id(): string {
    return this.options.id;
  }

  /** Open connections now (warm-up); failures only schedule reconnects. */
  start(): void {
    for (const slot of this.slots) void this.connectSlot(slot).catch(() => undefined);
  }

  get openConnections(): number {
    return this.slots.filter((s) => s.conn?.alive).length;
  }

  /** Replies still awaited on open connections. */
  get pendingReplies(): number {
    return this.slots.reduce((n, s) => n + (s.conn?.inFlight ?? 0), 0);
  }

  /** Calls waiting for or holding a permit. */
  get load(): { inUse: number; queued: number } {
    return { inUse: this.semaphore.inUse, queued: this.semaphore.queued };
  }

  /**
   * Sends one event and waits for the agent's reply. Rejects with AgentCallError:
   * circuit_open, timeout, unavailable/connection_lost/protocol (agent error), cancelled.
   */
  call(type: number, correlationId: string, payload: unknown, opts: CallOptions): Promise<AgentReply> {
    return new Promise<AgentReply>((resolve, reject) => this.callInto(type, correlationId, payload, opts, { resolve, reject }));
  }

  /**
   * `call` without a promise: `sink` gets the reply or the AgentCallError, once (possibly before
   * this returns). The agent filter's one-agent path passes its own object, which settles the
   * request's promise straight from the reply's read (no call promise and no await in between).
   */
  callInto(type: number, correlationId: string, payload: unknown, opts: CallOptions, sink: ReplySink): void {
    if (this.closed) return sink.reject(new AgentCallError('unavailable', `agent ${this.id} client is closed`));
    const canceller = opts.cancel;
    if (canceller?.cancelled) return sink.reject(new AgentCallError('cancelled', `agent ${this.id} call cancelled`));
    // a closed circuit (the usual case) needs no clock
    if (!this.breaker.closed && !this.breaker.tryPass(Date.now())) return sink.reject(new AgentCallError('circuit_open', `agent ${this.id} circuit is open`));
    // The per-request hot path: one PendingCall object is the call's state, the connection's
    // reply sink, the deadline's target and the cancel listener's owner (no closure per step),
    // and when a permit and an open connection are at hand (the usual case) the event is written
    // synchronously, without promise hops in between.
    new PendingCall(this.host, type, correlationId, payload, canceller, sink).start(opts.timeoutMs);
  }

  /** Fire-and-forget event on any open connection (request_complete); never opens one. */
  notify(type: number, payload: unknown): boolean {
    const conn = this.pick();
    if (!conn) return false;
    conn.notify(type, payload);
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const slot of this.slots) {
      clearTimeout(slot.timer);
      slot.conn?.close();
      slot.conn = undefined;
    }
  }

  private pick(): ProtocolConnection | undefined {
    const last = this.lastPicked;
    let best: ProtocolConnection | undefined;
    let bestPaused: ProtocolConnection | undefined;
    for (const slot of this.slots) {
      const c = slot.conn;
      if (!c?.alive) continue;
      if (c.paused) {
        if (!bestPaused || c.inFlight < bestPaused.inFlight) bestPaused = c;
      } else if (!best || c.inFlight < best.inFlight) best = c;
    }
    // Calls made in one event-loop turn go out on the connection that already has frames waiting
    // for this turn's write: one write(2) for all of them, and one wake-up of the agent, instead
    // of one per connection. A burst larger than STICKY_SLACK calls moves on to the least loaded.
    if (best && last && last !== best && last.writePending && last.alive && !last.paused && last.inFlight - best.inFlight < STICKY_SLACK) return last;
    // A paused connection is used only when every connection is paused (better slow than failing).
    this.lastPicked = best ?? bestPaused;
    return this.lastPicked;
  }

  private connection(): Promise<ProtocolConnection> {
    const conn = this.pick();
    if (conn) return Promise.resolve(conn);
    const connecting = this.slots.find((s) => s.connecting)?.connecting;
    if (connecting) return connecting;
    const now = Date.now();
    const ready = this.slots.find((s) => !s.conn && now >= s.nextAttemptAt);
    if (ready) return this.connectSlot(ready);
    return Promise.reject(new AgentCallError('unavailable', `agent ${this.id} is unavailable (reconnecting)`));
  }

  private connectSlot(slot: Slot): Promise<ProtocolConnection> {
    if (slot.connecting) return slot.connecting;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    const attempt = (async () => {
      const onProtocolIssue = (issue: ProtocolIssue) => this.options.hooks?.protocolIssue?.(this.id, issue);
      const conn: ProtocolConnection =
        this.options.protocolVersion === 1
          ? new V1Connection({ socketPath: this.options.socketPath, connectTimeoutMs: this.options.connectTimeoutMs, onProtocolIssue })
          : new AgentConnection({
              socketPath: this.options.socketPath,
              connectTimeoutMs: this.options.connectTimeoutMs,
              handshake: this.handshake(),
              pingIntervalMs: this.options.pingIntervalMs ?? 0,
              ...(this.options.maxFrameBytes ? { maxFrameBytes: this.options.maxFrameBytes } : {}),
              onProtocolIssue,
            });
      await conn.open();
      if (this.options.config !== undefined) await this.configure(conn);
      return conn;
    })();
    slot.connecting = attempt;
    attempt.then(
      (conn) => {
        slot.connecting = undefined;
        if (this.closed) {
          conn.close();
          return;
        }
        slot.conn = conn;
        slot.failures = 0;
        this.options.hooks?.reconnect?.(this.id, true);
        this.options.hooks?.connections?.(this.id, this.openConnections);
        conn.onClose(() => {
          if (slot.conn === conn) slot.conn = undefined;
          this.options.hooks?.connections?.(this.id, this.openConnections);
          this.scheduleReconnect(slot);
        });
      },
      (err: unknown) => {
        slot.connecting = undefined;
        slot.failures += 1;
        this.options.hooks?.reconnect?.(this.id, false, (err as Error).message);
        this.scheduleReconnect(slot);
      },
    );
    return attempt;
  }

  /** Exponential backoff from 50 ms, capped at reconnect-interval-ms. */
  private scheduleReconnect(slot: Slot): void {
    if (this.closed || slot.timer) return;
    const delay = slot.failures === 0 ? 0 : Math.min(this.options.reconnectIntervalMs, 50 * 2 ** (slot.failures - 1));
    slot.nextAttemptAt = Date.now() + delay;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (!this.closed && !slot.conn) void this.connectSlot(slot).catch(() => undefined);
    }, delay);
    slot.timer.unref();
  }

  private async configure(conn: ProtocolConnection): Promise<void> {
    const correlationId = `configure-${this.id}-${++this.configureSeq}`;
    const timer = setTimeout(() => conn.close(), this.options.connectTimeoutMs);
    try {
      const reply = await conn.request(MessageType.Configure, correlationId, {
        correlation_id: correlationId,
        agent_id: this.id,
        config: this.options.config,
        config_version: null,
      });
      if (reply.decision.kind === 'block') {
        conn.close();
        throw new AgentCallError('rejected', `agent ${this.id} rejected its configuration`);
      }
    } catch (err) {
      conn.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private handshake(): HandshakeRequest {
    return {
      supported_versions: [2],
      proxy_id: 'sentinel-proxy',
      proxy_version: this.options.proxyVersion ?? '0.1.0',
      config: null,
      supported_encodings: this.options.encoding === 'msgpack' ? ['json', 'msgpack'] : ['json'],
    };
  }
}

interface CallHost {
  readonly id: string;
  readonly breaker: CircuitBreaker;
  readonly semaphore: Semaphore;
  pick(): ProtocolConnection | undefined;
  connection(): Promise<ProtocolConnection>;
}

/**
 * One call in flight. Settles once: a reply, a failure from the connection, the deadline, or the
 * canceller. Once settled it lets go of everything of the request (event, canceller, listener,
 * promise functions): a call is short-lived, and one that a scavenge happens to find alive must
 * not carry the request's objects into old space with it.
 */
class PendingCall implements ReplySink {
  private settled = false;
  /** holds a permit taken with tryAcquire (given back with semaphore.release) */
  private permit = false;
  /** the release function of a permit that was queued for */
  private releaseQueued: (() => void) | undefined;
  private waiting: { cancel(): void } | undefined;
  private conn: ProtocolConnection | undefined;
  private deadline: Deadline | undefined;
  private cancelListener: (() => void) | undefined;
  private timeoutMs = 0;

  constructor(
    private readonly host: CallHost,
    private readonly type: number,
    private readonly correlationId: string,
    private payload: unknown,
    private canceller: CallCanceller | undefined,
    /** who gets the outcome (the caller's); dropped when settled */
    private out: ReplySink | undefined,
  ) {}

  start(timeoutMs: number): void {
    this.timeoutMs = timeoutMs;
    this.deadline = callDeadlines.add(timeoutMs, this);
    const canceller = this.canceller;
    if (canceller) {
      this.cancelListener = () => this.fail(new AgentCallError('cancelled', `agent ${this.host.id} call cancelled`), this.canceller?.cancelCode ?? CancelReason.ClientDisconnect);
      canceller.onCancel(this.cancelListener);
      if (this.settled) return;
    }
    const host = this.host;
    if (host.semaphore.tryAcquire()) {
      this.permit = true;
      const c = host.pick();
      if (c) this.sendOn(c);
      else host.connection().then((c) => this.sendOn(c), (err: unknown) => this.reject(err));
      return;
    }
    const permit = host.semaphore.take();
    this.waiting = permit;
    permit.ready
      .then((r) => {
        this.waiting = undefined;
        if (this.settled) return r();
        this.releaseQueued = r;
        return host.connection().then((c) => this.sendOn(c));
      })
      .catch((err: unknown) => this.reject(err));
  }

  private sendOn(c: ProtocolConnection): void {
    if (this.settled) return;
    this.conn = c;
    const payload = this.payload;
    this.payload = undefined; // encoded now (v2); v1 keeps its own reference while it waits
    if (c.sendTo) c.sendTo(this.type, this.correlationId, payload, this);
    else c.request(this.type, this.correlationId, payload).then((r) => this.resolve(r), (err: unknown) => this.reject(err));
  }

  /** The agent's reply (ReplySink). */
  resolve(reply: AgentReply): void {
    if (this.settled) return;
    const out = this.out!;
    this.finish();
    this.host.breaker.onSuccess();
    out.resolve(reply);
  }

  /** A failure from the connection or the way to it (ReplySink). */
  reject(err: unknown): void {
    this.fail(toCallError(err));
  }

  /** The deadline (DeadlineQueue target). */
  onDeadline(): void {
    this.fail(new AgentCallError('timeout', `agent ${this.host.id} timed out after ${this.timeoutMs} ms`), CancelReason.Timeout);
  }

  private fail(error: AgentCallError, cancelReason?: number): void {
    if (this.settled) return;
    const out = this.out!;
    const conn = this.conn;
    this.finish();
    if (conn && cancelReason !== undefined) conn.cancel(this.correlationId, cancelReason);
    if (error.kind === 'cancelled' || error.kind === 'rejected') this.host.breaker.onNeutral();
    else this.host.breaker.onFailure(Date.now());
    out.reject(error);
  }

  /** Settles: stops the deadline, leaves the canceller and the permit queue, gives the permit back, and drops every reference to the request. */
  private finish(): void {
    this.settled = true;
    this.deadline?.cancel();
    this.deadline = undefined;
    if (this.canceller && this.cancelListener) this.canceller.offCancel(this.cancelListener);
    this.canceller = undefined;
    this.cancelListener = undefined;
    this.waiting?.cancel();
    this.waiting = undefined;
    if (this.permit) {
      this.permit = false;
      this.host.semaphore.release();
    }
    this.releaseQueued?.();
    this.releaseQueued = undefined;
    this.payload = undefined;
    this.conn = undefined;
    this.out = undefined;
  }
}

/** How many more calls in flight than the least loaded connection a batching connection may take. */
const STICKY_SLACK = 32;

function toCallError(err: unknown): AgentCallError {
  if (err instanceof AgentCallError) return err;
  return new AgentCallError('unavailable', (err as Error)?.message ?? String(err));
}
