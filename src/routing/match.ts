// Route matching: a pure function over a precompiled, sorted table (sentinel-reference.md §1.6).
// Choices (documented in docs/routing.md): several `host` conditions are OR'ed, every other
// condition is AND'ed (so two `path` lines in one route can never both match, as in Sentinel);
// `path-prefix` stops at a segment boundary; the Host port is stripped; `path-regex` is an
// unanchored search on the path without query. Every config regex runs on RE2 (linear time), so
// a pattern like `(a+)+$` cannot stall the event loop on a hostile Host or path.
import RE2 from 're2';

export interface MatchInput {
  method: string;
  /** path without query */
  path: string;
  /** Host without port, lower-cased */
  host: string;
  /** lower-cased name -> first value */
  header(name: string): string | undefined;
  /** decoded query parameter lookup ('' for a parameter without '='), undefined when absent */
  query(name: string): string | undefined;
}

export interface RouteConditions {
  path?: string[];
  pathPrefix?: string[];
  pathRegex?: string[];
  host?: string[];
  header?: { name: string; value?: string }[];
  method?: string[];
  queryParam?: { name: string; value?: string }[];
}

export interface MatchableRoute {
  readonly id: string;
  readonly priority: number;
  readonly specificity: number;
  readonly test: (input: MatchInput) => boolean;
}

export const NAMED_PRIORITIES: Record<string, number> = { low: 10, normal: 50, high: 100, critical: 1000 };

/** `priority "high"` or an integer; unknown names are reported by the caller. */
export function priorityValue(p: string | number | undefined): number | undefined {
  if (p === undefined) return NAMED_PRIORITIES.normal;
  if (typeof p === 'number') return p;
  return NAMED_PRIORITIES[p.toLowerCase()];
}

/** Prefix match on a segment boundary: `/v2` matches `/v2`, `/v2/x` but not `/v2example`. */
export function prefixMatches(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return false;
  if (path.length === prefix.length || prefix.endsWith('/')) return true;
  return path.charCodeAt(prefix.length) === 47; /* '/' */
}

/**
 * Host patterns (docs/core.md "Host patterns"):
 * - exact: `api.example.com`
 * - leading wildcard: `*.example.com` matches one or more labels before `.example.com`
 * - glob: `*` elsewhere matches one or more characters inside one label (`api-*.example.com`
 *   matches `api-1.example.com`, not `api-1.eu.example.com`); every other character is literal
 * - regex: a pattern with any of `^ $ ( ) [ ] { } + ? | \` is a case-insensitive RE2 regex,
 *   anchored at both ends unless it starts with `^`
 */
export type HostPattern = { kind: 'exact'; host: string } | { kind: 'wildcard'; suffix: string } | { kind: 'regex'; re: RE2 };

const HOST_GLOB = /^(?:[a-z0-9.*_-]+|\[[0-9a-f:.]+\])$/;

/** An RE2 regex for route matching; throws an Error whose message says why RE2 refused it. */
export function compileRouteRegex(pattern: string, flags = ''): RE2 {
  try {
    return new RE2(pattern, flags);
  } catch (err) {
    throw new Error(`invalid regular expression "${pattern}": ${(err as Error).message} (route regexes run on RE2 in linear time: backreferences and lookaround are not supported)`, { cause: err });
  }
}

export function compileHost(pattern: string): HostPattern {
  const p = stripPort(pattern.toLowerCase());
  if (HOST_GLOB.test(p)) {
    if (!p.includes('*')) return { kind: 'exact', host: p };
    if (p.startsWith('*.') && !p.slice(2).includes('*')) return { kind: 'wildcard', suffix: p.slice(1) };
    const body = p.split('*').map((part) => part.replace(/[.]/g, '\\.')).join('[^.]+');
    return { kind: 'regex', re: compileRouteRegex(`^${body}$`) };
  }
  // A regex is not lower-cased (that would turn `\D` into `\d`); the `i` flag folds case.
  return { kind: 'regex', re: compileRouteRegex(pattern.startsWith('^') ? pattern : `^(?:${pattern})$`, 'i') };
}

export function hostMatches(h: HostPattern, host: string): boolean {
  switch (h.kind) {
    case 'exact':
      return host === h.host;
    case 'wildcard':
      // at least one label before the suffix: `example.com` does not match `*.example.com`
      return host.length > h.suffix.length && host.endsWith(h.suffix) && host.charCodeAt(host.length - h.suffix.length - 1) !== 46;
    case 'regex':
      return h.re.test(host);
  }
}

export function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const i = host.indexOf(':');
  return i >= 0 ? host.slice(0, i) : host;
}

/** Later-Sentinel specificity: exact path 10000, regex 5000, prefix 1000+len; host exact 70 / regex 60 / wildcard 50; header 30/20; query 25/15; method 10. */
export function specificity(c: RouteConditions): number {
  let path = 0;
  if (c.path?.length) path = 10000;
  else if (c.pathRegex?.length) path = 5000;
  else if (c.pathPrefix?.length) path = 1000 + Math.max(...c.pathPrefix.map((p) => p.length));
  let host = 0;
  for (const h of c.host ?? []) {
    const k = compileHost(h).kind;
    host = Math.max(host, k === 'exact' ? 70 : k === 'regex' ? 60 : 50);
  }
  const headers = (c.header ?? []).reduce((s, h) => s + (h.value !== undefined ? 30 : 20), 0);
  const query = (c.queryParam ?? []).reduce((s, q) => s + (q.value !== undefined ? 25 : 15), 0);
  const method = c.method?.length ? 10 : 0;
  return path + host + headers + query + method;
}

/** Compiles the conditions into one predicate; conditions are checked cheapest first. */
export function compileConditions(c: RouteConditions): (input: MatchInput) => boolean {
  const checks: ((i: MatchInput) => boolean)[] = [];
  if (c.method?.length) {
    const set = new Set(c.method.map((m) => m.toUpperCase()));
    checks.push((i) => set.has(i.method));
  }
  for (const p of c.path ?? []) checks.push((i) => i.path === p);
  for (const p of c.pathPrefix ?? []) checks.push((i) => prefixMatches(p, i.path));
  if (c.host?.length) {
    const hosts = c.host.map(compileHost);
    checks.push((i) => hosts.some((h) => hostMatches(h, i.host)));
  }
  for (const h of c.header ?? []) {
    const name = h.name.toLowerCase();
    const value = h.value;
    checks.push(value === undefined ? (i) => i.header(name) !== undefined : (i) => i.header(name) === value);
  }
  for (const q of c.queryParam ?? []) {
    const value = q.value;
    checks.push(value === undefined ? (i) => i.query(q.name) !== undefined : (i) => i.query(q.name) === value);
  }
  for (const r of c.pathRegex ?? []) {
    const re = compileRouteRegex(r);
    checks.push((i) => re.test(i.path));
  }
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0]!;
  return (i) => {
    for (const check of checks) if (!check(i)) return false;
    return true;
  };
}

/** Sorts by priority desc, then specificity desc, stable on config order. */
export function sortRoutes<T extends MatchableRoute>(routes: readonly T[]): T[] {
  return routes
    .map((r, order) => ({ r, order }))
    .sort((a, b) => b.r.priority - a.r.priority || b.r.specificity - a.r.specificity || a.order - b.order)
    .map((x) => x.r);
}

/** First match wins; then the listener's default route; else undefined (the caller answers 404). */
export function matchRoute<T extends MatchableRoute>(sorted: readonly T[], input: MatchInput, defaultRoute?: T): T | undefined {
  for (const r of sorted) if (r.test(input)) return r;
  return defaultRoute;
}
