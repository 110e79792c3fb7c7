// Agent SDK: the agent (server) side of the Sentinel agent protocol v2 over a Unix socket.
// A user supplies handlers that return decisions; the SDK does the framing, the JSON handshake,
// multiplexing by correlation id (many events in flight, replies in any order), ping/pong and
// cancellation. See docs/agents.md for an example.
import { createServer, type Server, type Socket } from 'node:net';
import { lstat, unlink } from 'node:fs/promises';
import { FrameDecoder, FrameWriter, MessageType, parseJsonPayload, parsePayload, type Encoding } from '../agent-protocol/frames.ts';
import { V1Decoder, encodeV1 } from '../agent-protocol/v1.ts';
import { lastPayloadPlain, parseRequestHeadersPayload } from '../agent-protocol/event-decoder.ts';
import {
  EventNumber,
  type ConfigureEvent,
  type HandshakeRequest,
  type HandshakeResponse,
  type RequestBodyChunkEvent,
  type RequestCompleteEvent,
  type RequestHeadersEvent,
  type ResponseBodyChunkEvent,
  type ResponseHeadersEvent,
  type WebSocketFrameEvent,
  type WireAgentResponse,
  type WireDecision,
  type WireHeaderOp,
  allowReplyText,
} from '../agent-protocol/messages.ts';

export type {
  ConfigureEvent,
  RequestBodyChunkEvent,
  RequestCompleteEvent,
  RequestHeadersEvent,
  RequestMetadata,
  ResponseBodyChunkEvent,
  ResponseHeadersEvent,
  HeaderValues,
  WebSocketFrameEvent,
} from '../agent-protocol/messages.ts';

/** A decision with its header operations, audit facts and body mutations; build with allow()/block()/redirect(). */
export class Decision {
  // Lists and the custom map are created when first used: an allow() with nothing attached (the
  // usual reply, one per event) is one small object.
  private requestOps: WireHeaderOp[] | undefined;
  private responseOps: WireHeaderOp[] | undefined;
  private tags: string[] | undefined;
  private ruleIds: string[] | undefined;
  private reasonCodes: string[] | undefined;
  private custom: Record<string, unknown> | undefined;
  private confidenceValue: number | undefined;
  private needsMoreFlag = false;
  private requestBody: { data: string | null; chunk_index: number } | undefined;
  private responseBody: { data: string | null; chunk_index: number } | undefined;
  private websocketDecision: WireAgentResponse['websocket_decision'];

  constructor(readonly decision: WireDecision) {}

  setRequestHeader(name: string, value: string): this {
    (this.requestOps ??= []).push({ set: { name, value } });
    return this;
  }
  addRequestHeader(name: string, value: string): this {
    (this.requestOps ??= []).push({ add: { name, value } });
    return this;
  }
  removeRequestHeader(name: string): this {
    (this.requestOps ??= []).push({ remove: { name } });
    return this;
  }
  setResponseHeader(name: string, value: string): this {
    (this.responseOps ??= []).push({ set: { name, value } });
    return this;
  }
  addResponseHeader(name: string, value: string): this {
    (this.responseOps ??= []).push({ add: { name, value } });
    return this;
  }
  removeResponseHeader(name: string): this {
    (this.responseOps ??= []).push({ remove: { name } });
    return this;
  }
  tag(...tags: string[]): this {
    (this.tags ??= []).push(...tags);
    return this;
  }
  ruleId(...ids: string[]): this {
    (this.ruleIds ??= []).push(...ids);
    return this;
  }
  reasonCode(...codes: string[]): this {
    (this.reasonCodes ??= []).push(...codes);
    return this;
  }
  confidence(value: number): this {
    this.confidenceValue = value;
    return this;
  }
  /** Extra audit.custom fields (correlation_id is always set by the SDK). */
  auditField(key: string, value: unknown): this {
    (this.custom ??= {})[key] = value;
    return this;
  }
  /** Provisional decision: keep sending body chunks. */
  needsMore(flag = true): this {
    this.needsMoreFlag = flag;
    return this;
  }
  /** Replace the request body (a Buffer/string), or drop it (empty). */
  replaceRequestBody(body: Buffer | string, chunkIndex = 0): this {
    this.requestBody = { data: Buffer.from(body).toString('base64'), chunk_index: chunkIndex };
    return this;
  }
  replaceResponseBody(body: Buffer | string, chunkIndex = 0): this {
    this.responseBody = { data: Buffer.from(body).toString('base64'), chunk_index: chunkIndex };
    return this;
  }

  /** The verdict on a WebSocket frame (see dropFrame() / closeWebSocket()). */
  websocket(decision: 'allow' | 'drop' | { close: { code: number; reason: string } }): this {
    this.websocketDecision = decision;
    return this;
  }

  /** An allow with nothing attached (its reply is the pre-serialised template). */
  isPlainAllow(): boolean {
    return (
      this.decision === 'allow' &&
      empty(this.requestOps) &&
      empty(this.responseOps) &&
      empty(this.tags) &&
      empty(this.ruleIds) &&
      empty(this.reasonCodes) &&
      this.confidenceValue === undefined &&
      !this.needsMoreFlag &&
      this.requestBody === undefined &&
      this.responseBody === undefined &&
      this.websocketDecision === undefined &&
      (this.custom === undefined || Object.keys(this.custom).length === 0)
    );
  }

  /** The AgentResponse JSON for one event. */
  toWire(correlationId: string): WireAgentResponse {
    const wire: WireAgentResponse = {
      // The v2 UDS transport carries the v1 AgentResponse JSON unchanged, version field included.
      version: 1,
      decision: this.decision,
      request_headers: this.requestOps ?? [],
      response_headers: this.responseOps ?? [],
      routing_metadata: {},
      audit: {
        tags: this.tags ?? [],
        rule_ids: this.ruleIds ?? [],
        confidence: this.confidenceValue ?? null,
        reason_codes: this.reasonCodes ?? [],
        custom: { ...this.custom, correlation_id: correlationId },
      },
      needs_more: this.needsMoreFlag,
      request_body_mutation: this.requestBody ?? null,
      response_body_mutation: this.responseBody ?? null,
      ...(this.websocketDecision !== undefined ? { websocket_decision: this.websocketDecision } : {}),
    };
    return wire;
  }
}

function empty(list: readonly unknown[] | undefined): boolean {
  return list === undefined || list.length === 0;
}

export function allow(): Decision {
  return new Decision('allow');
}

/** WebSocket frame: do not forward it. */
export function dropFrame(): Decision {
  return new Decision('allow').websocket('drop');
}

/** WebSocket frame: close both sides with `code` (e.g. 1008 policy violation) and `reason`. */
export function closeWebSocket(code = 1008, reason = ''): Decision {
  return new Decision('allow').websocket({ close: { code, reason } });
}

/** Block with `status` (default 403); body is sent as text/plain, headers are added to the response. */
export function block(status = 403, body?: string, headers?: Record<string, string>): Decision {
  return new Decision({ block: { status, body: body ?? null, headers: headers ?? null } });
}

export function redirect(url: string, status = 302): Decision {
  return new Decision({ redirect: { url, status } });
}

export function challenge(challengeType: string, params: Record<string, string> = {}): Decision {
  return new Decision({ challenge: { challenge_type: challengeType, params } });
}

/** First value of a (lower-cased) header in an event's header map. */
export function header(event: { headers: Record<string, string[]> }, name: string): string | undefined {
  return event.headers[name.toLowerCase()]?.[0];
}

/** Decoded bytes of a body chunk event. */
export function chunkData(event: { data: string }): Buffer {
  return Buffer.from(event.data, 'base64');
}

export interface EventContext {
  correlationId: string;
  /** aborted when the proxy cancels this request (client gone, timeout, another agent blocked) */
  signal: AbortSignal;
}

type Result = Decision | undefined | void;
type Handler<E> = (event: E, ctx: EventContext) => Result | Promise<Result>;

export interface AgentOptions {
  socketPath: string;
  name: string;
  version?: string;
  /** agent_id in the handshake (default: name) */
  agentId?: string;
  /** advertised in the handshake limits */
  maxConcurrency?: number;
  /**
   * Payload encodings this agent accepts, in preference order (default ['json']). The first one
   * the proxy offers in its handshake is used for every later frame, both ways.
   */
  encodings?: Encoding[];
  /**
   * 2 (default): the v2 binary UDS protocol. 1: legacy v1 (length-prefixed JSON, one event at a
   * time per connection, no handshake), for proxies configured with `protocol-version 1`.
   */
  protocol?: 1 | 2;
  /** Configure event: return false or throw to reject the config (the proxy sees block 500). */
  onConfigure?(config: unknown, event: ConfigureEvent): void | boolean | Promise<void | boolean>;
  onRequestHeaders?: Handler<RequestHeadersEvent>;
  onRequestBodyChunk?: Handler<RequestBodyChunkEvent>;
  onResponseHeaders?: Handler<ResponseHeadersEvent>;
  onResponseBodyChunk?: Handler<ResponseBodyChunkEvent>;
  onRequestComplete?: Handler<RequestCompleteEvent>;
  /** WebSocket frames (routes with websocket-inspection): allow() forwards, dropFrame(), closeWebSocket(code, reason). */
  onWebSocketFrame?: Handler<WebSocketFrameEvent>;
  /** What to answer when a handler throws: 'block' (500, the default: fail closed) or 'allow'. */
  onHandlerError?: 'block' | 'allow';
  /** Diagnostics sink (default: stderr). */
  log?: (message: string, error?: unknown) => void;
  /**
   * The process is a node:cluster worker and the socket file belongs to its primary, which
   * listens once for every worker (sentinel-waf --workers): the file is neither removed before
   * listening nor on close (that would cut the other workers off).
   */
  sharedListener?: boolean;
}

export interface RunningAgent {
  readonly socketPath: string;
  /** open proxy connections */
  readonly connectionCount: number;
  close(): Promise<void>;
}

/** The event handlers of an agent program, without the socket (also run in-process by the gateway). */
export type AgentHandlers = Pick<
  AgentOptions,
  'onRequestHeaders' | 'onRequestBodyChunk' | 'onResponseHeaders' | 'onResponseBodyChunk' | 'onRequestComplete' | 'onWebSocketFrame' | 'onHandlerError'
>;

/** Protocol message type -> the handler that answers it. */
export const EVENT_HANDLERS = {
  [MessageType.RequestHeaders]: 'onRequestHeaders',
  [MessageType.RequestBodyChunk]: 'onRequestBodyChunk',
  [MessageType.ResponseHeaders]: 'onResponseHeaders',
  [MessageType.ResponseBodyChunk]: 'onResponseBodyChunk',
  [MessageType.RequestComplete]: 'onRequestComplete',
  [MessageType.WebSocketFrame]: 'onWebSocketFrame',
} as const;

/** Starts an agent listening on `socketPath` (a stale socket file there is replaced). */
export async function runAgent(options: AgentOptions): Promise<RunningAgent> {
  const log = options.log ?? ((message: string, error?: unknown) => process.stderr.write(`[${options.name}] ${message}${error ? `: ${String(error)}` : ''}\n`));
  if (!options.sharedListener) await removeStaleSocket(options.socketPath);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (options.protocol === 1) serveConnectionV1(socket, options, log);
    else serveConnection(socket, options, log);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  let closed: Promise<void> | undefined;
  return {
    socketPath: options.socketPath,
    get connectionCount() {
      return sockets.size;
    },
    close() {
      closed ??= (async () => {
        const done = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await done;
        if (!options.sharedListener) await removeStaleSocket(options.socketPath);
      })();
      return closed;
    },
  };
}

export async function removeStaleSocket(path: string): Promise<void> {
  try {
    const st = await lstat(path);
    if (st.isSocket()) await unlink(path);
    else throw new Error(`${path} exists and is not a socket`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

function serveConnection(socket: Socket, options: AgentOptions, log: NonNullable<AgentOptions['log']>): void {
  const decoder = new FrameDecoder();
  let handshaken = false;
  let encoding: Encoding = 'json';
  const inFlight = new Map<string, EventCancel>();
  // Replies are batched per event-loop turn (one writev for the replies to one read's frames).
  const writer = new FrameWriter(socket);
  const send = (type: number, payload: unknown) => {
    if (!socket.destroyed) writer.writeMessage(type, payload, encoding);
  };
  // plainId: the id came through the event reader, which takes only printable ASCII without a quote or backslash
  const reply = (correlationId: string, d: Decision, plainId = false) => {
    // A plain allow goes out from its template (messages.ts allowReplyText), no toWire/stringify
    // and no Buffer of its own: the text is copied into the turn's write.
    const plain = encoding === 'json' && d.isPlainAllow() ? allowReplyText(correlationId, plainId) : undefined;
    if (plain === undefined) return send(MessageType.AgentResponse, d.toWire(correlationId));
    if (!socket.destroyed) writer.writeOneByteJson(MessageType.AgentResponse, plain);
  };

  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    for (const c of inFlight.values()) c.cancel();
    inFlight.clear();
  });
  // Set once the connection is refused or dropped: the rest of a read is not looked at.
  let stopped = false;
  const stop = (why: string, err?: unknown) => {
    log(why, err);
    stopped = true;
    socket.destroy();
  };
  // Each frame is visited in place in the socket's chunk (no Frame object or array per read).
  const visit = (type: number, buf: Buffer, start: number, end: number): void => {
    if (stopped) return;
    if (handshaken) {
      // JSON (the usual encoding) is decoded straight from the chunk, without a view of it; the
      // per-request event in the gateway's layout by a reader that knows it (event-decoder.ts).
      if (encoding !== 'json') handleFrame(type, parsePayload(buf.subarray(start, end), encoding));
      else if (type !== MessageType.RequestHeaders) handleFrame(type, parseJsonPayload(buf, start, end));
      else {
        const event = parseRequestHeadersPayload(buf, start, end);
        handleFrame(type, event, lastPayloadPlain);
      }
      return;
    }
    // The handshake is always JSON; later frames use the negotiated encoding.
    const body = parseJsonPayload(buf, start, end);
    if (type !== MessageType.HandshakeRequest || typeof body !== 'object' || body === null) return stop('dropping connection: expected a handshake');
    const req = body as Partial<HandshakeRequest>;
    const ok = Array.isArray(req.supported_versions) && req.supported_versions.includes(2);
    const offered = Array.isArray(req.supported_encodings) ? req.supported_encodings : ['json'];
    const chosen = (options.encodings ?? ['json']).find((e) => offered.includes(e)) ?? 'json';
    send(MessageType.HandshakeResponse, handshakeResponse(options, ok, chosen));
    if (!ok) {
      stopped = true;
      writer.flush();
      socket.end();
      return;
    }
    handshaken = true;
    encoding = chosen;
  };
  socket.on('data', (chunk: Buffer) => {
    if (stopped) return;
    // The replies of synchronous handlers (an allow-all agent) leave in one write when the read
    // is done, not from a setImmediate per read; asynchronous ones keep the per-turn batching.
    writer.hold();
    try {
      decoder.feed(chunk, visit);
    } catch (err) {
      // frames before the broken one were handled; the connection cannot be resynchronised
      stop('dropping connection: bad frame', err);
    } finally {
      writer.release();
    }
  });

  /** plainIds: the event's strings are printable ASCII without a quote or backslash (event-decoder.ts read it) */
  function handleFrame(type: number, body: unknown, plainIds = false): void {
    if (type === MessageType.Ping) {
      send(MessageType.Pong, body ?? {});
      return;
    }
    if (typeof body !== 'object' || body === null) return;
    const correlationId = (body as { correlation_id?: unknown }).correlation_id;
    if (type === MessageType.Cancel) {
      if (typeof correlationId === 'string') inFlight.get(correlationId)?.cancel();
      return;
    }
    if (typeof correlationId !== 'string') return;
    if (type === MessageType.Configure) {
      void configure(correlationId, body as ConfigureEvent);
      return;
    }
    const handlerName = EVENT_HANDLERS[type as keyof typeof EVENT_HANDLERS];
    if (!handlerName) return; // health/flow-control/unknown types: nothing to answer
    const handler = options[handlerName] as Handler<unknown> | undefined;
    dispatch(correlationId, handler, body, plainIds);
  }

  async function configure(correlationId: string, event: ConfigureEvent): Promise<void> {
    try {
      const ok = (await options.onConfigure?.(event.config, event)) !== false;
      reply(correlationId, ok ? allow() : block(500, 'Configuration rejected'));
    } catch (err) {
      log('configuration rejected', err);
      reply(correlationId, block(500, 'Configuration rejected'));
    }
  }

  function failed(correlationId: string, err: unknown): Decision {
    log(`handler failed for ${correlationId}`, err);
    return options.onHandlerError === 'allow' ? allow() : block(500, 'Agent error');
  }

  function dispatch(correlationId: string, handler: Handler<unknown> | undefined, event: unknown, plainId: boolean): void {
    const cancel = new EventCancel(correlationId);
    let result: Result | Promise<Result>;
    try {
      result = handler ? handler(event, cancel) : undefined;
    } catch (err) {
      reply(correlationId, failed(correlationId, err));
      return;
    }
    // A handler that answers synchronously (an allow-all agent, most WAF verdicts) is answered at
    // once: no promise, no await, no entry in inFlight (no cancel can arrive while it runs).
    if (!isThenable(result)) {
      reply(correlationId, result ?? allow(), plainId);
      return;
    }
    // Body chunks and headers of one request share a correlation id; each event gets its own
    // controller, and a cancel aborts whichever is current.
    inFlight.set(correlationId, cancel);
    const settle = (decision: Decision): void => {
      if (inFlight.get(correlationId) === cancel) inFlight.delete(correlationId);
      if (!cancel.cancelled) reply(correlationId, decision, plainId);
    };
    Promise.resolve(result).then(
      (r) => settle(r ?? allow()),
      (err: unknown) => settle(failed(correlationId, err)),
    );
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

const V1_HANDLERS: Record<string, keyof AgentOptions> = {
  request_headers: 'onRequestHeaders',
  request_body_chunk: 'onRequestBodyChunk',
  response_headers: 'onResponseHeaders',
  response_body_chunk: 'onResponseBodyChunk',
  request_complete: 'onRequestComplete',
  websocket_frame: 'onWebSocketFrame',
};

/**
 * Protocol v1: {"version":1,"event_type","payload"} requests, answered strictly in order (the
 * proxy sends the next one only after the reply). No handshake, no cancel, no ping.
 */
function serveConnectionV1(socket: Socket, options: AgentOptions, log: NonNullable<AgentOptions['log']>): void {
  const decoder = new V1Decoder();
  let tail: Promise<void> = Promise.resolve();
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: Buffer) => {
    let messages: Buffer[];
    try {
      messages = decoder.push(chunk);
    } catch (err) {
      log('dropping v1 connection: bad length', err);
      socket.destroy();
      return;
    }
    for (const raw of messages) {
      let msg: { event_type?: unknown; payload?: unknown };
      try {
        msg = JSON.parse(raw.toString('utf8')) as typeof msg;
      } catch (err) {
        log('dropping v1 connection: request is not JSON', err);
        socket.destroy();
        return;
      }
      // Replies must leave in request order, whatever each handler takes.
      tail = tail
        .then(() => answerV1(msg))
        .then((d) => {
          if (!socket.destroyed) socket.write(encodeV1(d.toWire('')));
        })
        .catch((err: unknown) => log('v1 reply failed', err));
    }
  });

  async function answerV1(msg: { event_type?: unknown; payload?: unknown }): Promise<Decision> {
    const payload = (typeof msg.payload === 'object' && msg.payload !== null ? msg.payload : {}) as Record<string, unknown>;
    if (msg.event_type === 'configure') {
      try {
        const event: ConfigureEvent = { correlation_id: '', agent_id: String(payload.agent_id ?? ''), config: payload.config, config_version: null };
        return (await options.onConfigure?.(payload.config, event)) !== false ? allow() : block(500, 'Configuration rejected');
      } catch (err) {
        log('configuration rejected', err);
        return block(500, 'Configuration rejected');
      }
    }
    const name = typeof msg.event_type === 'string' ? V1_HANDLERS[msg.event_type] : undefined;
    const handler = name ? (options[name] as Handler<unknown> | undefined) : undefined;
    // v1 RequestHeaders carries its correlation id in metadata only.
    const meta = payload.metadata as { correlation_id?: unknown } | undefined;
    const correlationId = String(payload.correlation_id ?? meta?.correlation_id ?? '');
    const event = payload.correlation_id === undefined ? { ...payload, correlation_id: correlationId } : payload;
    try {
      return (handler ? await handler(event, new EventCancel(correlationId)) : undefined) ?? allow();
    } catch (err) {
      log(`handler failed for ${correlationId}`, err);
      return options.onHandlerError === 'allow' ? allow() : block(500, 'Agent error');
    }
  }
}

/** The EventContext of one event; its AbortSignal is only created if a handler asks for it. */
class EventCancel implements EventContext {
  cancelled = false;
  private controller: AbortController | undefined;

  constructor(readonly correlationId: string) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    if (this.cancelled) this.controller.abort();
    return this.controller.signal;
  }

  cancel(): void {
    this.cancelled = true;
    this.controller?.abort();
  }
}

function handshakeResponse(options: AgentOptions, ok: boolean, encoding: Encoding): HandshakeResponse {
  const events: number[] = [EventNumber.configure];
  if (options.onRequestHeaders) events.push(EventNumber.request_headers);
  if (options.onRequestBodyChunk) events.push(EventNumber.request_body_chunk);
  if (options.onResponseHeaders) events.push(EventNumber.response_headers);
  if (options.onResponseBodyChunk) events.push(EventNumber.response_body_chunk);
  if (options.onRequestComplete) events.push(EventNumber.request_complete);
  if (options.onWebSocketFrame) events.push(EventNumber.websocket_frame);
  return {
    protocol_version: 2,
    capabilities: {
      agent_id: options.agentId ?? options.name,
      name: options.name,
      version: options.version ?? '0.0.0',
      supported_events: events,
      features: {
        streaming_body: Boolean(options.onRequestBodyChunk || options.onResponseBodyChunk),
        websocket: Boolean(options.onWebSocketFrame),
        guardrails: false,
        config_push: true,
        metrics_export: false,
        concurrent_requests: true,
        cancellation: true,
        flow_control: false,
        health_reporting: false,
      },
      limits: { max_concurrency: options.maxConcurrency ?? 100 },
    },
    success: ok,
    error: ok ? null : 'unsupported protocol version (this agent speaks v2)',
    encoding,
  };
}
