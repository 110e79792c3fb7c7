// `sentinel explain`: which route a request would take and why, from the compiled config, the
// real front door (src/server/front-door.ts) and the real matcher (src/routing/match.ts). The
// report is plain data: render.ts prints it for people, --json prints it as is (stable keys).
import type { CompiledConfig, CompiledListener, CompiledRoute } from '../../config/compile.ts';
import { frameInspectingFilters, type ExplainSection, type ExplainSettings, type ExplainValue, type FeatureManifest } from '../../pipeline/feature.ts';
import { frontDoor, isAnswer, type FrontDoorRequest } from '../../server/front-door.ts';
import { UNTRUSTED_PEER } from '../../server/headers.ts';
import { compileTrusted, isTrusted } from '../../server/trusted-proxies.ts';
import { upgradeRefusal } from '../../websocket/origin.ts';
import { bodylessWithDeclaredBody } from '../../server/request-body.ts';
import { methodsNamed, overridesInUrlencoded, refusedOverride } from '../../server/method-param.ts';
import { messageInspection } from '../../websocket/messages.ts';
import { firstFailure, matchRoute, requestMatchInput, stripPort, type MatchInput } from '../../routing/match.ts';

export interface ExplainRequest {
  method: string;
  /** origin-form (`/x?y`) or absolute-form (`http://host/x`), as a client would send it */
  target: string;
  /** `Name: value` pairs in the order given */
  headers: [string, string][];
  /** the listener that receives it (default: the first one) */
  listener?: string;
  /** the client address, for allow-from (default: not checked) */
  clientIp?: string;
}

export type CandidateStatus = 'matched' | 'failed' | 'other-listener' | 'not-reached';

export interface Candidate {
  route: string;
  priority: number;
  specificity: number;
  status: CandidateStatus;
  /** the first condition that failed (failed, other-listener), in evaluation order */
  failed?: { condition: string; expected: string; actual: string | null };
  /** not-reached only: whether its conditions match too (an earlier route shadows it) */
  would_match?: boolean;
}

export interface RouteDetails {
  id: string;
  priority: number;
  specificity: number;
  service_type: string;
  conditions: { condition: string; expected: string }[];
  listeners: string[] | null;
  allow_from: { addresses: string[]; client_ip: string | null; allowed: boolean | null } | null;
  builtin: string | null;
  websocket: boolean;
  /** `websocket-allowed-origins`, normalised; absent when the route leaves the Origin unchecked */
  websocket_allowed_origins?: string[];
  /**
   * `websocket-inspection #true`: the filters shown the frames, whole messages or frame by frame and
   * the per-message limits; or, with no such filter, why it has no effect
   */
  websocket_inspection?: { active: true; filters: string[]; whole_messages: boolean; max_message_bytes: number | null; max_frame_bytes: number; max_fragments: number } | { active: false; reason: string };
  failure_mode: string;
  max_body_bytes: number;
  /** the route's own request-buffering threshold (policies max-body-buffer-bytes), when set */
  body_buffer_bytes?: number;
  /** policies forward-method-override, when set */
  forward_method_override?: string[];
  /** policies get-body "forward", when set (the default refuses a GET/HEAD with a body: 400) */
  get_body?: 'forward';
  timeout_secs: number | null;
  request_headers: ExplainValue;
  response_headers: ExplainValue;
  filters: { id: string; type: string; settings: ExplainSettings }[];
  sections: ExplainSection[];
}

export interface ExplainReport {
  config: string;
  warnings: number;
  listener: { id: string; address: string; protocol: string };
  request: { method: string; target: string; headers: [string, string][]; host_defaulted: boolean };
  /** set when the front door answers the request itself (a refusal, or OPTIONS *) */
  front_door: { status: number; kind: string | null; message: string } | null;
  normalised: { path: string; query: string; host: string } | null;
  /** the listener's /_/health or /_/ready probe answers before any route */
  probe: string | null;
  candidates: Candidate[];
  /** the route whose conditions matched, or null */
  matched: string | null;
  /** the route that serves the request: the match, else the listener's default-route */
  served_by: { route: string; via: 'match' | 'default-route' } | null;
  /** what answers when no route serves it */
  not_found: { status: number; message: string } | null;
  route: RouteDetails | null;
  /** answers given after the match, before any filter (allow-from, websocket, body size) */
  refusals: { status: number; reason: string }[];
  /**
   * set when a `query-param` condition the matcher evaluated read a parameter sent with different
   * values, or also found when `;` separates: the gateway answers 400 `ambiguous_query_param`
   * right after matching, whatever route matched (docs/security.md, "Parser differentials")
   */
  ambiguous_query: { status: 400; kind: 'ambiguous_query_param'; param: string; values: string[]; values_split_on_semicolon: string[] | null } | null;
  /**
   * a POST on a listener whose routes name methods: the `_method` overrides (query, form or JSON
   * body) the gateway refuses with 400 `method_override`, as the route a request with that method
   * would take (null: none; `method` "*" is any method no route names); absent otherwise
   * (docs/security.md, "Method overrides in parameters")
   */
  method_overrides?: { refused: { method: string; route: string | null }[] };
}

/** Node's header table from `Name: value` pairs: lower-cased names, repeats joined with ", ". */
function headerTable(pairs: [string, string][]): { headers: Record<string, string>; rawHeaders: string[] } {
  const headers: Record<string, string> = {};
  const rawHeaders: string[] = [];
  for (const [name, value] of pairs) {
    rawHeaders.push(name, value);
    const k = name.toLowerCase();
    // Node keeps the first Host; other repeated headers are joined
    if (headers[k] === undefined) headers[k] = value;
    else if (k !== 'host') headers[k] = `${headers[k]}, ${value}`;
  }
  return { headers, rawHeaders };
}

function pickListener(config: CompiledConfig, id: string | undefined): CompiledListener {
  if (id === undefined) return config.listeners[0]!;
  const l = config.listeners.find((x) => x.id === id);
  if (!l) throw new Error(`unknown listener "${id}" (listeners: ${config.listeners.map((x) => x.id).join(', ')})`);
  return l;
}

function hostPort(l: CompiledListener): string {
  const host = l.host === '0.0.0.0' || l.host === '::' ? '127.0.0.1' : l.host;
  return `${host.includes(':') ? `[${host}]` : host}:${l.port}`;
}

function conditionsOf(r: CompiledRoute): { condition: string; expected: string }[] {
  return r.conditions.map((c) => ({ condition: c.kind, expected: c.expected }));
}

function candidateFor(r: CompiledRoute, listener: CompiledListener, input: MatchInput): Omit<Candidate, 'status'> & { matches: boolean } {
  const base = { route: r.id, priority: r.priority, specificity: r.specificity };
  if (r.listeners && !r.listeners.includes(listener.id)) {
    return { ...base, matches: false, failed: { condition: 'listener', expected: r.listeners.join(', '), actual: listener.id } };
  }
  const f = firstFailure(r.conditions, input);
  if (!f) return { ...base, matches: true };
  return { ...base, matches: false, failed: { condition: f.kind, expected: f.expected, actual: f.actual(input) ?? null } };
}

// sections in the order a request meets them: limits and agents, then the cache, then the upstream
const SECTION_ORDER = ['rate-limit', 'agents', 'body-inspection', 'caching', 'builtins', 'forwarding', 'balancing', 'health', 'retry'];
function rank(f: FeatureManifest): number {
  const i = SECTION_ORDER.indexOf(f.name);
  return i < 0 ? SECTION_ORDER.length : i;
}

/**
 * What frame inspection does on a route with `websocket-inspection #true` (the settings the session
 * runs): nothing unless one of its filters is shown the frames (an agent subscribed to websocket_frame).
 */
function websocketInspection(config: CompiledConfig, features: readonly FeatureManifest[], r: CompiledRoute): NonNullable<RouteDetails['websocket_inspection']> {
  const filters = frameInspectingFilters(config, features, r);
  if (filters.length === 0) return { active: false, reason: 'no filter on the route subscribes to websocket_frame (frames are relayed raw, compression offers pass)' };
  const m = messageInspection(r.raw);
  return { active: true, filters, whole_messages: m.wholeMessages, max_message_bytes: m.maxMessageBytes ?? null, max_frame_bytes: m.maxFrameBytes, max_fragments: m.maxFragments };
}

function routeDetails(config: CompiledConfig, features: readonly FeatureManifest[], r: CompiledRoute, clientIp: string | undefined): RouteDetails {
  const filters = r.filters.map((id) => {
    const f = config.filters.get(id)!;
    let settings: ExplainSettings | undefined;
    for (const feature of features) {
      settings = feature.explainFilter?.(config, f, r);
      if (settings) break;
    }
    return { id, type: f.type, settings: settings ?? { note: `filter type "${f.type}" is not implemented: it does nothing` } };
  });
  const sections = [...features].sort((a, b) => rank(a) - rank(b)).flatMap((feature) => feature.explainRoute?.(config, r) ?? []);
  const allow = r.raw['allow-from'];
  return {
    id: r.id,
    priority: r.priority,
    specificity: r.specificity,
    service_type: r.serviceType,
    conditions: conditionsOf(r),
    listeners: r.listeners ? [...r.listeners] : null,
    allow_from: allow && r.allowFrom ? { addresses: [...allow], client_ip: clientIp ?? null, allowed: clientIp === undefined ? null : r.allowFrom(clientIp) } : null,
    builtin: r.builtin ?? null,
    websocket: r.websocket,
    ...(r.websocketOrigins ? { websocket_allowed_origins: [...r.websocketOrigins] } : {}),
    ...(r.websocket && r.raw['websocket-inspection'] === true ? { websocket_inspection: websocketInspection(config, features, r) } : {}),
    failure_mode: r.failureMode,
    max_body_bytes: Math.min(config.limits['max-body-size-bytes'], r.maxBodyBytes ?? Infinity),
    ...(r.bodyBufferBytes !== undefined ? { body_buffer_bytes: r.bodyBufferBytes } : {}),
    ...(r.methodOverrides !== undefined ? { forward_method_override: [...r.methodOverrides] } : {}),
    ...(r.getBody === 'forward' ? { get_body: 'forward' as const } : {}),
    timeout_secs: r.timeoutMs === undefined ? null : r.timeoutMs / 1000,
    request_headers: r.requestHeaders ? { ...r.requestHeaders } : null,
    response_headers: r.responseHeaders ? { ...r.responseHeaders } : null,
    filters,
    sections,
  };
}

/** Explains one request against a compiled config. Throws Error on an unknown listener. */
export function explain(config: CompiledConfig, features: readonly FeatureManifest[], req: ExplainRequest, configName: string): ExplainReport {
  const listener = pickListener(config, req.listener);
  const pairs = [...req.headers];
  // curl would send the address it connects to; so does explain when neither the target nor -H names a host
  const hostDefaulted = !/^[a-z][a-z0-9+.-]*:\/\//i.test(req.target) && !pairs.some(([n]) => n.toLowerCase() === 'host');
  if (hostDefaulted) pairs.unshift(['Host', hostPort(listener)]);
  const { headers, rawHeaders } = headerTable(pairs);
  const method = req.method.toUpperCase();
  const wire: FrontDoorRequest = { method, url: req.target, headers, rawHeaders, httpVersionMajor: 1, httpVersionMinor: 1 };
  const report: ExplainReport = {
    config: configName,
    warnings: config.warnings.length,
    listener: { id: listener.id, address: `${listener.host}:${listener.port}`, protocol: listener.protocol },
    request: { method, target: req.target, headers: pairs, host_defaulted: hostDefaulted },
    front_door: null,
    normalised: null,
    probe: null,
    candidates: [],
    matched: null,
    served_by: null,
    not_found: null,
    route: null,
    refusals: [],
    ambiguous_query: null,
  };
  // the client is the peer (`--client-ip`): a trusted proxy keeps the identity headers the config lists
  const trustedPeer = req.clientIp !== undefined && isTrusted(compileTrusted(config.trustedProxies), req.clientIp);
  const admitted = frontDoor(wire, listener.protocol === 'https' ? 443 : 80, trustedPeer ? { trustedPeer, kept: config.trustedProxyHeaders } : UNTRUSTED_PEER);
  if (isAnswer(admitted)) {
    report.front_door = { status: admitted.status, kind: admitted.kind ?? null, message: admitted.message || 'answered by the gateway itself (OPTIONS *)' };
    return report;
  }
  // as the generation does: the normalised Host without its port, lower-cased
  const host = stripPort(headers.host ?? '').toLowerCase();
  report.normalised = { path: admitted.path, query: admitted.query, host };
  if (listener.probes && (admitted.path === '/_/health' || admitted.path === '/_/ready')) {
    report.probe = admitted.path;
    return report;
  }
  const input = requestMatchInput(method, admitted.path, admitted.query, host, headers);
  const served = config.routesByListener.get(listener.id) ?? config.routes;
  // the real matcher decides; the candidates list only says why the others did not win
  const chosen = matchRoute(served, input);
  // read now: the candidates below evaluate routes the matcher never reached, which must not count
  const ambiguous = input.ambiguousQuery;
  let reached = true;
  for (const r of config.routes) {
    const { matches, ...c } = candidateFor(r, listener, input);
    if (!reached) report.candidates.push({ route: c.route, priority: c.priority, specificity: c.specificity, status: 'not-reached', would_match: matches });
    else if (matches) {
      if (r !== chosen) throw new Error(`internal: explain found route "${r.id}" but the matcher chose "${chosen?.id ?? 'none'}"`);
      report.candidates.push({ ...c, status: 'matched' });
      reached = false;
    } else report.candidates.push({ ...c, status: c.failed?.condition === 'listener' ? 'other-listener' : 'failed' });
  }
  if (reached && chosen) throw new Error(`internal: the matcher chose "${chosen.id}" but explain found no match`);
  report.matched = chosen?.id ?? null;
  if (ambiguous !== undefined) {
    const values = new URLSearchParams(admitted.query).getAll(ambiguous);
    const split = admitted.query.includes(';') ? new URLSearchParams(admitted.query.replaceAll(';', '&')).getAll(ambiguous) : null;
    report.ambiguous_query = { status: 400, kind: 'ambiguous_query_param', param: ambiguous, values, values_split_on_semicolon: split };
    return report;
  }
  const fallback = listener.defaultRoute !== undefined ? config.routesById.get(listener.defaultRoute) : undefined;
  const route = chosen ?? fallback;
  if (!route) {
    report.not_found = { status: 404, message: 'No matching route found' };
    return report;
  }
  report.served_by = { route: route.id, via: chosen ? 'match' : 'default-route' };
  report.route = routeDetails(config, features, route, req.clientIp);
  if (report.route.allow_from?.allowed === false) report.refusals.push({ status: 403, reason: `client ${req.clientIp} is not in allow-from` });
  const wsRefusal = upgradeRefusal(route, headers);
  if (wsRefusal) report.refusals.push({ status: wsRefusal.status, reason: wsRefusal.message });
  // in the gateway's order: the upgrade gate, then a body on a bodiless method, then the size limit
  if (route.getBody === 'refuse' && bodylessWithDeclaredBody(report.request.method, { headers })) {
    report.refusals.push({ status: 400, reason: `get_body: a ${report.request.method} with a body (policies get-body "forward" forwards it)` });
  }
  const cl = headers['content-length'];
  if (cl !== undefined && Number(cl) > report.route.max_body_bytes) report.refusals.push({ status: 413, reason: `Content-Length ${cl} > ${report.route.max_body_bytes} bytes` });
  const methods = method === 'POST' ? methodsNamed(served) : [];
  if (methods.length > 0) {
    const rematch = (m: string) => matchRoute(served, { ...input, method: m }, fallback);
    const refused = [...methods, ''].filter((m) => m !== 'POST' && !route.methodOverrides?.has(m) && rematch(m) !== route);
    report.method_overrides = { refused: refused.map((m) => ({ method: m === '' ? '*' : m, route: rematch(m)?.id ?? null })) };
    const inQuery = refusedOverride(overridesInUrlencoded(admitted.query), route, route.methodOverrides, rematch);
    if (inQuery !== undefined) report.refusals.push({ status: 400, reason: `method_override: the query's _method names ${inQuery}, which route ${rematch(inQuery)?.id ?? '(none)'} would take` });
  }
  return report;
}
