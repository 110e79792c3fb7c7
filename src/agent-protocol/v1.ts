// Sentinel agent protocol v1 over a Unix socket (legacy; sentinel-reference.md §2.3), for agents
// written before v2: 4-byte big-endian length + UTF-8 JSON (max 10 MiB), no handshake, no
// message types, no correlation ids on the wire: one request, one reply, in order. So a v1
// connection carries ONE call at a time; further calls queue on it (the client's pool of
// connections is the concurrency). A call that is cancelled while its request is on the wire
// keeps the connection busy until the agent's reply arrives, which is then discarded.
//
// Requests: {"version":1,"event_type":"<snake_case>","payload":{...}}; replies are AgentResponse
// JSON whose "version" must be 1 (anything else is an agent error, as in the reference client).
import type { Socket } from 'node:net';
import { AgentCallError, openAgentSocket, type ProtocolConnection, type ProtocolIssue } from './connection.ts';
import { MessageType } from './frames.ts';
import { ProtocolError, parseAgentReply, plainEvent, type AgentReply } from './messages.ts';

export const MAX_V1_MESSAGE_BYTES = 10 * 1024 * 1024;

const EVENT_TYPES: Record<number, string> = {
  [MessageType.RequestHeaders]: 'request_headers',
  [MessageType.RequestBodyChunk]: 'request_body_chunk',
  [MessageType.ResponseHeaders]: 'response_headers',
  [MessageType.ResponseBodyChunk]: 'response_body_chunk',
  [MessageType.RequestComplete]: 'request_complete',
  [MessageType.WebSocketFrame]: 'websocket_frame',
  [MessageType.GuardrailInspect]: 'guardrail_inspect',
  [MessageType.Configure]: 'configure',
};

/** The v1 request envelope for a v2 event (the v2-only fields are dropped where v1 has none). */
export function v1Request(type: number, payload: unknown): { version: 1; event_type: string; payload: unknown } {
  const eventType = EVENT_TYPES[type];
  if (eventType === undefined) throw new Error(`message type 0x${type.toString(16)} has no v1 event`);
  let p = plainEvent(payload);
  if (typeof p === 'object' && p !== null) {
    const o = p as Record<string, unknown>;
    if (type === MessageType.Configure) p = { agent_id: o.agent_id, config: o.config };
    else if (type === MessageType.RequestHeaders) {
      // v1 RequestHeaders carries the correlation id in metadata only.
      const { correlation_id: _cid, ...rest } = o;
      p = rest;
    }
  }
  return { version: 1, event_type: eventType, payload: p };
}

export function encodeV1(message: unknown): Buffer {
  const json = JSON.stringify(message);
  const length = Buffer.byteLength(json, 'utf8');
  const out = Buffer.allocUnsafe(4 + length);
  out.writeUInt32BE(length, 0);
  out.write(json, 4, 'utf8');
  return out;
}

export class V1FrameError extends Error {}

/** Incremental decoder for length-prefixed messages; throws V1FrameError on an oversized length. */
export class V1Decoder {
  private buf: Buffer = Buffer.alloc(0);

  constructor(private readonly maxBytes = MAX_V1_MESSAGE_BYTES) {}

  get bufferedBytes(): number {
    return this.buf.length;
  }

  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    while (this.buf.length >= 4) {
      const length = this.buf.readUInt32BE(0);
      if (length > this.maxBytes) throw new V1FrameError(`message of ${length} bytes exceeds the ${this.maxBytes}-byte limit`);
      if (this.buf.length < 4 + length) break;
      out.push(this.buf.subarray(4, 4 + length));
      this.buf = this.buf.subarray(4 + length);
    }
    return out;
  }
}

export interface V1ConnectionOptions {
  socketPath: string;
  connectTimeoutMs: number;
  maxMessageBytes?: number;
  onProtocolIssue?: (issue: ProtocolIssue) => void;
}

interface Call {
  correlationId: string;
  frame: Buffer;
  resolve: (reply: AgentReply) => void;
  reject: (err: AgentCallError) => void;
  /** cancelled after its request was written: the reply will be read and dropped */
  discarded: boolean;
}

export class V1Connection implements ProtocolConnection {
  private socket: Socket | undefined;
  private readonly decoder: V1Decoder;
  private readonly queue: Call[] = [];
  private current: Call | undefined;
  private closed = false;
  private readonly closeListeners: (() => void)[] = [];
  /** v1 has no flow control */
  paused = false;
  /** v1 writes one request at a time, unbatched */
  readonly writePending = false;

  constructor(private readonly options: V1ConnectionOptions) {
    this.decoder = new V1Decoder(options.maxMessageBytes ?? MAX_V1_MESSAGE_BYTES);
  }

  get inFlight(): number {
    return this.queue.length + (this.current && !this.current.discarded ? 1 : 0);
  }

  get alive(): boolean {
    return !this.closed && this.socket !== undefined;
  }

  onClose(listener: () => void): void {
    if (this.closed) listener();
    else this.closeListeners.push(listener);
  }

  /** Connects (v1 has no handshake). */
  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const opening = openAgentSocket({
        socketPath: this.options.socketPath,
        timeoutMs: this.options.connectTimeoutMs,
        phase: 'connect',
        onFail: (err) => {
          this.shutdown(err);
          reject(err);
        },
        onData: (c) => this.onData(c),
        onLost: (err) => this.shutdown(err),
      });
      opening.socket.once('connect', () => {
        opening.established();
        resolve();
      });
      this.socket = opening.socket;
    });
  }

  request(type: number, correlationId: string, payload: unknown): Promise<AgentReply> {
    if (!this.alive) return Promise.reject(new AgentCallError('connection_lost', 'agent connection is closed'));
    let frame: Buffer;
    try {
      frame = encodeV1(v1Request(type, payload));
    } catch (err) {
      return Promise.reject(new AgentCallError('rejected', (err as Error).message));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ correlationId, frame, resolve, reject, discarded: false });
      this.pump();
    });
  }

  cancel(correlationId: string): void {
    const i = this.queue.findIndex((c) => c.correlationId === correlationId);
    if (i >= 0) this.queue.splice(i, 1);
    else if (this.current?.correlationId === correlationId && !this.current.discarded) {
      this.current.discarded = true;
      // The slot stays busy until the late reply arrives; an agent that never answers loses the connection.
      const stuck = this.current;
      const t = setTimeout(() => {
        if (this.current === stuck) this.shutdown(new AgentCallError('connection_lost', 'agent did not answer a cancelled v1 request'));
      }, this.options.connectTimeoutMs);
      t.unref();
    }
  }

  /** v1 has no fire-and-forget messages (every request is answered, in order). */
  notify(): void {}

  close(): void {
    this.shutdown(new AgentCallError('connection_lost', 'agent connection closed by the proxy'));
  }

  private pump(): void {
    if (this.current || this.closed) return;
    const next = this.queue.shift();
    if (!next) return;
    this.current = next;
    this.socket!.write(next.frame);
  }

  private onData(chunk: Buffer): void {
    let messages: Buffer[];
    try {
      messages = this.decoder.push(chunk);
    } catch (err) {
      this.options.onProtocolIssue?.('oversized_frame');
      this.shutdown(new AgentCallError('protocol', `agent sent an invalid message: ${(err as Error).message}`));
      return;
    }
    for (const m of messages) {
      if (this.closed) return;
      this.onMessage(m);
    }
  }

  private onMessage(raw: Buffer): void {
    const call = this.current;
    if (!call) {
      // A reply nobody asked for: the stream can no longer be trusted to be in step.
      this.options.onProtocolIssue?.('unmatched_reply');
      this.shutdown(new AgentCallError('protocol', 'agent sent a reply with no request outstanding'));
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      this.options.onProtocolIssue?.('bad_json');
      this.shutdown(new AgentCallError('protocol', 'agent sent a message that is not JSON'));
      return;
    }
    this.current = undefined;
    if (call.discarded) {
      this.options.onProtocolIssue?.('unmatched_reply');
    } else {
      const version = typeof json === 'object' && json !== null ? (json as { version?: unknown }).version : undefined;
      if (version !== 1) {
        this.options.onProtocolIssue?.('bad_response');
        call.reject(new AgentCallError('protocol', `agent response has version ${JSON.stringify(version)}, expected 1`));
      } else {
        try {
          call.resolve(parseAgentReply(json));
        } catch (err) {
          this.options.onProtocolIssue?.('bad_response');
          call.reject(new AgentCallError('protocol', `malformed agent response: ${err instanceof ProtocolError ? err.message : String(err)}`));
        }
      }
    }
    this.pump();
  }

  private shutdown(err: AgentCallError): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.destroy();
    const calls = [...(this.current && !this.current.discarded ? [this.current] : []), ...this.queue.splice(0)];
    this.current = undefined;
    for (const c of calls) c.reject(err);
    for (const l of this.closeListeners.splice(0)) l();
  }
}
