// WebSocket proxying over HTTP/1.1 (the listener's 'upgrade' event): pick a target, open a TCP
// or TLS connection of our own (not the undici pool: the socket leaves HTTP after the 101), send
// the upgrade request, relay the upstream's 101 (or its refusal, then close), then relay bytes
// both ways with backpressure: raw, or frame by frame through an inspector (agents).
import { ServerResponse, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { createHash } from 'node:crypto';
import { connect as netConnect, type LookupFunction, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Context } from '../server/context.ts';
import type { UpstreamGroup } from '../upstream/group.ts';
import type { CompiledRoute } from '../config/compile.ts';
import type { Metrics } from '../metrics/registry.ts';
import type { HeaderMap, RequestFilter } from '../pipeline/types.ts';
import type { FilterChain } from '../pipeline/chain.ts';
import { classifyUpstreamError } from '../errors/index.ts';
import { applyHeaderOps, responseHeaders } from '../server/headers.ts';
import { localBodyBytes, localContentLength, noContent, pickContext, relayBody, sendError, type ForwardResult } from '../server/forwarder.ts';
import { WsSession, type FrameInspector } from './session.ts';
import { WS_MESSAGE_BURST_SECONDS, messageInspection } from './messages.ts';
import type { ClientBudgetGate } from '../server/client-budgets.ts';

/** A filter that can inspect the frames of an upgraded connection (agents). */
export interface WebSocketFrameFilter {
  webSocketInspector(ctx: Context, info: { deflate: boolean }): FrameInspector | undefined;
}

function framesFilter(f: RequestFilter): WebSocketFrameFilter | undefined {
  return typeof (f as Partial<WebSocketFrameFilter>).webSocketInspector === 'function' ? (f as unknown as WebSocketFrameFilter) : undefined;
}

/** A ServerResponse writing to an upgrade request's raw socket (local answers: 403, 429, 502 ...). */
export function localResponder(req: IncomingMessage, socket: Duplex): ServerResponse {
  // Node removed its own listeners from the socket when it emitted 'upgrade'.
  socket.on('error', () => socket.destroy());
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    socket.end();
    // a peer that never closes its side must not hold the socket
    setTimeout(() => socket.destroy(), 1000).unref();
  });
  return res;
}

export interface WsProxyOptions {
  ctx: Context;
  req: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  res: ServerResponse;
  route: CompiledRoute;
  group: UpstreamGroup;
  chain: FilterChain;
  /** a filter of the route is shown its frames (`websocket-inspection #true` with an effect: frameInspectingFilters) */
  inspectFrames: boolean;
  metrics: Metrics;
  /** the generation's live sessions (closed with 1001 when its drain time is over) */
  sessions: Set<WsSession>;
  /** the client's share of the per-session message rate (server/client-budgets.ts) */
  clientBudgets?: ClientBudgetGate;
}

class HandshakeError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** Resolves when the exchange is over: a local/refused answer, or the end of the whole session. */
export async function proxyWebSocket(o: WsProxyOptions): Promise<ForwardResult> {
  const { ctx, req, res, group, route, metrics } = o;
  const pick = group.select(pickContext(ctx, new Set()));
  if (!pick) return sendError(res, ctx, 503, 'Service Unavailable: no healthy upstream target', 0);
  const target = pick.target;
  const label = { upstream: group.id, route: route.id };
  metrics.upstreamAttempts.inc(label);
  const t0 = performance.now();

  const headers: OutgoingHttpHeaders = { ...(ctx.upstreamHeaders as OutgoingHttpHeaders), connection: 'Upgrade', upgrade: req.headers.upgrade ?? 'websocket' };
  delete headers['content-length'];
  delete headers['transfer-encoding'];
  // Compressed frames cannot be inspected: when frames go to agents, the client's compression
  // offer is not forwarded, so the upstream cannot negotiate it (the session stays uncompressed).
  // Where no filter is shown the frames, the offer passes and the session keeps its compression.
  const inspecting = o.inspectFrames;
  if (inspecting) {
    const ext = withoutCompressionOffers(headers['sec-websocket-extensions']);
    if (ext === undefined) delete headers['sec-websocket-extensions'];
    else headers['sec-websocket-extensions'] = ext;
  }

  let handshake: { upRes: IncomingMessage; upSocket: Socket; upHead: Buffer } | { response: IncomingMessage; upSocket: Socket };
  try {
    handshake = await upstreamHandshake(o, target.host, target.port, group.tlsFor(target), headers, group.connectLookup(target));
  } catch (err) {
    const latencyMs = performance.now() - t0;
    if (ctx.cancelled) {
      group.report(target, { kind: 'response', status: 499, latencyMs });
      return { status: 499, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: 0, upstreamAttempts: 1, error: 'client closed request' };
    }
    const c = classifyUpstreamError(err);
    if (c.blame === 'client') {
      // A handshake request node:http will not write (a header it refuses): not the target's fault.
      group.abandon(target);
      metrics.blockedRequests.inc({ reason: c.reason });
      return sendError(res, ctx, c.status, c.message, 1, c.reason);
    }
    group.report(target, { kind: 'error', reason: c.reason, latencyMs });
    metrics.upstreamFailures.inc({ ...label, reason: c.reason });
    ctx.log.warn({ err: (err as Error).message, upstream: group.id, target: target.address, reason: c.reason }, 'websocket upgrade to upstream failed');
    return sendError(res, ctx, c.status, c.message, 1, c.reason);
  }
  const latencyMs = performance.now() - t0;
  metrics.upstreamDuration.observe({ upstream: group.id }, latencyMs / 1000);

  if ('response' in handshake) {
    // The upstream refused the upgrade (401, 404, 426 ...): relay its answer, then close.
    const { response, upSocket } = handshake;
    const out = downstreamHeaders(ctx, route, response.headers, pick.setCookie);
    res.writeHead(response.statusCode ?? 502, out as Record<string, string | string[]>);
    const relayed = await relayBody(response, res);
    upSocket.destroy();
    group.report(target, { kind: 'response', status: response.statusCode ?? 502, latencyMs });
    if (relayed.error !== undefined) res.destroy();
    return { status: response.statusCode ?? 502, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: relayed.bytes, upstreamAttempts: 1, upstreamAddr: target.address };
  }

  const { upRes, upSocket, upHead } = handshake;
  if (!acceptsHandshake(upRes.headers, headers['sec-websocket-key'])) {
    // A 101 that does not answer this handshake (no or a wrong accept, another protocol): the
    // upstream may still be speaking HTTP, and a tunnel would carry the client's next bytes to it
    // as requests no route or filter sees (WebSocket smuggling).
    upSocket.destroy();
    group.report(target, { kind: 'error', reason: 'protocol', latencyMs });
    metrics.upstreamFailures.inc({ ...label, reason: 'protocol' });
    ctx.log.warn({ upstream: group.id, target: target.address }, 'upstream answered the upgrade with a 101 that is not a WebSocket handshake answer; refusing it');
    return sendError(res, ctx, 502, 'Bad Gateway: upstream sent an invalid WebSocket handshake answer', 1, 'protocol');
  }
  const deflate = /(^|,)\s*(permessage-deflate|x-webkit-deflate-frame)/i.test(String(upRes.headers['sec-websocket-extensions'] ?? ''));
  if (inspecting && deflate) {
    // Negotiated an extension nobody offered (RFC 6455 §9.1 says fail): fail closed rather than relay uninspectable frames.
    upSocket.destroy();
    group.report(target, { kind: 'error', reason: 'protocol', latencyMs });
    metrics.upstreamFailures.inc({ ...label, reason: 'protocol' });
    ctx.log.warn({ upstream: group.id, target: target.address }, 'upstream negotiated permessage-deflate that was not offered; refusing the upgrade');
    return sendError(res, ctx, 502, 'Bad Gateway: upstream negotiated a WebSocket extension that was not offered', 1, 'protocol');
  }
  const out = downstreamHeaders(ctx, route, upRes.headers, pick.setCookie);
  out.connection = 'Upgrade';
  out.upgrade = upRes.headers.upgrade ?? 'websocket';
  const info = { status: 101, headers: out };
  let local;
  try {
    local = o.chain.hasResponseHooks ? await o.chain.onResponse(ctx, info) : undefined;
  } catch (err) {
    upSocket.destroy();
    group.report(target, { kind: 'response', status: 101, latencyMs });
    throw err;
  }
  if (local) {
    upSocket.destroy();
    group.report(target, { kind: 'response', status: 101, latencyMs });
    const taken = localBodyBytes(local);
    const payload = noContent(local.status) ? undefined : taken;
    const length = localContentLength(local.status, payload?.length ?? 0);
    res.writeHead(local.status, { ...(local.headers as Record<string, string>), ...(length === undefined ? {} : { 'content-length': String(length) }), 'x-correlation-id': ctx.traceId });
    res.end(payload);
    return { status: local.status, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: 0, upstreamAttempts: 1, upstreamAddr: target.address };
  }
  if (ctx.cancelled) {
    // the client left while the upstream was answering
    upSocket.destroy();
    group.report(target, { kind: 'response', status: 499, latencyMs });
    return { status: 499, durationMs: 0, requestBodyBytes: 0, responseBodyBytes: 0, upstreamAttempts: 1, error: 'client closed request' };
  }
  res.detachSocket(o.socket as Socket);
  o.socket.write(statusBlock(info.headers));
  metrics.websocketConnections.inc({ route: route.id });

  const inspector = inspecting ? firstInspector(o.chain.filters, ctx, deflate) : undefined;
  const idleSecs = route.raw['websocket-idle-timeout-secs'] ?? WS_IDLE_TIMEOUT_SECS;
  const limits = messageInspection(route.raw);
  // reconnecting does not refill the client's burst: its sessions of this route share a bucket (none while unbounded)
  const clientMessages = inspector && limits.maxMessagesPerSecond > 0 ? o.clientBudgets?.messages(route.id, ctx.clientIp, limits.maxMessagesPerSecond * WS_MESSAGE_BURST_SECONDS, limits.maxMessagesPerSecond) : undefined;
  const session = new WsSession({
    client: o.socket,
    upstream: upSocket,
    clientHead: o.head,
    upstreamHead: upHead,
    inspector,
    limits,
    metrics,
    routeId: route.id,
    log: ctx.log,
    idleTimeoutMs: idleSecs * 1000,
    ...(clientMessages ? { clientMessages } : {}),
  });
  o.sessions.add(session);
  try {
    const bytes = await session.done;
    // a refused message is a refusal like an oversized body: one `blocked` audit event (status 101)
    if (session.closedBy === 'too_big') ctx.audit.blocked = 'websocket_message_too_big';
    else if (session.closedBy === 'too_many_fragments') ctx.audit.blocked = 'websocket_too_many_fragments';
    else if (session.closedBy === 'message_rate') ctx.audit.blocked = 'websocket_message_rate';
    else if (session.closedBy === 'client_message_rate') ctx.audit.blocked = 'websocket_client_message_rate';
    return { status: 101, durationMs: 0, requestBodyBytes: bytes.clientToServer, responseBodyBytes: bytes.serverToClient, upstreamAttempts: 1, upstreamAddr: target.address };
  } finally {
    o.sessions.delete(session);
    // Reported at the end so least-connections balancing counts open sessions as in flight.
    group.report(target, { kind: 'response', status: 101, latencyMs });
  }
}

/** Default `websocket-idle-timeout-secs`: a session with no bytes either way for this long is closed with 1001. */
export const WS_IDLE_TIMEOUT_SECS = 300;

/**
 * A Sec-WebSocket-Extensions request value without the compression offers (permessage-deflate,
 * and the pre-standard x-webkit-deflate-frame); undefined when nothing is left. Pure.
 */
export function withoutCompressionOffers(value: string | number | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const offers = (Array.isArray(value) ? value : [String(value)])
    .flatMap((v) => v.split(','))
    .map((o) => o.trim())
    .filter((o) => o !== '' && !/^(permessage-deflate|x-webkit-deflate-frame)\s*(;|$)/i.test(o));
  return offers.length > 0 ? offers.join(', ') : undefined;
}

function firstInspector(filters: readonly RequestFilter[], ctx: Context, deflate: boolean): FrameInspector | undefined {
  for (const f of filters) {
    const inspector = framesFilter(f)?.webSocketInspector(ctx, { deflate });
    if (inspector) return inspector;
  }
  return undefined;
}

/** Upstream response headers for the client: hop-by-hop removed, filters' and route policy headers applied. */
function downstreamHeaders(ctx: Context, route: CompiledRoute, upstream: IncomingMessage['headers'], setCookie: string | undefined): HeaderMap {
  const headers = responseHeaders(upstream);
  for (const k in ctx.responseHeaders) headers[k] = ctx.responseHeaders[k];
  if (setCookie) {
    const cur = headers['set-cookie'];
    headers['set-cookie'] = cur === undefined ? setCookie : Array.isArray(cur) ? [...cur, setCookie] : [cur, setCookie];
  }
  if (route.responseHeaders) applyHeaderOps(headers, route.responseHeaders);
  headers['x-correlation-id'] = ctx.traceId;
  return headers;
}

function statusBlock(headers: HeaderMap): string {
  let s = 'HTTP/1.1 101 Switching Protocols\r\n';
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) s += `${name}: ${one}\r\n`;
  }
  return s + '\r\n';
}

/**
 * Connects (connect timeout of the upstream), sends the upgrade request and waits for the
 * response head (the route's timeout-secs or the upstream's read timeout). Rejects with errors
 * classifyUpstreamError understands; a client that leaves aborts everything.
 */
function upstreamHandshake(
  o: WsProxyOptions,
  host: string,
  port: number,
  tls: ReturnType<UpstreamGroup['tlsFor']>,
  headers: OutgoingHttpHeaders,
  /** a target named by a host name: its resolved addresses are checked as the pools' are */
  lookup: LookupFunction | undefined,
): Promise<{ upRes: IncomingMessage; upSocket: Socket; upHead: Buffer } | { response: IncomingMessage; upSocket: Socket }> {
  const { ctx, group, route } = o;
  return new Promise((resolve, reject) => {
    let settled = false;
    const via = lookup ? { lookup } : {};
    const sock: Socket = tls ? tlsConnect({ host, port, ...tls, ALPNProtocols: ['http/1.1'], ...via }) : netConnect({ host, port, allowHalfOpen: true, ...via });
    let timer = setTimeout(() => fail(new HandshakeError('upstream connect timeout', 'UND_ERR_CONNECT_TIMEOUT')), group.timeouts.connectMs);
    const onConnected = () => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(new HandshakeError('upstream did not answer the upgrade in time', 'ETIMEDOUT')), route.timeoutMs ?? group.timeouts.readMs);
    };
    sock.once(tls ? 'secureConnect' : 'connect', onConnected);
    const onCancel = () => fail(new HandshakeError('client closed request', 'ECONNRESET'));
    ctx.cancelToken.once('abort', onCancel);
    const upReq = httpRequest({ method: ctx.method, path: o.req.url ?? '/', headers, createConnection: () => sock });
    function done(): boolean {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      ctx.cancelToken.off('abort', onCancel);
      return true;
    }
    function fail(err: Error): void {
      if (!done()) return;
      upReq.destroy();
      sock.destroy();
      reject(err);
    }
    upReq.on('error', (err) => fail(err));
    upReq.on('upgrade', (upRes, upSocket: Socket, upHead: Buffer) => {
      if (!done()) return upSocket.destroy();
      upSocket.on('error', () => upSocket.destroy());
      resolve({ upRes, upSocket, upHead });
    });
    upReq.on('response', (response: IncomingMessage) => {
      if (!done()) return;
      sock.on('error', () => sock.destroy());
      resolve({ response, upSocket: sock });
    });
    upReq.end();
  });
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Whether a 101 answers the handshake sent with `key`: `Upgrade: websocket` and the RFC 6455 §4.2.2 accept. */
export function acceptsHandshake(headers: IncomingHttpHeaders, key: unknown): boolean {
  if (typeof key !== 'string' || String(headers.upgrade ?? '').trim().toLowerCase() !== 'websocket') return false;
  return headers['sec-websocket-accept'] === createHash('sha1').update(key + WS_GUID).digest('base64');
}
