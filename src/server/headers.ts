// Pure header transforms between the client and the upstream (design.md §5 "Headers").
import type { HeaderMap } from '../pipeline/types.ts';
import type { HeaderOpsConfig } from '../config/compile.ts';

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus ones a proxy must not forward as-is. */
export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/**
 * Message framing and connection-specific headers, which the gateway alone writes: an agent's
 * header operations or block headers and a route's header policies may not set them (a second
 * framing beside the gateway's, or a name Node refuses to write on HTTP/2, RFC 9113 §8.2.2).
 */
export const GATEWAY_OWNED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer', 'http2-settings']);

/** The method-override header names (stripped below; a route may forward them, see forwardMethodOverride). */
export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

/**
 * Headers a client must never be able to inject upstream: Sentinel's internal ones, URL overrides
 * some frameworks (IIS, Symfony, Laminas) obey in place of the request line, which would let a
 * request routed as `/public` be served as `/admin`, and method overrides (Express
 * method-override, Symfony, Laravel, OData) that make the upstream act on another method than the
 * one routed, rate-limited and cached on (a cached GET answered as a DELETE).
 */
const STRIP_INBOUND = new Set<string>(['x-internal-token', 'authorization-internal', 'x-original-url', 'x-rewrite-url', ...METHOD_OVERRIDE_HEADERS]);

/**
 * Route `policies { forward-method-override "PUT" "DELETE" ... }` (docs/security.md, "Identity
 * headers"): puts back into the upstream headers `out` the override headers of a **POST** whose
 * value names one of the `allowed` methods (upper case; compared case-insensitively), as sent.
 * Anything else stays removed: an override on another method (a GET turned into a DELETE would be
 * cached and rate-limited as a GET), a value not listed, a repeated header (Node joins it into a
 * list), a name `Connection` lists. The frameworks that read these headers honour them on POST
 * only by default (Express method-override, Symfony, Laravel, Rack::MethodOverride).
 */
export function forwardMethodOverride(out: HeaderMap, method: string, headers: Record<string, string | string[] | undefined>, allowed: ReadonlySet<string>): void {
  if (method !== 'POST') return;
  let listed: Set<string> | undefined;
  for (const name of METHOD_OVERRIDE_HEADERS) {
    const v = headers[name];
    if (typeof v !== 'string' || !allowed.has(v.toUpperCase())) continue;
    listed ??= connectionListed(headers.connection) ?? new Set();
    if (!listed.has(name)) out[name] = v;
  }
}

/**
 * Client identity and original-request headers that only a trusted proxy may set: from any other
 * peer they are dropped (X-Forwarded-For/-Proto/-Host are overwritten; X-Real-IP is the resolved
 * client address from any peer). docs/security.md "Identity headers".
 */
const PROXY_ONLY = new Set([
  'forwarded',
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-forwarded',
  'forwarded-for',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-server',
  'x-forwarded-ssl',
  'x-url-scheme',
  'front-end-https',
  // read as the original scheme, host or URL by Rack (X-Forwarded-Scheme), Traefik and
  // forward-auth servers (X-Forwarded-Uri), and others; X-Host / X-Original-Host are known
  // cache-poisoning vectors
  'x-forwarded-scheme',
  'x-forwarded-protocol',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-original-host',
  'x-host',
]);

/**
 * Headers that say who the client is or how it reached us: the gateway writes them
 * (X-Forwarded-For, X-Real-IP, X-Forwarded-Proto, X-Forwarded-Host) or, from a peer outside
 * trusted-proxies, removes them. A setting keyed on one reads the gateway's value, not the client's.
 */
export function isIdentityHeader(lowerName: string): boolean {
  return PROXY_ONLY.has(lowerName) || lowerName === 'x-forwarded-for' || lowerName === 'x-forwarded-proto' || lowerName === 'x-forwarded-host';
}

/**
 * Request headers the gateway writes anew for every request: the correlation ids below and the
 * forwarder's `traceparent`. A setting keyed on one never sees the same value twice (the cache
 * treats a Vary on one as `Vary: *`).
 */
const WRITTEN_PER_REQUEST: ReadonlySet<string> = new Set(['x-correlation-id', 'x-trace-id', 'traceparent']);

export function isWrittenPerRequest(lowerName: string): boolean {
  return WRITTEN_PER_REQUEST.has(lowerName);
}

export interface ForwardHeaderInput {
  /** node's req.headers (lower-cased names) */
  headers: Record<string, string | string[] | undefined>;
  /** the resolved client (the peer, or behind trusted proxies the first untrusted X-Forwarded-For hop) */
  clientIp: string;
  /** the direct peer (socket remote address): the hop appended to X-Forwarded-For */
  peerIp: string;
  /** whether the direct peer is a trusted proxy (its X-Forwarded-* are kept and appended to) */
  trustedPeer: boolean;
  protocol: 'http' | 'https';
  traceId: string;
}

/** Names listed in Connection are hop-by-hop for this message too. */
export function connectionListed(v: string | string[] | undefined): Set<string> | undefined {
  if (!v) return undefined;
  const s = Array.isArray(v) ? v.join(',') : v;
  const out = new Set<string>();
  for (const part of s.split(',')) {
    const t = part.trim().toLowerCase();
    if (t) out.add(t);
  }
  return out;
}

export function forwardHeaders(input: ForwardHeaderInput): HeaderMap {
  const { headers, trustedPeer } = input;
  const listed = connectionListed(headers.connection);
  const out: HeaderMap = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || STRIP_INBOUND.has(name) || name.charCodeAt(0) === 58 /* ':' h2 pseudo */) continue;
    if (!trustedPeer && PROXY_ONLY.has(name)) continue;
    // `Connection: host` must not make the upstream see the target address instead of the vhost
    if (listed?.has(name) && name !== 'host') continue;
    out[name] = headers[name];
  }
  // gRPC needs `te: trailers` end to end.
  const te = headers.te;
  if (typeof te === 'string' && /(^|,)\s*trailers\s*(,|$)/i.test(te)) out.te = 'trailers';
  // Behind a trusted proxy the hop that connected to us is appended (the proxy itself), so the
  // chain stays complete; from anyone else the chain starts at the peer.
  const xff = trustedPeer ? headers['x-forwarded-for'] : undefined;
  const prior = Array.isArray(xff) ? xff.join(', ') : xff;
  out['x-forwarded-for'] = prior ? `${prior}, ${input.peerIp}` : input.peerIp;
  // Always the address the gateway resolved (rate limits, agents, the log use it): a trusted proxy
  // that does not set X-Real-IP itself (an ALB, a CDN) passes the client's own on, and kept, it
  // told the upstream an address nobody resolved (docs/security.md, "Identity headers").
  out['x-real-ip'] = input.clientIp;
  if (!trustedPeer || !headers['x-forwarded-proto']) out['x-forwarded-proto'] = input.protocol;
  if (!trustedPeer || !headers['x-forwarded-host']) {
    if (headers.host !== undefined) out['x-forwarded-host'] = headers.host;
    else if (headers[':authority'] !== undefined) out['x-forwarded-host'] = headers[':authority'];
  }
  if (out.host === undefined && typeof headers[':authority'] === 'string') out.host = headers[':authority'];
  out['x-correlation-id'] = input.traceId;
  out['x-trace-id'] = input.traceId;
  out['x-forwarded-by'] = 'Sentinel';
  return out;
}

/** Response headers from the upstream, minus hop-by-hop ones. */
export function responseHeaders(upstream: Record<string, string | string[] | undefined>): HeaderMap {
  const listed = connectionListed(upstream.connection);
  const out: HeaderMap = {};
  for (const name in upstream) {
    if (HOP_BY_HOP.has(name) || listed?.has(name)) continue;
    out[name] = upstream[name];
  }
  return out;
}

/** Sentinel applies rename -> set -> add -> remove. Header names are matched case-insensitively. */
export function applyHeaderOps(headers: HeaderMap, ops: HeaderOpsConfig): void {
  for (const [from, to] of ops.rename) {
    const f = from.toLowerCase();
    if (headers[f] !== undefined) {
      headers[to.toLowerCase()] = headers[f];
      delete headers[f];
    }
  }
  for (const [name, value] of ops.set) headers[name.toLowerCase()] = value;
  for (const [name, value] of ops.add) {
    const n = name.toLowerCase();
    const cur = headers[n];
    headers[n] = cur === undefined ? value : Array.isArray(cur) ? [...cur, value] : [cur, value];
  }
  for (const name of ops.remove) delete headers[name.toLowerCase()];
}
