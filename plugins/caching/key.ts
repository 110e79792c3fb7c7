// Pure: the cache key of a request. One stored response per
//   method class (GET; HEAD reads the GET entry) + host + normalised path + sorted query
//   (minus ignore-query-params) [+ the values of the Vary'd request headers].
// Equivalent spellings of one URL (%7E vs ~, ./ and ../ segments, query order) share an entry.

import { isWrittenPerRequest } from '../../src/server/headers.ts';

/** Characters RFC 3986 calls unreserved: their percent-encoding means the same URL. */
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Percent-decodes unreserved characters, upper-cases the remaining escapes, resolves dot segments. */
export function normalisePath(path: string): string {
  // (most paths have no escapes: no regex pass for them)
  let p = !path.includes('%')
    ? path
    : path.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
        const c = String.fromCharCode(parseInt(hex, 16));
        return UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`;
      });
  if (!p.startsWith('/')) p = `/${p}`;
  if (!p.includes('/.')) return p;
  const out: string[] = [];
  const segs = p.split('/').slice(1);
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else out.push(s);
  }
  return `/${out.join('/')}`;
}

/** Query parameters sorted by name then value (stable encoding), without the ignored names. */
export function normaliseQuery(query: string, ignore: readonly string[]): string {
  if (query === '') return '';
  const parts = query.split('&').filter((p) => p !== '');
  const kept: [string, string][] = [];
  for (const part of parts) {
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    let name: string;
    try {
      name = decodeURIComponent(rawName.replace(/\+/g, ' '));
    } catch {
      name = rawName;
    }
    // Rack and older Python split on ';' as well: `utm_source=a;cb=evil` hides `cb` from a key
    // that drops utm_source, so an ignored parameter carrying ';' stays in the key.
    if (ignore.includes(name) && !part.includes(';')) continue;
    kept.push([name, part]);
  }
  // By name only, and stable: the values of a repeated name keep their order. `p=a&p=b` and
  // `p=b&p=a` are two answers (PHP, Rails, Django read the last, others the first). The name as
  // the application decodes it: `a=1&%61=2` and `%61=2&a=1` are two answers too (session 20).
  kept.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return kept.map((k) => k[1]).join('&');
}

export interface KeyRequest {
  method: string;
  host: string;
  path: string;
  query: string;
  /** the listener's scheme: the X-Forwarded-Proto the gateway writes for a direct client */
  protocol?: 'http' | 'https';
}

/**
 * Headers an application builds its own URLs from (links, redirects, canonical tags) that reach it
 * as sent when they come from `system { trusted-proxies }` (docs/security.md, "Identity headers").
 * From any other peer the gateway replaces or removes them, so the upstream's value is the host
 * and the listener's scheme, both keyed (the scheme since session 23); from a trusted proxy that passes a client's `X-Forwarded-Host: evil` on,
 * the answer (links to evil) was stored for every client of the URL. Keyed as sent when present.
 */
const URL_SHAPING = new Set(['forwarded', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-prefix', 'x-forwarded-server', 'x-forwarded-ssl', 'x-forwarded-scheme', 'x-forwarded-protocol', 'x-forwarded-uri', 'x-forwarded-path', 'x-url-scheme', 'front-end-https', 'x-original-host', 'x-host']);

/** The `Forwarded` parameters that shape URLs (host, proto): `for=` differs per client and is not keyed. */
function forwardedUrlPart(v: string): string {
  let out = '';
  for (const el of v.split(/[,;]/)) {
    const t = el.trim().toLowerCase();
    if (t.startsWith('host=') || t.startsWith('proto=')) out += `${out ? ';' : ''}${t}`;
  }
  return out;
}

/**
 * The key of the resource (before Vary). HEAD shares GET's key. `route`: the id of the route that
 * caches it. Two routes can match one URL on what the key leaves out (a header condition, the
 * listener): keyed without the route, the answer one route's upstream gave was served to clients
 * the other route sends elsewhere, an internal listener's answer on the public one (session 21
 * audit). `@` is no header-name character, so the line cannot meet a keyed header's.
 */
export function primaryKey(req: KeyRequest, ignoreQueryParams: readonly string[], headers?: Readonly<Record<string, string | string[] | undefined>>, route?: string): string {
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const q = normaliseQuery(req.query, ignoreQueryParams);
  let key = `${method} ${req.host}${normalisePath(req.path)}${q ? `?${q}` : ''}`;
  if (route !== undefined) key += `\n@route: ${route}`;
  // The scheme the upstream is told (session 23 audit): one route on a plain and a TLS listener
  // shared entries, so a plain client's stored "301 to https" (force_ssl, SECURE_SSL_REDIRECT) was
  // every HTTPS client's answer, a redirect loop. Plain keys are unchanged.
  if (req.protocol === 'https') key += '\n@scheme: https';
  if (headers !== undefined) {
    // `host` is the Host without its port (as routes match it); the upstream gets the port too
    // and may write it into links: `Host: shop.example:1337` is another answer
    const h = headers.host;
    if (typeof h === 'string' && h !== req.host) key += `\nhost: ${h}`;
    // a hit's request has a handful of headers: walk them rather than look up every name
    let found: string[] | undefined;
    for (const n in headers) if (URL_SHAPING.has(n)) (found ??= []).push(n);
    if (found !== undefined) {
      // in one order whatever order they came in
      for (const n of found.sort()) {
        const v = headers[n]!;
        const s = Array.isArray(v) ? v.join(',') : v;
        key += `\n${n}: ${n === 'forwarded' ? forwardedUrlPart(s) : s}`;
      }
    }
  }
  return key;
}

/** Request header values as the key sees them: list members trimmed, whitespace collapsed. */
function headerValue(v: string | string[] | undefined): string {
  if (v === undefined) return '';
  const s = Array.isArray(v) ? v.join(',') : v;
  return s
    .split(',')
    .map((x) => x.trim().replace(/\s+/g, ' '))
    .filter((x) => x !== '')
    .join(',');
}

/** The key of one variant: the primary key plus the values of the varied headers (lower-case names, sorted). */
export function variantKey(primary: string, varyNames: readonly string[], header: (name: string) => string | string[] | undefined): string {
  if (varyNames.length === 0) return primary;
  let k = primary;
  for (const n of varyNames) k += `\n${n}: ${headerValue(header(n))}`;
  return k;
}

/**
 * Request headers a response was chosen by although its Vary may not say so (session 23 audit):
 * a `Content-Encoding` other than identity was chosen by `Accept-Encoding` (stored without it, the
 * gzip answer to one client was served to clients that cannot decode it), an
 * `Access-Control-Allow-Origin` that is not `*` by `Origin` (one site's grant served to every
 * other site's page, whose browser then refuses the answer). Shared caches (Cloudflare, Fastly)
 * add the same. A response that says so itself costs nothing more.
 */
export function impliedVary(response: Readonly<Record<string, string | string[] | undefined>>): string[] {
  const out: string[] = [];
  const ce = response['content-encoding'];
  if (ce !== undefined && String(ce).trim().toLowerCase() !== 'identity') out.push('accept-encoding');
  const acao = response['access-control-allow-origin'];
  if (acao !== undefined && String(acao).trim() !== '*') out.push('origin');
  return out;
}

/**
 * The header names a stored response varies on: the route's vary-headers plus the response's
 * Vary (lower-cased, sorted, unique), plus the names `impliedVary` reads off the response.
 * `undefined` for `Vary: *` or a header the gateway writes per request (never reusable, not stored).
 */
export function varyNames(routeVary: readonly string[], response: Readonly<Record<string, string | string[] | undefined>>): string[] | undefined {
  const names = new Set<string>(impliedVary(response));
  for (const n of routeVary) {
    if (isWrittenPerRequest(n)) return undefined;
    names.add(n);
  }
  const responseVary = response.vary;
  const v = Array.isArray(responseVary) ? responseVary.join(',') : (responseVary ?? '');
  for (const part of v.split(',')) {
    const n = part.trim().toLowerCase();
    if (n === '') continue;
    if (n === '*' || isWrittenPerRequest(n)) return undefined;
    names.add(n);
  }
  return [...names].sort();
}
