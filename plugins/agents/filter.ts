// `filter type "agent"`: runs a route's agents (sentinel-reference.md §2.1, §2.2).
//
// Chain semantics with the one-filter-at-a-time pipeline: the FIRST agent filter of a route runs
// the whole chain of that route's agent filters (request headers to all of them in parallel,
// decisions merged in chain order: the first non-allow decision wins and cancels the rest;
// header operations of allowing agents accumulate). The later agent filters of the route find
// themselves marked as handled in ctx.agentState and do nothing. Then the request body (when an agent
// wants it), response headers in onResponse, the response body in onResponseBody
// (response-body.ts), and request_complete in onComplete.
import type { HeaderMap, LocalResponse, RequestContext, RequestFilter, UpstreamResponseInfo, GenerationServices, CompletionInfo, ResponseBodyHandler, FilterStatus } from '../../src/pipeline/types.ts';
import { AgentCallError, CancelScope, type CallCanceller, type CallOptions } from '../../src/agent-protocol/client.ts';
import type { ReplySink } from '../../src/agent-protocol/connection.ts';
import type { AgentTransport } from './in-process.ts';
import { MessageType } from '../../src/agent-protocol/frames.ts';
import { CancelReason, RequestHeadersMessage, plainEvent, toHeaderValues, type AgentReply, type HeaderOp } from '../../src/agent-protocol/messages.ts';
import { contentCodings, decompressBounded, encodingLabel, extendedBoundary, formFieldsOutsideFormData, isInspectedContentType, readBody, unreadableCharset, unreadableFormCharset } from './body-inspection.ts';
import { reserveCorrelationId, type CorrelationHandle } from './correlation.ts';
import { inspectsUnknownTypes, overLimitAnswer, sendsRequestBodies, type AgentDefinition, type AgentFilterSettings, type BodyPolicy } from './definition.ts';
import type { AgentManager } from './manager.ts';
import type { AgentCells, AgentMetrics } from './metrics.ts';
import { ResponseBodyInspector } from './response-body.ts';
import { h2BodyFollows, requestHasBody } from '../../src/server/request-body.ts';
import { applyAgentHeaderOps, withoutFramingHeaders } from './header-ops.ts';
import { createFrameInspector } from './websocket.ts';
import type { FrameInspector } from '../../src/websocket/session.ts';
import { requestAuditEvent, type AuditEventType } from '../../src/logging/audit.ts';

/** What one generation's agent filters share. */
export interface AgentGeneration {
  readonly manager: AgentManager;
  readonly body: BodyPolicy;
  readonly services: GenerationServices;
  /** agent filter settings by filter id (filled as the factory is called) */
  readonly filters: Map<string, AgentFilterSettings>;
  /** a route's filter ids in order; undefined = unknown (each agent filter then runs alone) */
  readonly routeFilters: ((routeId: string) => readonly string[] | undefined) | undefined;
}

export interface Member {
  settings: AgentFilterSettings;
  def: AgentDefinition;
  client: AgentTransport;
  /** '' for the first filter of an agent on the route; '#2', '#3'... for further filters of the same agent (distinct correlation ids) */
  cidSuffix: string;
  /** the agent's per-call metric cells */
  cells: AgentCells;
}

/** A chain's members and, of them, those subscribed to each event (worked out once per route). */
interface MemberSets {
  all: Member[];
  requestHeaders: Member[];
  requestBody: Member[];
  responseHeaders: Member[];
  responseBody: Member[];
  complete: Member[];
}

function memberSets(all: Member[]): MemberSets {
  return {
    all,
    requestHeaders: all.filter((m) => wants(m, 'request_headers')),
    requestBody: all.filter((m) => wants(m, 'request_body')),
    responseHeaders: all.filter((m) => wants(m, 'response_headers')),
    responseBody: all.filter((m) => wants(m, 'response_body')),
    complete: all.filter((m) => wants(m, 'request_complete')),
  };
}

interface Chain {
  members: Member[];
  sets: MemberSets;
  /** response header ops returned by allowing agents during the request phase */
  responseOps: HeaderOp[];
  responseDone: boolean;
  responseBodyDone: boolean;
  completeDone: boolean;
}

interface RequestState {
  correlation: CorrelationHandle;
  /** the request's own hold on the correlation id is given back (request finished or aborted) */
  released: boolean;
  /** agent filter ids already run for this request (a list: one or a few ids, no Set per request) */
  handled: string[];
  chains: Chain[];
}

function releaseRequestHold(state: RequestState): void {
  if (state.released) return;
  state.released = true;
  state.correlation.release();
}

type Outcome = { ok: true; reply: AgentReply } | { ok: false; error: AgentCallError };

function text(status: number, body: string, reason: string, headers: HeaderMap = {}): LocalResponse {
  return { status, headers: { ...headers, 'content-type': 'text/plain; charset=utf-8' }, body, blockReason: reason };
}

/** Fail-closed answers (Sentinel: circuit open 503, agent error 503, timeout 504). */
export function failureResponse(error: AgentCallError): LocalResponse {
  if (error.kind === 'timeout') return text(504, 'Gateway timeout', 'agent_timeout');
  if (error.kind === 'circuit_open') return text(503, 'Service unavailable', 'agent_unavailable');
  return text(503, 'Agent unavailable', 'agent_unavailable');
}

/** The downstream answer for a non-allow decision. */
export function decisionResponse(reply: AgentReply): LocalResponse | undefined {
  const d = reply.decision;
  switch (d.kind) {
    case 'allow':
      return undefined;
    case 'block':
      return text(d.status, d.body ?? 'Blocked by agent', 'agent_blocked', withoutFramingHeaders(d.headers));
    case 'redirect':
      return { status: d.status, headers: { location: d.url, 'content-type': 'text/plain; charset=utf-8' }, body: `Redirecting to ${d.url}`, blockReason: 'agent_redirect' };
    case 'challenge':
      return text(403, 'Challenge required', 'agent_challenge', { 'x-sentinel-challenge': d.challengeType });
  }
}

export class AgentFilter implements RequestFilter {
  readonly type = 'agent';
  private readonly chainCache = new Map<string, MemberSets>();

  constructor(
    readonly id: string,
    private readonly settings: AgentFilterSettings,
    private readonly gen: AgentGeneration,
    private readonly onClose: () => Promise<void>,
  ) {}

  close(): Promise<void> {
    return this.onClose();
  }

  /** An in-process agent's program is built (a socket agent connects in the background: nothing to wait for). */
  async ready(): Promise<void> {
    await this.gen.manager.peek(this.settings.agent)?.whenBuilt?.();
  }

  /** The agent as the status page shows it (src/status): connections, breaker, latency. */
  status(): FilterStatus {
    const c = this.gen.manager.peek(this.settings.agent);
    if (!c) return { filter: this.id, kind: 'agent' };
    const open = c.openConnections;
    const configured = Math.max(1, c.options.connections);
    return {
      filter: this.id,
      kind: 'agent',
      agent: {
        id: this.settings.agent,
        state: open === 0 ? 'disconnected' : open < configured ? 'partial' : 'connected',
        connections: open,
        configured_connections: configured,
        circuit_breaker: c.breaker.state(Date.now()),
        in_flight: c.pendingReplies,
        queued: c.load.queued,
        latency: c.latency.snapshot(),
      },
    };
  }

  /** Connection/call counters of this generation's agents. */
  agentStats(): ReturnType<AgentManager['stats']> {
    return this.gen.manager.stats();
  }

  onRequest(ctx: RequestContext): Promise<LocalResponse | undefined> | undefined {
    let state = ctx.agentState as RequestState | undefined;
    if (state?.handled.includes(this.id)) return undefined;
    if (!state) {
      const correlation = reserveCorrelationId(ctx.traceId);
      const st: RequestState = { correlation, released: false, handled: [], chains: [] };
      state = st;
      ctx.agentState = state;
      ctx.onCancel(() => releaseRequestHold(st));
    }
    // The usual request: the first agent filter of its route takes the route's whole chain.
    const route = this.membersFor(ctx.routeId);
    const handled = state.handled;
    const sets = handled.length === 0 ? route : memberSets(route.all.filter((m) => !handled.includes(m.settings.id)));
    const members = sets.all;
    for (const m of members) if (!handled.includes(m.settings.id)) handled.push(m.settings.id);
    const chain: Chain = { members, sets, responseOps: [], responseDone: false, responseBodyDone: false, completeDone: false };
    state.chains.push(chain);
    // The usual request: one agent on request headers and no body to send after it (a GET on a
    // WAF route too): the call's own promise is the request's (no async function around it).
    if (sets.requestHeaders.length === 1 && !this.readsBody(ctx, sets.requestBody) && !this.bodyWithheld(ctx, sets.requestBody)) return this.headersCall(ctx, state, chain, sets.requestHeaders[0]!);
    return this.requestPhases(ctx, state, chain, sets);
  }

  /**
   * One agent's request_headers call, merged and applied; the answer when it refused the request.
   * The promise is settled from the reply's read by a HeadersCall (no call promise and no await
   * between the reply and the chain).
   */
  private headersCall(ctx: RequestContext, state: RequestState, chain: Chain, m: Member): Promise<LocalResponse | undefined> {
    const cid = state.correlation.id;
    const id = cid + m.cidSuffix;
    const event = requestHeadersEvent(ctx, cid);
    const started = performance.now();
    const opts: CallOptions = { timeoutMs: m.settings.timeoutMs ?? m.def.timeoutMs, cancel: ctx };
    return new Promise((resolve, reject) => {
      m.client.callInto(MessageType.RequestHeaders, id, m.cidSuffix ? withCorrelationId(event, id) : event, opts, new HeadersCall(this, ctx, m, chain, started, resolve, reject));
    });
  }

  private async requestPhases(ctx: RequestContext, state: RequestState, chain: Chain, sets: MemberSets): Promise<LocalResponse | undefined> {
    // Phases nobody subscribed to are not entered (no async call for nothing).
    const headersMembers = sets.requestHeaders;
    if (headersMembers.length === 1) {
      // One agent on request headers followed by the body phase (no phase and fan-out frames around the call)
      const refused = await this.headersCall(ctx, state, chain, headersMembers[0]!);
      if (refused) return refused;
    } else if (headersMembers.length > 1) {
      const refused = await this.requestHeadersPhase(ctx, state, chain);
      if (refused) return refused;
    }
    // No body to read (a GET on a WAF route): no async body phase entered, no promise to adopt.
    if (!this.readsBody(ctx, sets.requestBody)) {
      return this.bodyWithheld(ctx, sets.requestBody) ? this.bodyNotShown(ctx, state, chain, sets.requestBody) : undefined;
    }
    const withheld: Member[] = [];
    const refused = await this.requestBodyPhase(ctx, state, chain, withheld);
    if (refused || withheld.length === 0) return refused;
    return this.bodyNotShown(ctx, state, chain, withheld);
  }

  /** Whether the request has a body some member of the chain may be sent (requestBodyPhase's entry test). */
  private readsBody(ctx: RequestContext, members: Member[]): boolean {
    return members.length > 0 && this.gen.body.enabled && ctx.body === undefined && requestHasBody(ctx.raw);
  }

  /** Whether members that asked for the request body will not be shown it (`inspect-request-body #false`). */
  private bodyWithheld(ctx: RequestContext, members: Member[]): boolean {
    return members.length > 0 && !this.gen.body.enabled && ctx.body === undefined && requestHasBody(ctx.raw);
  }

  /**
   * Tells agents that asked for the request body and will not be shown it (inspection off, a type
   * a fail-open filter skips, a body over the limit it forwards) that the body is over: an empty
   * last chunk, `bytes_received` 0 against `total_size`. An agent that saw a body announced in the
   * head waits for it before deciding: sentinel-waf runs the CRS's blocking evaluation (949110,
   * phase 2) only then, so without this such a request's query, cookies and headers were never
   * judged (session 25 WAF evasion audit). Its decision applies; a body replacement does not.
   */
  private async bodyNotShown(ctx: RequestContext, state: RequestState, chain: Chain, members: Member[]): Promise<LocalResponse | undefined> {
    const cid = state.correlation.id;
    const declared = Number(firstHeader(ctx.raw.headers['content-length']) ?? NaN);
    const event = { correlation_id: cid, data: '', is_last: true, total_size: Number.isFinite(declared) ? declared : null, chunk_index: 0, bytes_received: 0 };
    const merged = await this.fanOut(ctx, members, MessageType.RequestBodyChunk, 'request_body_chunk', cid, event, (m) => m.settings.timeoutMs ?? m.def.timeoutMs);
    if (merged.response) return merged.response;
    applyAgentHeaderOps(ctx.upstreamHeaders, merged.requestOps);
    chain.responseOps.push(...merged.responseOps);
    return undefined;
  }

  /** One agent's reply to request_headers: counted and timed; the answer for the client when it refused the request. */
  headersReplied(ctx: RequestContext, m: Member, chain: Chain, started: number, reply: AgentReply): LocalResponse | undefined {
    observeLatency(m, 'request_headers', started);
    // an allow with nothing attached only counts (what merge would do with it)
    if (isBareAllow(reply)) {
      m.cells.decision('allow').value++;
      return undefined;
    }
    return this.headersOutcome(ctx, m, chain, { ok: true, reply });
  }

  /** One agent's request_headers outcome merged and applied (header operations now or at the response); the answer when it refused the request. */
  headersOutcome(ctx: RequestContext, m: Member, chain: Chain, outcome: Outcome): LocalResponse | undefined {
    const merged = emptyMerged();
    this.merge(ctx, m, outcome, merged, 'request_headers');
    if (merged.response) return merged.response;
    if (merged.requestOps.length > 0) applyAgentHeaderOps(ctx.upstreamHeaders, merged.requestOps);
    if (merged.responseOps.length > 0) chain.responseOps.push(...merged.responseOps);
    return undefined;
  }

  /** Synchronous unless an agent of the chain is subscribed to response headers. */
  onResponse(ctx: RequestContext, res: UpstreamResponseInfo): Promise<LocalResponse | undefined> | undefined {
    const state = ctx.agentState as RequestState | undefined;
    const chain = state ? chainOf(state, this.id, 'responseDone') : undefined;
    if (!state || !chain) return undefined;
    chain.responseDone = true;
    if (chain.responseOps.length > 0) applyAgentHeaderOps(res.headers, chain.responseOps);
    const members = chain.sets.responseHeaders;
    if (members.length === 0) return undefined;
    return this.responseHeadersPhase(ctx, res, state, members);
  }

  private async responseHeadersPhase(ctx: RequestContext, res: UpstreamResponseInfo, state: RequestState, members: Member[]): Promise<LocalResponse | undefined> {
    const event = { correlation_id: state.correlation.id, status: res.status, headers: toHeaderValues(res.headers) };
    const merged = await this.fanOut(ctx, members, MessageType.ResponseHeaders, 'response_headers', state.correlation.id, event, (m) => m.settings.timeoutMs ?? m.def.timeoutMs);
    if (merged.response) return merged.response;
    applyAgentHeaderOps(res.headers, merged.responseOps);
    return undefined;
  }

  onResponseBody(ctx: RequestContext, res: UpstreamResponseInfo): ResponseBodyHandler | undefined {
    const state = ctx.agentState as RequestState | undefined;
    const chain = state ? chainOf(state, this.id, 'responseBodyDone') : undefined;
    if (!state || !chain) return undefined;
    chain.responseBodyDone = true;
    const members = chain.sets.responseBody;
    if (members.length === 0) return undefined;
    return new ResponseBodyInspector(this, ctx, res, members, state.correlation.id, this.gen.body);
  }

  /** Frames of an upgraded request, for the chain's agents subscribed to websocket_frame (websocket.ts). */
  webSocketInspector(ctx: RequestContext, info: { deflate: boolean }): FrameInspector | undefined {
    const state = ctx.agentState as RequestState | undefined;
    if (!state) return undefined;
    const members = this.membersFor(ctx.routeId).all.filter((m) => m.def.events.has('websocket_frame'));
    return createFrameInspector({ ctx, members, correlation: state.correlation, failureMode: (m) => this.failureMode(ctx, m), metrics: this.gen.manager.metrics, deflate: info.deflate });
  }

  get agentMetrics(): AgentMetrics {
    return this.gen.manager.metrics;
  }

  onComplete(ctx: RequestContext, info: CompletionInfo): void {
    const state = ctx.agentState as RequestState | undefined;
    const chain = state ? chainOf(state, this.id, 'completeDone') : undefined;
    if (!state || !chain) return;
    chain.completeDone = true;
    if (chain.sets.complete.length > 0) this.requestComplete(state, chain, info);
    // The core does not abort a request that finished normally (that would cost undici the
    // upstream connection), so the request's own hold ends here, once every chain completed;
    // request_complete calls keep theirs until their replies are in.
    for (const c of state.chains) if (!c.completeDone) return;
    releaseRequestHold(state);
  }

  /** request_complete to the chain's agents subscribed to it: fire and forget for the client. */
  private requestComplete(state: RequestState, chain: Chain, info: CompletionInfo): void {
    const event = {
      correlation_id: state.correlation.id,
      status: info.status,
      duration_ms: Math.round(info.durationMs),
      request_body_size: info.requestBodyBytes,
      response_body_size: info.responseBodyBytes,
      upstream_attempts: info.upstreamAttempts,
      error: info.error ?? null,
    };
    for (const m of chain.sets.complete) {
      // Fire and forget for the client; the correlation id stays reserved until the reply is in.
      state.correlation.hold();
      m.client
        .call(MessageType.RequestComplete, state.correlation.id + m.cidSuffix, m.cidSuffix ? withCorrelationId(event, state.correlation.id + m.cidSuffix) : event, {
          timeoutMs: m.settings.timeoutMs ?? m.def.timeoutMs,
        })
        .then(
          () => this.gen.manager.metrics.decisions.inc({ agent: m.def.id, decision: 'logged' }),
          (err: AgentCallError) => this.gen.manager.metrics.errors.inc({ agent: m.def.id, event: 'request_complete', kind: err.kind }),
        )
        .finally(() => state.correlation.release());
    }
  }

  /** The route's agent filters in chain order (this filter alone when the route is unknown). */
  private membersFor(routeId: string | undefined): MemberSets {
    const key = routeId ?? '';
    const cached = this.chainCache.get(key);
    if (cached) return cached;
    const listed = (routeId !== undefined ? this.gen.routeFilters?.(routeId) : undefined)?.filter((id) => this.gen.filters.has(id)) ?? [];
    const ids = listed.includes(this.id) ? [...new Set(listed)] : [this.id];
    const uses = new Map<string, number>();
    const members = ids.map((id) => {
      const settings = this.gen.filters.get(id)!;
      const def = this.gen.manager.definition(settings.agent);
      if (!def) throw new Error(`agent filter "${id}": unknown agent "${settings.agent}"`);
      // Two filters of one agent on a route are two calls in flight at once: they need distinct ids.
      const n = (uses.get(def.id) ?? 0) + 1;
      uses.set(def.id, n);
      return { settings, def, client: this.gen.manager.client(def.id), cidSuffix: n === 1 ? '' : `#${n}`, cells: this.gen.manager.metrics.cells(def.id) };
    });
    const sets = memberSets(members);
    this.chainCache.set(key, sets);
    return sets;
  }

  failureModeOf(ctx: RequestContext, m: Member): 'open' | 'closed' {
    return this.failureMode(ctx, m);
  }

  private failureMode(ctx: RequestContext, m: Member): 'open' | 'closed' {
    return m.settings.failureMode ?? (ctx.routeId !== undefined ? this.gen.services.routeFailureMode(ctx.routeId) : 'closed');
  }

  /**
   * A request body over the agent's limit is refused (413) rather than forwarded uninspected: the
   * filter's `body-over-limit`, else its failure mode's answer (the reference's). A client chooses
   * its body's size, so an operator who is fail-open for the agent's availability may still refuse
   * padded bodies (docs/security.md, "Session 19 audit").
   */
  private rejectsOverLimit(ctx: RequestContext, m: Member): boolean {
    return overLimitAnswer(m.settings, this.failureMode(ctx, m)) === 'reject';
  }

  private async requestHeadersPhase(ctx: RequestContext, state: RequestState, chain: Chain): Promise<LocalResponse | undefined> {
    const members = chain.sets.requestHeaders;
    const cid = state.correlation.id;
    const event = requestHeadersEvent(ctx, cid);
    const merged = await this.fanOut(ctx, members, MessageType.RequestHeaders, 'request_headers', cid, event, (m) => m.settings.timeoutMs ?? m.def.timeoutMs);
    if (merged.response) return merged.response;
    applyAgentHeaderOps(ctx.upstreamHeaders, merged.requestOps);
    chain.responseOps.push(...merged.responseOps);
    return undefined;
  }

  /**
   * The request body to the chain's agents; called when readsBody() holds. Members that will not be
   * shown it (skipped for its type or size) are added to `withheld`.
   */
  private async requestBodyPhase(ctx: RequestContext, state: RequestState, chain: Chain, withheld: Member[]): Promise<LocalResponse | undefined> {
    const policy = this.gen.body;
    let members = chain.sets.requestBody;
    // A body outside the allowlist is what an attacker would send to slip past a fail-closed
    // agent: such members see it unless they opt out (inspect-unknown-content-types #false).
    if (!isInspectedContentType(firstHeader(ctx.raw.headers['content-type']), policy.contentTypes)) {
      const all = members;
      members = members.filter((m) => inspectsUnknownTypes(m.settings, this.failureMode(ctx, m)));
      for (const m of all) if (!members.includes(m)) withheld.push(m);
      if (members.length === 0) return undefined;
    }
    const limitOf = (m: Member) => m.settings.maxBodyBytes ?? m.def.maxRequestBodyBytes ?? policy.maxInspectionBytes;
    const metrics = this.gen.manager.metrics;

    // Declared too large: decide before reading a byte.
    const declared = Number(firstHeader(ctx.raw.headers['content-length']) ?? NaN);
    if (Number.isFinite(declared)) {
      const kept: Member[] = [];
      for (const m of members) {
        if (declared <= limitOf(m)) kept.push(m);
        else if (this.rejectsOverLimit(ctx, m)) return text(413, 'Payload Too Large', 'body_size_exceeded');
        else {
          metrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
          withheld.push(m);
        }
      }
      members = kept;
      if (members.length === 0) return undefined;
    }

    const cid = state.correlation.id;
    const streaming = members.filter((m) => m.def.requestBodyMode.kind === 'stream' || (m.def.requestBodyMode.kind === 'hybrid' && !(declared <= m.def.requestBodyMode.bufferBytes)));
    const buffered = members.filter((m) => !streaming.includes(m));

    // A coded body (Content-Encoding: gzip, deflate, br, ...) that an agent would see as coded
    // bytes while the upstream's framework decodes it: the WAF parses gzip noise and the attack
    // inside goes through. Refused (whatever the failure mode, as a bomb is) unless the agents see
    // it decoded: `decompress #true` and buffered inspection (stream events carry raw chunks).
    const codings = contentCodings(ctx.raw.headers['content-encoding']);
    if (codings.length > 0 && (streaming.length > 0 || !policy.decompress)) {
      return this.refuseBody(ctx, 415, 'Unsupported Media Type: coded request bodies are not inspected (Content-Encoding)', 'encoded_request_body');
    }
    // A charset whose bytes are not the characters the agents match (EBCDIC ibm037, utf-7,
    // utf-16, shift_jis, ...): the WAF reads the bytes as sent while an application that decodes
    // the charset (.NET, IIS, Java) reads the attack. Refused, not transcoded: a form's escapes
    // are decoded before the charset applies and every framework does its own mix of the two.
    const charset = unreadableCharset(firstHeader(ctx.raw.headers['content-type']));
    if (charset !== undefined) return this.refuseCharset(ctx, charset);
    // a multipart boundary an RFC 2231 parser reads and the agents' parsers do not: other parts
    if (extendedBoundary(firstHeader(ctx.raw.headers['content-type']))) {
      return this.refuseBody(ctx, 415, 'Unsupported Media Type: a multipart boundary given as boundary*= is not inspected', 'multipart_boundary');
    }
    const stream = streaming.length > 0 ? new BodyStreamer(this, ctx, streaming, cid) : undefined;

    // Everything read is replayed upstream, so the read is bounded by the request limit even
    // when an agent will be skipped for size; agents that refuse such bodies alone bound it by their limit.
    const allReject = members.every((m) => this.rejectsOverLimit(ctx, m));
    const readLimit = allReject ? Math.max(...members.map(limitOf)) : policy.maxBodyBytes;
    const read = await readBody(ctx.raw, readLimit, ctx.signal, stream ? (c) => stream.push(c) : undefined);
    if (!read.ok) {
      if (stream?.response) return stream.response;
      if (read.reason === 'too_large') return text(413, 'Payload Too Large', 'body_size_exceeded');
      return text(400, 'Bad Request', 'body_read_failed');
    }
    metrics.bufferedBytes.observe({ route: ctx.routeId ?? '' }, read.body.length);
    let upstreamBody: Buffer = read.body;
    ctx.body = read.body;
    if (stream) {
      const done = await stream.finish();
      if (done.response) return done.response;
      upstreamBody = done.body ?? upstreamBody;
      applyAgentHeaderOps(ctx.upstreamHeaders, done.requestOps);
      chain.responseOps.push(...done.responseOps);
    }

    let inspected = read.body;
    let decoded = false;
    if (buffered.length > 0 && codings.length > 0 && policy.decompress) {
      const r = await decompressBounded(read.body, codings, { maxRatio: policy.maxDecompressionRatio, maxBytes: policy.maxDecompressedBytes });
      const encoding = encodingLabel(codings);
      if (!r.ok) {
        metrics.decompression.inc({ encoding, result: r.reason });
        // A bomb is refused whatever the failure mode: fail-open is about agent availability.
        if (r.reason === 'ratio_exceeded' || r.reason === 'size_exceeded') return text(413, 'Payload Too Large', 'decompression_limit');
        if (buffered.some((m) => this.failureMode(ctx, m) === 'closed')) return text(400, 'Bad Request', 'decompression_failed');
        withheld.push(...buffered);
        return this.finishBody(ctx, upstreamBody, false);
      }
      metrics.decompression.inc({ encoding, result: 'ok' });
      metrics.decompressionRatio.observe(r.data.length / Math.max(1, read.body.length));
      inspected = r.data;
      decoded = true;
    }

    // The same for a charset inside the form: a multipart part's own Content-Type charset or a
    // `_charset_` field (one pass over the part headers, multipart and urlencoded bodies only).
    const formCharset = unreadableFormCharset(firstHeader(ctx.raw.headers['content-type']), inspected);
    if (formCharset !== undefined) return this.refuseCharset(ctx, formCharset);
    // form fields in a multipart type the WAF does not parse as a form (multipart/related, mixed)
    if (formFieldsOutsideFormData(firstHeader(ctx.raw.headers['content-type']), inspected)) {
      return this.refuseBody(ctx, 415, 'Unsupported Media Type: form-data parts are inspected in multipart/form-data only', 'multipart_type');
    }

    const sendTo: Member[] = [];
    for (const m of buffered) {
      if (inspected.length <= limitOf(m)) sendTo.push(m);
      else if (this.rejectsOverLimit(ctx, m)) return text(413, 'Payload Too Large', 'body_size_exceeded');
      else {
        metrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
        withheld.push(m);
      }
    }
    if (sendTo.length > 0) {
      const event = { correlation_id: cid, data: inspected.toString('base64'), is_last: true, total_size: inspected.length, chunk_index: 0, bytes_received: inspected.length };
      const merged = await this.fanOut(ctx, sendTo, MessageType.RequestBodyChunk, 'request_body_chunk', cid, event, (m) => m.settings.timeoutMs ?? m.def.timeoutMs);
      if (merged.response) return merged.response;
      applyAgentHeaderOps(ctx.upstreamHeaders, merged.requestOps);
      chain.responseOps.push(...merged.responseOps);
      if (merged.bodyMutation !== undefined) {
        upstreamBody = merged.bodyMutation === 'drop' ? Buffer.alloc(0) : merged.bodyMutation;
        return this.finishBody(ctx, upstreamBody, decoded);
      }
    }
    return this.finishBody(ctx, upstreamBody, false);
  }

  private refuseCharset(ctx: RequestContext, charset: string): LocalResponse {
    // echoed only when it is a plain name: the client wrote it
    const named = /^[a-z0-9._:-]{1,40}$/.test(charset) ? ` ${charset}` : '';
    return this.refuseBody(ctx, 415, `Unsupported Media Type: request bodies in charset${named} are not inspected`, 'unsupported_charset');
  }

  /** Sets the body to replay; a replaced body gets a matching Content-Length (and loses its coding if agents saw it decoded). */
  private finishBody(ctx: RequestContext, body: Buffer, decodedReplacement: boolean): undefined {
    if (body !== ctx.body) {
      ctx.body = body;
      delete ctx.upstreamHeaders['transfer-encoding'];
      ctx.upstreamHeaders['content-length'] = String(body.length);
      if (decodedReplacement) delete ctx.upstreamHeaders['content-encoding'];
    }
    return undefined;
  }

  /**
   * Sends one event to several agents in parallel and merges in chain order: the first
   * non-allow decision (or fail-closed failure) wins and cancels the calls still running.
   */
  async fanOut(
    ctx: RequestContext,
    members: Member[],
    type: number,
    eventName: string,
    cid: string,
    event: unknown,
    timeoutOf: (m: Member) => number,
  ): Promise<Merged> {
    const merged = emptyMerged();
    // One agent (the usual route): awaited directly, the request itself is the canceller.
    if (members.length === 1) {
      const m = members[0]!;
      const started = performance.now();
      const id = cid + m.cidSuffix;
      let outcome: Outcome;
      try {
        const reply = await m.client.call(type, id, m.cidSuffix ? withCorrelationId(event, id) : event, { timeoutMs: timeoutOf(m), cancel: ctx });
        observeLatency(m, eventName, started);
        outcome = { ok: true, reply };
      } catch (error) {
        outcome = { ok: false, error: error as AgentCallError };
      }
      this.merge(ctx, m, outcome, merged, eventName);
      return merged;
    }
    // Cancelled when the client leaves or when an earlier agent in the chain decided.
    const stop = new CancelScope();
    const onClientGone = () => stop.cancel(CancelReason.ClientDisconnect);
    ctx.onCancel(onClientGone);
    const cancel: CallCanceller = stop;
    const calls = members.map((m) => {
      const started = performance.now();
      const id = cid + m.cidSuffix;
      return m.client.call(type, id, m.cidSuffix ? withCorrelationId(event, id) : event, { timeoutMs: timeoutOf(m), cancel }).then(
        (reply): Outcome => {
          observeLatency(m, eventName, started);
          return { ok: true, reply };
        },
        (error: AgentCallError): Outcome => ({ ok: false, error }),
      );
    });
    try {
      for (let i = 0; i < members.length; i++) {
        if (this.merge(ctx, members[i]!, await calls[i]!, merged, eventName)) return merged;
      }
      return merged;
    } finally {
      ctx.offCancel(onClientGone);
      if (merged.response) stop.cancel(CancelReason.BlockedByAgent);
    }
  }

  /** Merges one agent's outcome into `merged`, in chain order; true when it decided (the rest is not looked at). */
  private merge(ctx: RequestContext, m: Member, outcome: Outcome, merged: Merged, eventName: string): boolean {
    const metrics = this.gen.manager.metrics;
    if (!outcome.ok) {
      const { error } = outcome;
      if (error.kind === 'cancelled') {
        // The client went away: nobody is waiting for an answer.
        merged.response = text(499, 'Client closed request', 'client_closed');
        return true;
      }
      metrics.decisions.inc({ agent: m.def.id, decision: error.kind === 'timeout' || error.kind === 'circuit_open' ? error.kind : 'error' });
      if (error.kind === 'timeout') metrics.timeouts.inc({ agent: m.def.id, event: eventName });
      else metrics.errors.inc({ agent: m.def.id, event: eventName, kind: error.kind });
      if (this.failureMode(ctx, m) === 'closed') {
        ctx.log.warn({ agent: m.def.id, event: eventName, err: error.message }, 'agent failed; failure-mode closed');
        merged.response = failureResponse(error);
        this.audit(ctx, m, 'blocked', { reason: `agent_${error.kind}`, status_code: merged.response.status });
        return true;
      }
      ctx.log.warn({ agent: m.def.id, event: eventName, err: error.message }, 'agent failed; failure-mode open, skipping it');
      metrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
      return false;
    }
    const { reply } = outcome;
    m.cells.decision(reply.decision.kind).value++;
    if (reply.tags.length > 0) ctx.audit.tags.push(...reply.tags);
    if (reply.ruleIds.length > 0) ctx.audit.ruleIds.push(...reply.ruleIds);
    const local = decisionResponse(reply);
    if (local) {
      merged.response = local;
      this.audit(ctx, m, decisionEventType(reply, true), { action: reply.decision.kind, status_code: local.status, rule_ids: reply.ruleIds, tags: reply.tags, reason: reply.reasonCodes.join(',') || undefined, confidence: reply.confidence });
      return true;
    }
    if (reply.requestHeaderOps.length > 0) merged.requestOps.push(...reply.requestHeaderOps);
    if (reply.responseHeaderOps.length > 0) merged.responseOps.push(...reply.responseHeaderOps);
    if (reply.requestBodyMutation !== undefined) merged.bodyMutation = reply.requestBodyMutation;
    if (reply.responseBodyMutation !== undefined) merged.responseBodyMutation = reply.responseBodyMutation;
    if (reply.tags.length > 0 || reply.ruleIds.length > 0) {
      this.audit(ctx, m, decisionEventType(reply, false), { action: 'allow', rule_ids: reply.ruleIds, tags: reply.tags, reason: reply.reasonCodes.join(',') || undefined, confidence: reply.confidence });
    }
    return false;
  }

  /** A body the agents cannot read as the application would: refused by the filter itself, audited as a block. */
  private refuseBody(ctx: RequestContext, status: number, message: string, reason: string): LocalResponse {
    this.gen.services.audit(requestAuditEvent(ctx, 'blocked', { timestamp: new Date().toISOString(), reason, status_code: status, filter: this.id }));
    return text(status, message, reason);
  }

  private audit(ctx: RequestContext, m: Member, eventType: AuditEventType, fields: Record<string, unknown>): void {
    this.gen.services.audit(requestAuditEvent(ctx, eventType, { timestamp: new Date().toISOString(), agent_id: m.def.id, ...fields }));
  }
}

/**
 * The one-agent request_headers call (AgentFilter.headersCall): the transport's reply sink that settles
 * the request's promise. It runs inside the connection's read, so whatever applying the outcome
 * throws rejects the request instead of escaping into the socket's callback.
 */
class HeadersCall implements ReplySink {
  constructor(
    private readonly filter: AgentFilter,
    private readonly ctx: RequestContext,
    private readonly m: Member,
    private readonly chain: Chain,
    private readonly started: number,
    private readonly settle: (local: LocalResponse | undefined) => void,
    private readonly fail: (err: unknown) => void,
  ) {}

  resolve(reply: AgentReply): void {
    try {
      this.settle(this.filter.headersReplied(this.ctx, this.m, this.chain, this.started, reply));
    } catch (err) {
      this.fail(err);
    }
  }

  reject(error: AgentCallError): void {
    try {
      this.settle(this.filter.headersOutcome(this.ctx, this.m, this.chain, { ok: false, error }));
    } catch (err) {
      this.fail(err);
    }
  }
}

/**
 * A reply naming rules (a WAF's detections, sentinel-reference.md §2.1 `audit.rule_ids`) is a
 * `waf_block` when it refuses the request and a `waf_match` when it lets it through; any other
 * reply worth recording is an `agent_decision`.
 */
export function decisionEventType(reply: AgentReply, refused: boolean): AuditEventType {
  if (reply.ruleIds.length === 0) return 'agent_decision';
  return refused ? 'waf_block' : 'waf_match';
}

/** The first chain of the request with this filter among its members and `done` not yet set (a loop: no closures per call). */
function chainOf(state: RequestState, filterId: string, done: 'responseDone' | 'responseBodyDone' | 'completeDone'): Chain | undefined {
  for (const c of state.chains) {
    if (c[done]) continue;
    for (const m of c.members) if (m.settings.id === filterId) return c;
  }
  return undefined;
}

/** An allow with no header operations, audit tags or rule ids, no body mutation: nothing for merge to apply or record but its count. */
export function isBareAllow(reply: AgentReply): boolean {
  return (
    reply.decision.kind === 'allow' &&
    reply.requestHeaderOps.length === 0 &&
    reply.responseHeaderOps.length === 0 &&
    reply.tags.length === 0 &&
    reply.ruleIds.length === 0 &&
    reply.requestBodyMutation === undefined &&
    reply.responseBodyMutation === undefined
  );
}

function emptyMerged(): Merged {
  return { requestOps: [], responseOps: [], bodyMutation: undefined, responseBodyMutation: undefined, response: undefined };
}

export interface Merged {
  requestOps: HeaderOp[];
  responseOps: HeaderOp[];
  bodyMutation: undefined | 'drop' | Buffer;
  responseBodyMutation: undefined | 'drop' | Buffer;
  response: LocalResponse | undefined;
}

/**
 * Stream mode: each chunk goes to the streaming agents as it arrives (one chunk is held back so
 * the last one can carry is_last). Reading pauses while agents look at a chunk.
 */
class BodyStreamer {
  private held: Buffer | undefined;
  private index = 0;
  private received = 0;
  private readonly chunks: Buffer[] = [];
  private readonly replacements = new Map<number, Buffer>();
  response: LocalResponse | undefined;
  private readonly requestOps: HeaderOp[] = [];
  private readonly responseOps: HeaderOp[] = [];

  constructor(
    private readonly filter: AgentFilter,
    private readonly ctx: RequestContext,
    private readonly members: Member[],
    private readonly cid: string,
  ) {}

  push(chunk: Buffer): Promise<void> | undefined {
    this.chunks.push(chunk);
    const previous = this.held;
    this.held = chunk;
    if (!previous) return undefined;
    return this.enqueue(previous, false);
  }

  async finish(): Promise<{ response?: LocalResponse; body?: Buffer; requestOps: HeaderOp[]; responseOps: HeaderOp[] }> {
    await this.tail.catch(() => undefined);
    if (!this.response) await this.enqueue(this.held ?? Buffer.alloc(0), true).catch(() => undefined);
    if (this.response) return { response: this.response, requestOps: [], responseOps: [] };
    const body = this.replacements.size > 0 ? Buffer.concat(this.chunks.map((c, i) => this.replacements.get(i) ?? c)) : undefined;
    return { ...(body ? { body } : {}), requestOps: this.requestOps, responseOps: this.responseOps };
  }

  // One chunk at a time per request: events of one correlation id must not overlap.
  private tail: Promise<void> = Promise.resolve();
  private enqueue(chunk: Buffer, isLast: boolean): Promise<void> {
    this.tail = this.tail.then(() => {
      if (this.response) throw new Error('stopped by agent');
      return this.send(chunk, isLast);
    });
    return this.tail;
  }

  private async send(chunk: Buffer, isLast: boolean): Promise<void> {
    const index = this.index++;
    this.received += chunk.length;
    const event = { correlation_id: this.cid, data: chunk.toString('base64'), is_last: isLast, total_size: isLast ? this.received : null, chunk_index: index, bytes_received: this.received };
    const merged = await this.filter.fanOut(this.ctx, this.members, MessageType.RequestBodyChunk, 'request_body_chunk', this.cid, event, (m) => m.def.chunkTimeoutMs);
    if (merged.response) {
      this.response = merged.response;
      throw new Error('stopped by agent');
    }
    this.requestOps.push(...merged.requestOps);
    this.responseOps.push(...merged.responseOps);
    if (merged.bodyMutation !== undefined) this.replacements.set(index, merged.bodyMutation === 'drop' ? Buffer.alloc(0) : merged.bodyMutation);
  }
}

function wants(m: Member, event: 'request_headers' | 'request_body' | 'response_headers' | 'response_body' | 'request_complete'): boolean {
  const phase = m.settings.phase;
  const requestSide = event !== 'response_headers' && event !== 'response_body';
  if (phase === 'request' && !requestSide) return false;
  if (phase === 'response' && requestSide && event !== 'request_complete') return false;
  if (event === 'request_body') return sendsRequestBodies(m.settings, m.def);
  return m.def.events.has(event);
}

/** The request_headers event of a request (a RequestHeadersMessage: the frame writer hand-encodes its JSON). */
export function requestHeadersEvent(ctx: RequestContext, cid: string): RequestHeadersMessage {
  return new RequestHeadersMessage(
    cid,
    {
      correlation_id: cid,
      request_id: ctx.traceId,
      client_ip: ctx.clientIp,
      client_port: ctx.clientPort,
      server_name: ctx.tls?.serverName ?? (ctx.host || null),
      protocol: protocolLabel(ctx.httpVersion),
      tls_version: ctx.tls?.version ?? null,
      tls_cipher: ctx.tls?.cipher ?? null,
      route_id: ctx.routeId ?? null,
      upstream_id: ctx.upstreamId ?? null,
      timestamp: ctx.timestamp,
      // with tracing on, the agent's parent is this filter's span (sampled) or the request's
      // unsampled context; with tracing off the client's traceparent
      traceparent: ctx.trace ? ctx.trace.current.traceparent : (ctx.traceparent ?? firstHeader(ctx.raw.headers.traceparent) ?? null),
      ...(ctx.tls?.clientSubject !== undefined
        ? { client_cert_subject: ctx.tls.clientSubject, client_cert_sans: ctx.tls.clientSans ?? [], client_cert_fingerprint: ctx.tls.clientFingerprint256 ?? '' }
        : {}),
    },
    ctx.method,
    ctx.query ? `${ctx.path}?${ctx.query}` : ctx.path,
    agentHeaders(ctx.raw),
  );
}

/**
 * The request's headers as agents get them. An HTTP/2 request whose body follows without
 * `content-length` says so in no header, and an agent that tells a body by its head (sentinel-waf,
 * in-process or not) decided at the headers and let the body through uninspected (session 23 WAF
 * evasion audit): such a request carries `transfer-encoding: chunked` to the agents, what the same
 * body of unknown length is over HTTP/1.1. The upstream gets the gateway's own framing as before.
 */
function agentHeaders(req: RequestContext['raw']): RequestContext['raw']['headers'] {
  const h = req.headers;
  if (h['content-length'] !== undefined || h['transfer-encoding'] !== undefined || !h2BodyFollows(req)) return h;
  return { ...h, 'transfer-encoding': 'chunked' };
}

/** `HTTP/<version>`, the usual ones without a string built per event. */
export function protocolLabel(version: string): string {
  switch (version) {
    case '1.1':
      return 'HTTP/1.1';
    case '2.0':
      return 'HTTP/2.0';
    case '1.0':
      return 'HTTP/1.0';
    default:
      return `HTTP/${version}`;
  }
}

/** A copy of an event addressed to another correlation id (top level and metadata). */
function withCorrelationId(event: unknown, id: string): unknown {
  const e: Record<string, unknown> = { ...(plainEvent(event) as Record<string, unknown>), correlation_id: id };
  if (typeof e.metadata === 'object' && e.metadata !== null) e.metadata = { ...(e.metadata as Record<string, unknown>), correlation_id: id };
  return e;
}

function observeLatency(m: Member, eventName: string, started: number): void {
  const ms = performance.now() - started;
  m.cells.latency(eventName).observe(ms / 1000);
  m.client.latency.observe(ms);
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
