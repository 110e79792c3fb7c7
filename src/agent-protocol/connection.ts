// One proxy -> agent connection over a Unix socket (protocol v2): handshake, then many events in
// flight, replies matched by correlation id (audit.custom.correlation_id), ping/pong liveness,
// cancel. Anything the agent sends that cannot be trusted is counted and handled locally:
// a broken frame or undecodable JSON drops the connection (its callers fail fast instead of
// waiting for a timeout); a reply for an unknown correlation id is ignored.
import { connect, type OnReadOpts, type Socket } from 'node:net';
import { FrameDecoder, FrameError, FrameWriter, MAX_FRAME_BYTES, MessageType, encodeFrame, isKnownMessageType, parseJsonPayload, parsePayload, type Encoding } from './frames.ts';
import { CancelReason, ProtocolError, parseAgentReply, plainAllowCorrelationId, plainAllowReply, type AgentReply, type HandshakeRequest, type HandshakeResponse } from './messages.ts';

export type AgentErrorKind = 'circuit_open' | 'timeout' | 'unavailable' | 'connection_lost' | 'protocol' | 'cancelled' | 'rejected';

export class AgentCallError extends Error {
  constructor(
    readonly kind: AgentErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export type ProtocolIssue = 'oversized_frame' | 'zero_length_frame' | 'stalled_frame' | 'bad_json' | 'bad_response' | 'unknown_type' | 'unexpected_type' | 'unmatched_reply' | 'bad_handshake';

/** What the client's pool needs from a connection, whatever the protocol version (v2 here, v1 in v1.ts). */
export interface ProtocolConnection {
  readonly alive: boolean;
  /** calls awaiting a reply (or queued) on this connection */
  readonly inFlight: number;
  readonly paused: boolean;
  /** frames queued for this event-loop turn's write: a call sent now shares that write */
  readonly writePending: boolean;
  open(): Promise<unknown>;
  request(type: number, correlationId: string, payload: unknown): Promise<AgentReply>;
  /**
   * `request` without a promise (the client's hot path): `onReply` or `onFailure` is called once,
   * `onFailure` possibly before this returns (closed connection, id in flight, encode failure).
   */
  send?(type: number, correlationId: string, payload: unknown, onReply: (reply: AgentReply) => void, onFailure: (err: AgentCallError) => void): void;
  /** `send` with one object as both callbacks (no closures per call): the client's PendingCall. */
  sendTo?(type: number, correlationId: string, payload: unknown, sink: ReplySink): void;
  cancel(correlationId: string, reason?: number): void;
  notify(type: number, payload: unknown): void;
  close(): void;
  onClose(listener: () => void): void;
}

export interface ConnectionOptions {
  socketPath: string;
  connectTimeoutMs: number;
  handshake: HandshakeRequest;
  maxFrameBytes?: number;
  /** ping interval; a ping unanswered by the next tick drops the connection (0 = off) */
  pingIntervalMs?: number;
  onProtocolIssue?: (issue: ProtocolIssue) => void;
}

/** Who receives a call's outcome: exactly one of the two, once (the connection forgets it first). */
export interface ReplySink {
  resolve(reply: AgentReply): void;
  reject(err: AgentCallError): void;
}

/** A socket being opened by `openAgentSocket`. */
export interface SocketOpening {
  readonly socket: Socket;
  /** Fails the opening once (a no-op after it settled): the caller's onFail shuts down and rejects. */
  fail(err: AgentCallError): void;
  /** Settles it as open: stops the deadline, swaps the setup listeners for the steady-state ones. */
  established(): void;
}

/**
 * Opens an agent's Unix socket for either protocol version: one deadline (`timeoutMs`) covers the
 * connect and any setup that follows (the v2 handshake); a socket error or the deadline fails it
 * once; `established()` moves the socket to its steady state, where data goes to `onData` and an
 * error or close is `onLost`.
 */
export function openAgentSocket(o: {
  socketPath: string;
  timeoutMs: number;
  /** what timed out, for the message: "connect", "connect/handshake" */
  phase: string;
  onFail(err: AgentCallError): void;
  /** steady-state data as 'data' events; absent when the socket is read through `onread` */
  onData?(chunk: Buffer): void;
  onLost(err: AgentCallError): void;
  /** read into this buffer instead of the stream layer (net's `onread`; no 'data' events then) */
  onread?: OnReadOpts;
}): SocketOpening {
  const socket = o.onread ? connect({ path: o.socketPath, onread: o.onread }) : connect(o.socketPath);
  let settled = false;
  const fail = (err: AgentCallError): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    o.onFail(err);
  };
  const timer = setTimeout(() => fail(new AgentCallError('unavailable', `agent ${o.phase} timed out`)), o.timeoutMs);
  socket.once('error', (err) => fail(new AgentCallError('unavailable', `agent socket error: ${err.message}`)));
  return {
    socket,
    fail,
    established() {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      socket.removeAllListeners('data');
      if (o.onData) socket.on('data', o.onData);
      socket.on('error', () => o.onLost(new AgentCallError('connection_lost', 'agent connection error')));
      socket.on('close', () => o.onLost(new AgentCallError('connection_lost', 'agent connection closed')));
    },
  };
}

/** Size of each v2 connection's read buffer; a longer frame is assembled across reads by the decoder. */
export const READ_BUFFER_BYTES = 64 * 1024;

export class AgentConnection implements ProtocolConnection {
  private socket: Socket | undefined;
  /** events, cancels and pongs: batched per event-loop turn */
  private writer: FrameWriter | undefined;
  private readonly decoder: FrameDecoder;
  /** where the agent's bytes are read (net's `onread`): no Readable push/'data' emit and no new buffer per read */
  private readonly readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  /** the handshake's reader until it succeeds, then the frames' */
  private reader: ((buf: Buffer, bytes: number) => void) | undefined;
  private readonly pending = new Map<string, ReplySink>();
  private closed = false;
  private readonly closeListeners: (() => void)[] = [];
  private pingTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;
  private pingSequence = 0;
  private awaitingPong = false;
  /** the agent asked us to pause (flow control) or reported draining/unhealthy */
  paused = false;
  capabilities: HandshakeResponse['capabilities'] | undefined;
  /** payload encoding after the handshake (what the agent chose among those we offered) */
  encoding: Encoding = 'json';

  constructor(private readonly options: ConnectionOptions) {
    this.decoder = new FrameDecoder(options.maxFrameBytes ?? MAX_FRAME_BYTES);
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get alive(): boolean {
    return !this.closed && this.socket !== undefined;
  }

  get writePending(): boolean {
    return this.writer?.pending ?? false;
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  /** Connects and performs the JSON handshake; rejects (and cleans up) on any failure. */
  open(): Promise<HandshakeResponse> {
    return new Promise((resolve, reject) => {
      const opening = openAgentSocket({
        socketPath: this.options.socketPath,
        timeoutMs: this.options.connectTimeoutMs,
        phase: 'connect/handshake',
        onFail: (err) => {
          this.shutdown(err);
          reject(err);
        },
        onLost: (err) => this.shutdown(err),
        onread: { buffer: this.readBuffer, callback: this.onRead },
      });
      const { socket, fail } = opening;
      socket.once('close', () => fail(new AgentCallError('unavailable', 'agent closed the connection during the handshake')));
      socket.once('connect', () => socket.write(encodeFrame(MessageType.HandshakeRequest, this.options.handshake)));
      this.socket = socket;
      this.writer = new FrameWriter(socket);
      this.reader = (buf, bytes) => {
        let frames;
        try {
          // copied: the frames after the handshake's are visited below, and the handshake is once per connection
          frames = this.decoder.push(Buffer.from(buf.subarray(0, bytes)));
        } catch (err) {
          this.options.onProtocolIssue?.(err instanceof FrameError && err.kind === 'zero_length' ? 'zero_length_frame' : 'oversized_frame');
          fail(new AgentCallError('protocol', 'bad frame during the handshake'));
          return;
        }
        if (frames.length === 0) return;
        const [first, ...rest] = frames;
        const body = parseJsonPayload(first!.payload) as Partial<HandshakeResponse> | undefined;
        if (first!.type !== MessageType.HandshakeResponse || typeof body !== 'object' || body === null || body.success !== true || body.protocol_version !== 2) {
          this.options.onProtocolIssue?.('bad_handshake');
          const why = typeof body === 'object' && body !== null && typeof body.error === 'string' ? `: ${body.error}` : '';
          fail(new AgentCallError('protocol', `agent handshake failed${why}`));
          return;
        }
        // Absent = JSON (agents that predate encodings); anything we did not offer is refused.
        const chosen = body.encoding ?? 'json';
        if ((chosen !== 'json' && chosen !== 'msgpack') || (chosen !== 'json' && !this.options.handshake.supported_encodings.includes(chosen))) {
          this.options.onProtocolIssue?.('bad_handshake');
          fail(new AgentCallError('protocol', `agent chose encoding ${JSON.stringify(chosen)}, which was not offered`));
          return;
        }
        this.encoding = chosen;
        this.reader = this.onData;
        opening.established();
        this.capabilities = body.capabilities;
        this.startPing();
        for (const frame of rest) this.visitFrame(frame.type, frame.payload, 0, frame.payload.length);
        resolve(body as HandshakeResponse);
      };
    });
  }

  /** Sends an event and resolves with the agent's reply for `correlationId`. */
  request(type: number, correlationId: string, payload: unknown): Promise<AgentReply> {
    return new Promise((resolve, reject) => this.send(type, correlationId, payload, resolve, reject));
  }

  send(type: number, correlationId: string, payload: unknown, onReply: (reply: AgentReply) => void, onFailure: (err: AgentCallError) => void): void {
    this.sendTo(type, correlationId, payload, { resolve: onReply, reject: onFailure });
  }

  sendTo(type: number, correlationId: string, payload: unknown, sink: ReplySink): void {
    if (!this.alive) return sink.reject(new AgentCallError('connection_lost', 'agent connection is closed'));
    if (this.pending.has(correlationId)) return sink.reject(new AgentCallError('rejected', `correlation id ${correlationId} already in flight`));
    // Encode before registering: a payload that cannot be serialised (a BigInt, a cycle) fails
    // this call only, and leaves no pending entry behind to occupy the id and inflate inFlight.
    try {
      this.writer!.writeMessage(type, payload, this.encoding);
    } catch (err) {
      return sink.reject(new AgentCallError('unavailable', `agent event could not be encoded: ${(err as Error)?.message ?? String(err)}`));
    }
    this.pending.set(correlationId, sink);
  }

  /** Forgets a pending call (timeout, client gone, another agent blocked) and tells the agent. */
  cancel(correlationId: string, reason: number = CancelReason.Unspecified): void {
    const p = this.pending.get(correlationId);
    if (!p) return;
    this.pending.delete(correlationId);
    if (this.alive) this.writer!.writeMessage(MessageType.Cancel, { correlation_id: correlationId, reason, timestamp_ms: Date.now() }, this.encoding);
  }

  /** Fire-and-forget message (no reply expected or wanted). */
  notify(type: number, payload: unknown): void {
    if (this.alive) this.writer!.writeMessage(type, payload, this.encoding);
  }

  close(): void {
    this.shutdown(new AgentCallError('connection_lost', 'agent connection closed by the proxy'));
  }

  /** net's `onread` callback: `bytes` of the agent's were read into `buf` (this.readBuffer), which the next read overwrites. */
  private readonly onRead = (bytes: number, buf: Buffer): boolean => {
    if (!this.closed) this.reader?.(buf, bytes);
    return true;
  };

  private readonly onData = (buf: Buffer, bytes: number): void => {
    try {
      this.decoder.feed(buf, this.visitFrame, bytes, true);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      this.options.onProtocolIssue?.(err.kind === 'zero_length' ? 'zero_length_frame' : 'oversized_frame');
      this.shutdown(new AgentCallError('protocol', `agent sent an invalid frame: ${err.message}`));
      return;
    }
    this.watchPartialFrame();
  };

  /**
   * One frame of a read (in the reused read buffer): the plain allow is matched in place, anything
   * else gets a payload view (JSON is parsed into new objects at once; MessagePack gets a copy,
   * since its decoder returns bin values as views of its input).
   */
  private readonly visitFrame = (type: number, buf: Buffer, start: number, end: number): void => {
    if (this.closed) return;
    // The common reply, recognised by its bytes (messages.ts plainAllowCorrelationId).
    if (type === MessageType.AgentResponse && this.encoding === 'json') {
      const cid = plainAllowCorrelationId(buf, start, end);
      if (cid !== undefined) {
        this.settle(cid, plainAllowReply(cid));
        return;
      }
    }
    this.onFrame(type, this.encoding === 'json' ? buf.subarray(start, end) : Buffer.from(buf.subarray(start, end)));
  };

  /** A frame left half-written for longer than the connect timeout will never complete: drop the connection. */
  private watchPartialFrame(): void {
    if (this.decoder.bufferedBytes === 0) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    } else if (!this.stallTimer && !this.closed) {
      this.stallTimer = setTimeout(() => {
        this.options.onProtocolIssue?.('stalled_frame');
        this.shutdown(new AgentCallError('protocol', 'agent left a frame half-written'));
      }, this.options.connectTimeoutMs);
      this.stallTimer.unref();
    }
  }

  private onFrame(type: number, payload: Buffer): void {
    if (!isKnownMessageType(type)) {
      this.options.onProtocolIssue?.('unknown_type');
      this.shutdown(new AgentCallError('protocol', `agent sent unknown message type 0x${type.toString(16)}`));
      return;
    }
    const body = parsePayload(payload, this.encoding);
    if (body === undefined) {
      this.options.onProtocolIssue?.('bad_json');
      this.shutdown(new AgentCallError('protocol', `agent sent a frame that is not valid ${this.encoding === 'json' ? 'JSON' : 'MessagePack'}`));
      return;
    }
    switch (type) {
      case MessageType.AgentResponse:
        this.onReply(body);
        return;
      case MessageType.Pong:
        this.awaitingPong = false;
        return;
      case MessageType.Ping:
        this.notify(MessageType.Pong, body);
        return;
      case MessageType.FlowControl: {
        const action = (body as { action?: unknown }).action;
        if (action === 1 || action === 'pause') this.paused = true;
        else if (action === 2 || action === 'resume') this.paused = false;
        return;
      }
      case MessageType.HealthStatus: {
        const state = (body as { state?: unknown }).state;
        this.paused = state === 3 || state === 4;
        return;
      }
      case MessageType.MetricsReport:
      case MessageType.ConfigUpdateRequest:
        return;
      default:
        // Proxy -> agent types coming back from the agent.
        this.options.onProtocolIssue?.('unexpected_type');
    }
  }

  private onReply(body: unknown): void {
    let reply: AgentReply;
    try {
      reply = parseAgentReply(body);
    } catch (err) {
      this.options.onProtocolIssue?.('bad_response');
      const cid = correlationIdOf(body);
      const p = cid === undefined ? undefined : this.pending.get(cid);
      if (p && cid !== undefined) {
        this.pending.delete(cid);
        p.reject(new AgentCallError('protocol', `malformed agent response: ${err instanceof ProtocolError ? err.message : String(err)}`));
      }
      return;
    }
    this.settle(reply.correlationId, reply);
  }

  private settle(cid: string | undefined, reply: AgentReply): void {
    const p = cid === undefined ? undefined : this.pending.get(cid);
    if (!p) {
      // Late (after a timeout/cancel) or for an id we never sent: never applied to anything.
      this.options.onProtocolIssue?.('unmatched_reply');
      return;
    }
    this.pending.delete(cid!);
    p.resolve(reply);
  }

  private startPing(): void {
    const every = this.options.pingIntervalMs ?? 0;
    if (every <= 0) return;
    this.pingTimer = setInterval(() => {
      if (this.awaitingPong) {
        this.shutdown(new AgentCallError('connection_lost', 'agent did not answer ping'));
        return;
      }
      this.awaitingPong = true;
      this.notify(MessageType.Ping, { sequence: ++this.pingSequence, timestamp_ms: Date.now() });
    }, every);
    this.pingTimer.unref();
  }

  private shutdown(err: AgentCallError): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.stallTimer);
    this.socket?.destroy();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(err);
    for (const l of this.closeListeners.splice(0)) l();
  }
}

function correlationIdOf(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as { correlation_id?: unknown; audit?: { custom?: { correlation_id?: unknown } } };
  const cid = b.audit?.custom?.correlation_id ?? b.correlation_id;
  return typeof cid === 'string' ? cid : undefined;
}
