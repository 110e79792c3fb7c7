// One upgraded connection after the 101: bytes relayed both ways with backpressure, either raw
// (frame boundaries only tracked, so a close frame can be injected cleanly) or through an
// inspector, frame by frame or message by message (fragments held until the last one; control
// frames pass in between), whose verdicts are applied in order per direction. Half-closes propagate;
// an error on either socket ends both; a session that is closed by the gateway (agent decision,
// protocol error, shutdown) sends close frames to both sides first.
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/registry.ts';
import { BoundaryTracker, CloseCode, FrameParser, FrameProtocolError, Opcode, closePayload, encodeFrame, opcodeName } from './frames.ts';
import type { TokenBucket } from '../server/token-bucket.ts';
import { MessageAssembler, MessageRate, frameUnit, type InspectUnit, type MessageInspection } from './messages.ts';

export type FrameVerdict = { action: 'allow' } | { action: 'drop' } | { action: 'close'; code: number; reason: string };

/** Decides about frames (or whole messages) of one session (agents). Calls for one direction never overlap. */
export interface FrameInspector {
  /** `index` counts the units asked about, per direction, from 0 */
  inspect(unit: InspectUnit, clientToServer: boolean, index: number): Promise<FrameVerdict>;
  /** the session is over (release correlation ids ...) */
  end(): void;
}

export interface SessionOptions {
  client: Duplex;
  upstream: Duplex;
  /** bytes the client sent after its request head / the upstream after its 101 */
  clientHead: Buffer;
  upstreamHead: Buffer;
  inspector: FrameInspector | undefined;
  /** the route's limits when inspecting (messageInspection): whole messages or frame by frame, bytes and fragments */
  limits: MessageInspection;
  metrics: Metrics;
  routeId: string;
  log: Logger;
  /** close with 1001 after this long without bytes in either direction (0 or undefined: never) */
  idleTimeoutMs?: number;
  /** the client's bucket of this route's messages, over all its sessions (none: trusted proxy, or off) */
  clientMessages?: TokenBucket;
}

/** Why the gateway closed a session (the `reason` label of sentinel_websocket_closed_by_gateway_total). */
export type CloseCause = 'idle' | 'going_away' | 'agent' | 'protocol' | 'too_big' | 'too_many_fragments' | 'message_rate' | 'client_message_rate' | 'inspection_error';

/** How long a socket may stay open after its peer side is gone or a close was sent. */
const LINGER_MS = 2000;

interface Direction {
  readonly c2s: boolean;
  readonly label: 'c2s' | 's2c';
  readonly src: Duplex;
  readonly dst: Duplex;
  bytes: number;
  readonly tracker: BoundaryTracker | undefined;
  readonly parser: FrameParser | undefined;
  /** whole-message inspection: holds the fragments of an open message */
  readonly assembler: MessageAssembler | undefined;
  readonly queue: InspectUnit[];
  busy: boolean;
  index: number;
  srcEnded: boolean;
}

export class WsSession {
  readonly done: Promise<{ clientToServer: number; serverToClient: number }>;
  private resolveDone!: (v: { clientToServer: number; serverToClient: number }) => void;
  private readonly c2s: Direction;
  private readonly s2c: Direction;
  private closing = false;
  /** why the gateway closed the session, when it did */
  closedBy: CloseCause | undefined;
  private open = 2;
  private readonly timers: NodeJS.Timeout[] = [];
  private lastActivity = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  /** the client's units, each an agent call (websocket-max-messages-per-second); none when relayed raw or unbounded */
  private readonly clientRate: MessageRate | undefined;

  constructor(private readonly o: SessionOptions) {
    this.done = new Promise((r) => (this.resolveDone = r));
    const inspect = o.inspector !== undefined;
    this.clientRate = inspect && o.limits.maxMessagesPerSecond > 0 ? new MessageRate(o.limits.maxMessagesPerSecond, o.clientMessages) : undefined;
    const dir = (c2s: boolean, src: Duplex, dst: Duplex): Direction => ({
      c2s,
      label: c2s ? 'c2s' : 's2c',
      src,
      dst,
      bytes: 0,
      tracker: inspect ? undefined : new BoundaryTracker(),
      parser: inspect
        ? new FrameParser({ maxFrameBytes: o.limits.maxFrameBytes, requireMask: c2s, maxFragments: o.limits.maxFragments, maxMessageBytes: o.limits.maxMessageBytes })
        : undefined,
      assembler: inspect && o.limits.wholeMessages ? new MessageAssembler() : undefined,
      queue: [],
      busy: false,
      index: 0,
      srcEnded: false,
    });
    this.c2s = dir(true, o.client, o.upstream);
    this.s2c = dir(false, o.upstream, o.client);
    for (const d of [this.c2s, this.s2c]) {
      d.src.on('data', (chunk: Buffer) => this.feed(d, chunk));
      d.src.on('end', () => {
        d.srcEnded = true;
        this.maybeEnd(d);
      });
      d.dst.on('drain', () => this.maybeResume(d));
    }
    for (const s of [o.client, o.upstream]) {
      s.on('error', () => this.destroy());
      s.once('close', () => this.onSocketClose(s));
    }
    // resume first: feeding the heads may pause a side again (frames waiting for a verdict)
    o.client.resume();
    o.upstream.resume();
    if (o.upstreamHead.length > 0) this.feed(this.s2c, o.upstreamHead);
    if (o.clientHead.length > 0) this.feed(this.c2s, o.clientHead);
    if (o.idleTimeoutMs) this.armIdle(o.idleTimeoutMs);
  }

  /** Closes the session with 1001 (shutdown / end of a reload's drain time). */
  goingAway(): void {
    this.closeBoth(CloseCode.GoingAway, 'Going away', 'going_away');
  }

  /**
   * One timer per session, not one reset per chunk: when it fires it checks the time of the last
   * bytes and sleeps again for the rest, or closes the session with 1001.
   */
  private armIdle(ms: number): void {
    const wait = this.lastActivity + ms - Date.now();
    if (wait > 0) {
      this.idleTimer = setTimeout(() => this.armIdle(ms), wait);
      this.idleTimer.unref();
      return;
    }
    this.o.log.info({ idleMs: ms }, 'websocket session idle; closing with 1001');
    this.closeBoth(CloseCode.GoingAway, 'Idle timeout', 'idle');
  }

  private feed(d: Direction, chunk: Buffer): void {
    if (this.closing) return;
    this.lastActivity = Date.now();
    d.bytes += chunk.length;
    if (!d.parser) {
      d.tracker!.push(chunk);
      if (!d.dst.write(chunk)) d.src.pause();
      return;
    }
    const queued = d.queue.length;
    try {
      for (const frame of d.parser.push(chunk)) {
        const unit = d.assembler ? d.assembler.push(frame) : frameUnit(frame);
        if (!unit) continue;
        // counted as parsed, before it is queued: one read of 10,000 tiny frames is refused at once
        const over = d.c2s && this.clientRate ? this.clientRate.take() : undefined;
        if (over) {
          this.o.log.info({ perSecond: this.o.limits.maxMessagesPerSecond, over }, 'websocket client over its message rate; closing the session');
          this.closeBoth(CloseCode.PolicyViolation, 'Message rate exceeded', over === 'session' ? 'message_rate' : 'client_message_rate');
          return;
        }
        d.queue.push(unit);
      }
    } catch (err) {
      if (!(err instanceof FrameProtocolError)) throw err;
      this.o.log.info({ err: err.message, direction: d.label }, 'invalid or oversized websocket framing; closing the session');
      const reason = err.kind === 'too_big' ? 'Message too big' : err.kind === 'too_many_fragments' ? 'Too many fragments' : 'Protocol error';
      this.closeBoth(err.closeCode, reason, err.kind);
      return;
    }
    // nothing complete yet (a partial frame, or fragments held): read on
    if (d.queue.length === queued) return;
    // Read no further while decisions are pending: frames keep their order and memory is bounded.
    d.src.pause();
    void this.pump(d);
  }

  private async pump(d: Direction): Promise<void> {
    if (d.busy) return;
    d.busy = true;
    const m = this.o.metrics;
    try {
      while (d.queue.length > 0 && !this.closing) {
        const unit = d.queue.shift()!;
        const opcode = opcodeName(unit.opcode) ?? 'unknown';
        const started = performance.now();
        let verdict: FrameVerdict;
        let cause: CloseCause = 'agent';
        try {
          verdict = await this.o.inspector!.inspect(unit, d.c2s, d.index++);
        } catch (err) {
          this.o.log.warn({ err: (err as Error).message }, 'websocket frame inspection failed');
          verdict = { action: 'close', code: CloseCode.InternalError, reason: 'Inspection failed' };
          cause = 'inspection_error';
        }
        m.websocketInspectionDuration.observe({ route: this.o.routeId }, (performance.now() - started) / 1000);
        const frames = unit.frames;
        for (const f of frames) m.websocketFrameSize.observe({ route: this.o.routeId, direction: d.label }, f.payload.length);
        // a reassembled message's decision is every one of its frames' (counted under the message's opcode)
        m.websocketFrames.inc({ route: this.o.routeId, direction: d.label, opcode, decision: verdict.action }, frames.length);
        if (frames.length > 1) m.websocketMessagesReassembled.inc({ route: this.o.routeId, direction: d.label, decision: verdict.action });
        if (this.closing) return;
        if (verdict.action === 'allow') {
          if (frames.length === 1) d.dst.write(frames[0]!.raw);
          else {
            // the fragments unchanged, byte for byte, in one write
            d.dst.cork();
            for (const f of frames) d.dst.write(f.raw);
            d.dst.uncork();
          }
        } else if (verdict.action === 'close') {
          this.closeBoth(verdict.code, verdict.reason, cause);
          return;
        }
      }
    } finally {
      d.busy = false;
    }
    this.maybeResume(d);
    this.maybeEnd(d);
  }

  private maybeResume(d: Direction): void {
    if (this.closing || d.busy || d.queue.length > 0 || d.dst.writableNeedDrain) return;
    d.src.resume();
  }

  /** The source ended: pass the half-close on once everything before it was forwarded. */
  private maybeEnd(d: Direction): void {
    if (!d.srcEnded || d.busy || d.queue.length > 0 || this.closing) return;
    if (d.dst.writableEnded) return;
    d.dst.end();
    // WebSocket has no use for a half-open connection (closing is in-band): the other direction
    // gets a bounded time to finish (a last close frame), then both sockets go.
    this.timers.push(setTimeout(() => this.destroy(), LINGER_MS));
  }

  /**
   * Close frames with `code` to both sides (the upstream's masked, as a client's must be), then
   * end both sockets. A side whose stream is mid-frame (raw relay) gets no frame, only the end.
   */
  private closeBoth(code: number, reason: string, cause?: CloseCause): void {
    if (this.closing) return;
    this.closing = true;
    this.closedBy = cause;
    clearTimeout(this.idleTimer);
    if (cause) this.o.metrics.websocketClosedByGateway.inc({ route: this.o.routeId, reason: cause });
    const payload = closePayload(code, reason);
    for (const d of [this.c2s, this.s2c]) {
      d.src.pause();
      d.queue.length = 0;
      // the frame goes to d.dst; the bytes already written there must end on a frame boundary
      const clean = d.tracker ? d.tracker.atBoundary : true;
      if (clean && !d.dst.writableEnded && !d.dst.destroyed) d.dst.write(encodeFrame({ opcode: Opcode.Close, payload, mask: d.c2s }));
      if (!d.dst.writableEnded) d.dst.end();
    }
    this.timers.push(setTimeout(() => this.destroy(), LINGER_MS));
  }

  private onSocketClose(s: Duplex): void {
    this.open--;
    if (this.open === 0) {
      for (const t of this.timers) clearTimeout(t);
      clearTimeout(this.idleTimer);
      this.o.inspector?.end();
      this.resolveDone({ clientToServer: this.c2s.bytes, serverToClient: this.s2c.bytes });
      return;
    }
    // The other side gets its end (already sent if this one ended cleanly) and a bounded linger.
    const other = s === this.o.client ? this.o.upstream : this.o.client;
    const d = other === this.o.upstream ? this.c2s : this.s2c;
    if (!d.busy && d.queue.length === 0 && !other.writableEnded) other.end();
    this.timers.push(setTimeout(() => other.destroy(), LINGER_MS));
  }

  private destroy(): void {
    this.o.client.destroy();
    this.o.upstream.destroy();
  }
}
