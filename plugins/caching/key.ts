// Pure: the cache key of a request. One stored response per
//   method class (GET; HEAD reads the GET entry) + host + normalised path + sorted query
//   (minus ignore-query-params) [+ the values of the Vary'd request headers].
// Equivalent spellings of one URL (%7E vs ~, ./ and ../ segments, query order) share an entry.

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
    kept.push([rawName, part]);
  }
  kept.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return kept.map((k) => k[1]).join('&');
}

export interface KeyRequest {
  method: string;
  host: string;
  path: string;
  query: string;
}

/** The key of the resource (before Vary). HEAD shares GET's key. */
export function primaryKey(req: KeyRequest, ignoreQueryParams: readonly string[]): string {
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const q = normaliseQuery(req.query, ignoreQueryParams);
  return `${method} ${req.host}${normalisePath(req.path)}${q ? `?${q}` : ''}`;
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
 * The header names a stored response varies on: the route's vary-headers plus the response's
 * Vary (lower-cased, sorted, unique). `undefined` for `Vary: *` (never reusable, not stored).
 */
export function varyNames(routeVary: readonly string[], responseVary: string | string[] | undefined): string[] | undefined {
  const names = new Set(routeVary);
  const v = Array.isArray(responseVary) ? responseVary.join(',') : (responseVary ?? '');
  for (const part of v.split(',')) {
    const n = part.trim().toLowerCase();
    if (n === '') continue;
    if (n === '*') return undefined;
    names.add(n);
  }
  return [...names].sort();
}
