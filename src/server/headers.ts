// Pure header transforms between the client and the upstream (design.md §5 "Headers").
import type { HeaderMap } from '../pipeline/types.ts';
import type { HeaderOpsConfig } from '../config/compile.ts';
import { normalizeHost } from './request-target.ts';

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
 * Upstream response headers the gateway never relays (session 23 audit): `Alt-Svc` advertises the
 * upstream's alternative services, which are not the gateway's (a client that followed one would go
 * around the gateway, or to a port it does not serve). A route's `response-headers` policy sets
 * the gateway's own.
 */
export const UPSTREAM_ONLY_RESPONSE = new Set(['alt-svc']);

/** Upstream response headers not relayed as they came: HOP_BY_HOP and UPSTREAM_ONLY_RESPONSE in one lookup a header. */
export const NOT_RELAYED_RESPONSE = new Set([...HOP_BY_HOP, ...UPSTREAM_ONLY_RESPONSE]);

/**
 * Message framing and connection-specific headers, which the gateway alone writes: an agent's
 * header operations or block headers and a route's header policies may not set them (a second
 * framing beside the gateway's, or a name Node refuses to write on HTTP/2, RFC 9113 §8.2.2).
 */
export const GATEWAY_OWNED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer', 'http2-settings']);

/**
 * Response header names Node's HTTP/2 layer writes with one value only (kSingleValueHeaders in
 * node:internal/http2/util, Node 20, without the pseudo-headers): writeHead throws
 * ERR_HTTP2_HEADER_SINGLE_VALUE for a list, so an upstream answer that repeats one (two
 * `X-Content-Type-Options: nosniff`, a framework's and a middleware's) was a 500 to every HTTP/2
 * client (docs/security.md, "Session 28 audit").
 */
export const HTTP2_SINGLE_VALUE: ReadonlySet<string> = new Set([
  'access-control-allow-credentials',
  'access-control-max-age',
  'access-control-request-method',
  'age',
  'authorization',
  'content-encoding',
  'content-language',
  'content-length',
  'content-location',
  'content-md5',
  'content-range',
  'content-type',
  'date',
  'dnt',
  'etag',
  'expires',
  'from',
  'host',
  'if-match',
  'if-modified-since',
  'if-none-match',
  'if-range',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'range',
  'referer',
  'retry-after',
  'tk',
  'upgrade-insecure-requests',
  'user-agent',
  'x-content-type-options',
]);

/**
 * Headers as an HTTP/2 response can carry them: a repeated single-value header keeps its first
 * value, the one Node's own HTTP/1.1 client (IncomingMessage drops later Content-Type, Location,
 * ETag ...) and HTTP/2 client read from such an answer. In place; only lists are looked up.
 */
export function singleValuedForHttp2(headers: HeaderMap): void {
  for (const name in headers) {
    const v = headers[name];
    if (Array.isArray(v)) headers[name] = http2HeaderValue(name, v);
  }
}

/** One header's value as an HTTP/2 response can carry it (see singleValuedForHttp2). */
export function http2HeaderValue<V extends string | string[]>(name: string, value: V): V | string {
  return Array.isArray(value) && value.length > 0 && HTTP2_SINGLE_VALUE.has(name) ? value[0]! : value;
}

/** The method-override header names (stripped below; a route may forward them, see forwardMethodOverride). */
export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;

/**
 * Headers a client must never be able to inject upstream: Sentinel's internal ones, URL overrides
 * some frameworks (IIS, Symfony, Laminas) obey in place of the request line, which would let a
 * request routed as `/public` be served as `/admin`, method overrides (Express
 * method-override, Symfony, Laravel, OData) that make the upstream act on another method than the
 * one routed, rate-limited and cached on (a cached GET answered as a DELETE), and a framework's
 * internal headers that a platform in front of it strips (session 31 audit): Next.js skips its
 * middleware, where applications check sessions, for `x-middleware-subrequest` (CVE-2025-29927,
 * before 15.2.3 / 14.2.25 / 13.5.9 / 12.3.5), and Vercel's `x-now-route-matches` made a page's
 * answer cacheable for everyone (CVE-2024-46982).
 */
const STRIP_INBOUND = new Set<string>(['x-internal-token', 'authorization-internal', 'x-original-url', 'x-rewrite-url', ...METHOD_OVERRIDE_HEADERS, 'x-middleware-subrequest', 'x-now-route-matches']);

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
 * The identity headers a trusted proxy's value may be kept for (`system { trusted-proxy-headers }`):
 * all but X-Forwarded-For (always read and appended to) and X-Real-IP (always the resolved client).
 */
export function isTrustableProxyHeader(lowerName: string): boolean {
  return lowerName !== 'x-real-ip' && lowerName !== 'x-forwarded-for' && isIdentityHeader(lowerName);
}

/**
 * Kept from a trusted proxy when `trusted-proxy-headers` is not set: the two every load balancer
 * writes itself (AWS ALB, GCP, Azure, Cloudflare for the scheme; ALB, nginx-ingress, Traefik for
 * the port), so a client behind one cannot choose them; values are checked (below) anyway.
 */
export const DEFAULT_TRUSTED_PROXY_HEADERS: ReadonlySet<string> = new Set(['x-forwarded-proto', 'x-forwarded-port']);

/** Who the peer is, as the front door needs it to normalise the identity headers. */
export interface PeerTrust {
  /** the direct peer is in `system { trusted-proxies }` */
  trustedPeer: boolean;
  /** the identity headers whose value a trusted proxy's request keeps (`trusted-proxy-headers`) */
  kept: ReadonlySet<string>;
}

/** An untrusted peer: every identity header it sends is removed (the gateway writes its own). */
export const UNTRUSTED_PEER: PeerTrust = { trustedPeer: false, kept: DEFAULT_TRUSTED_PROXY_HEADERS };

/**
 * Identity headers as the front door leaves them in the request, so every stage (route `header`
 * conditions, agents, the WAF, the cache key, rate-limit keys) reads the value the upstream gets
 * (docs/security.md, "Identity headers"): from an untrusted peer none; from a trusted proxy
 * X-Forwarded-For, and the names `trust.kept` lists when their value is well formed (one
 * value; a scheme of http/https; a Host the front door would take; a port; an RFC 7239 list).
 * Anything else is removed, and forwardHeaders writes the gateway's own X-Forwarded-Proto / -Host.
 * Costs one Set lookup per header name when the client sent none.
 */
export function normaliseIdentityHeaders(headers: Record<string, string | string[] | undefined>, trust: PeerTrust): void {
  for (const name in headers) {
    if (!isIdentityHeader(name)) continue;
    if (!trust.trustedPeer) delete headers[name];
    else if (name === 'x-forwarded-for') continue;
    else if (!trust.kept.has(name)) delete headers[name];
    else {
      const v = headers[name];
      const checked = typeof v === 'string' ? wellFormedProxyValue(name, v) : undefined;
      if (checked === undefined) delete headers[name];
      else if (checked !== v) headers[name] = checked;
    }
  }
}

/**
 * A trusted proxy's value of a kept identity header as the upstream gets it, or undefined when it
 * is not one well-formed value (a list whose members frameworks pick differently: Express takes the
 * first X-Forwarded-Host, Rails the last).
 */
export function wellFormedProxyValue(name: string, value: string): string | undefined {
  const v = value.trim();
  switch (name) {
    case 'x-forwarded-proto': {
      const p = v.toLowerCase();
      return p === 'http' || p === 'https' ? p : undefined;
    }
    case 'x-forwarded-host': {
      const h = normalizeHost(v, -1);
      return typeof h === 'string' ? h : undefined;
    }
    case 'x-forwarded-port':
      return /^\d{1,5}$/.test(v) && Number(v) >= 1 && Number(v) <= 65535 ? String(Number(v)) : undefined;
    case 'forwarded':
      return isForwardedList(v) ? v : undefined;
    default:
      // other names are kept as sent (Node refuses control bytes in values)
      return v === '' ? undefined : value;
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** An RFC 7239 node: `unknown`, an obfuscated `_id`, IPv4 or `[IPv6]`, optionally with `:port` (digits or `_id`). */
const FORWARDED_NODE = /^(?:unknown|_[A-Za-z0-9._-]+|\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\])(?::(?:\d{1,5}|_[A-Za-z0-9._-]+))?$/;

/**
 * `Forwarded` (RFC 7239 §4): elements separated by `,`, pairs by `;`, each `token=token` or
 * `token="quoted"`, a parameter at most once per element; `for`/`by` nodes, `host` a Host the
 * front door would take, `proto` http or https. Spring's ForwardedHeaderFilter and others read
 * it in preference to X-Forwarded-*: a value they might read otherwise is not forwarded.
 */
export function isForwardedList(v: string): boolean {
  let i = 0;
  const n = v.length;
  let seen = new Set<string>();
  let pairs = 0;
  while (i <= n) {
    while (i < n && (v[i] === ' ' || v[i] === '\t')) i++;
    const eq = v.indexOf('=', i);
    if (eq < 0) return false;
    const name = v.slice(i, eq).toLowerCase();
    if (!TOKEN.test(name) || seen.has(name)) return false;
    seen.add(name);
    let value: string;
    i = eq + 1;
    if (v[i] === '"') {
      let out = '';
      i++;
      for (; i < n && v[i] !== '"'; i++) {
        if (v[i] === '\\') i++;
        if (i < n) out += v[i];
      }
      if (i >= n) return false;
      i++;
      value = out;
    } else {
      const end = i + (/^[^;,\s]*/.exec(v.slice(i))![0].length);
      value = v.slice(i, end);
      if (!TOKEN.test(value)) return false;
      i = end;
    }
    if ((name === 'for' || name === 'by') && !FORWARDED_NODE.test(value)) return false;
    if (name === 'host' && typeof normalizeHost(value, -1) !== 'string') return false;
    if (name === 'proto' && value.toLowerCase() !== 'http' && value.toLowerCase() !== 'https') return false;
    pairs++;
    while (i < n && (v[i] === ' ' || v[i] === '\t')) i++;
    if (i === n) return pairs > 0;
    if (v[i] === ',') seen = new Set();
    else if (v[i] !== ';') return false;
    i++;
  }
  return false;
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
  /** whether the direct peer is a trusted proxy (its X-Forwarded-For is appended to) */
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

/**
 * The upstream request's headers. The identity headers were normalised at the front door
 * (normaliseIdentityHeaders): what is left of them is a trusted proxy's well-formed value, kept;
 * the gateway writes the rest.
 */
export function forwardHeaders(input: ForwardHeaderInput): HeaderMap {
  const { headers, trustedPeer } = input;
  // `Connection: keep-alive` (every HTTP/1.1 browser request) lists only a hop-by-hop name: no Set for it
  const connection = headers.connection;
  const listed = connection === 'keep-alive' ? undefined : connectionListed(connection);
  const out: HeaderMap = {};
  for (const name in headers) {
    if (HOP_BY_HOP.has(name) || STRIP_INBOUND.has(name) || name.charCodeAt(0) === 58 /* ':' h2 pseudo */) continue;
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
  if (out['x-forwarded-proto'] === undefined) out['x-forwarded-proto'] = input.protocol;
  if (out['x-forwarded-host'] === undefined) {
    if (headers.host !== undefined) out['x-forwarded-host'] = headers.host;
    else if (headers[':authority'] !== undefined) out['x-forwarded-host'] = headers[':authority'];
  }
  if (out.host === undefined && typeof headers[':authority'] === 'string') out.host = headers[':authority'];
  out['x-correlation-id'] = input.traceId;
  out['x-trace-id'] = input.traceId;
  out['x-forwarded-by'] = 'Sentinel';
  return out;
}

/** Response headers from the upstream, minus hop-by-hop ones and the upstream's own (Alt-Svc). */
export function responseHeaders(upstream: Record<string, string | string[] | undefined>): HeaderMap {
  const listed = connectionListed(upstream.connection);
  const out: HeaderMap = {};
  for (const name in upstream) {
    if (NOT_RELAYED_RESPONSE.has(name) || listed?.has(name)) continue;
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
