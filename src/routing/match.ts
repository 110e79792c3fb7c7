// Route matching: a pure function over a precompiled, sorted table (sentinel-reference.md §1.6).
// Choices (documented in docs/routing.md): several `host` conditions are OR'ed, every other
// condition is AND'ed (so two `path` lines in one route can never both match, as in Sentinel);
// `path-prefix` stops at a segment boundary; the Host port is stripped; `path-regex` is an
// unanchored search on the path without query. Every config regex runs on RE2 (linear time), so
// a pattern like `(a+)+$` cannot stall the event loop on a hostile Host or path.
import { regexLiteralNames, shortNameReadingPaths, windowsKeyPath, windowsPathMatches, windowsPrefixMatches, windowsReadingPaths, windowsSegments } from './windows-path.ts';
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
  /**
   * A parameter `query` was asked for that upstreams may read differently (session 16 audit):
   * sent twice with different values (PHP, Rails and Django keep the last, the lookup the first),
   * or also found when `;` separates (Rack, older Python). The caller refuses the request.
   */
  ambiguousQuery?: string;
}

export interface RouteConditions {
  path?: string[];
  pathPrefix?: string[];
  pathRegex?: string[];
  host?: string[];
  header?: { name: string; value?: string }[];
  method?: string[];
  queryParam?: { name: string; value?: string }[];
  /** `path-spelling "windows"`: path and path-prefix also match what a Windows upstream reads as them (./windows-path.ts) */
  windowsPaths?: boolean;
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

/**
 * Prefix match on a segment boundary: `/v2` matches `/v2`, `/v2/x` but not `/v2example`. A prefix
 * that ends in `/` also matches its folder's own path without the slash (`/admin/` matches
 * `/admin`): Express, Rails, Spring 5, ASP.NET Core and Laravel serve `/admin` as `/admin/`, so
 * the folder's route would otherwise leave it to another (session 31 audit).
 */
export function prefixMatches(prefix: string, path: string): boolean {
  if (!path.startsWith(prefix)) return path.length === prefix.length - 1 && path.length > 0 && prefix.charCodeAt(path.length) === 47 && prefix.startsWith(path);
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

/** Which `matches` condition a check comes from (the KDL key). */
export type ConditionKind = 'method' | 'path' | 'path-prefix' | 'host' | 'header' | 'query-param' | 'path-regex';

/**
 * One condition of a route, compiled. The route's predicate is these checks AND-ed in this order,
 * and `sentinel explain` walks the same list to name the first one that fails, so the two can
 * never disagree.
 */
export interface ConditionCheck {
  readonly kind: ConditionKind;
  /** what the condition wants, as written in the config (e.g. `GET, POST`, `X-Tier: gold`) */
  readonly expected: string;
  readonly test: (input: MatchInput) => boolean;
  /** what the request has for this condition (undefined: absent) */
  readonly actual: (input: MatchInput) => string | undefined;
}

/** A `path-spelling "windows"` route's reading of a request path for rate-limit keys (windowsKeyPath). */
export function windowsKeyPathOf(c: RouteConditions): (path: string) => string {
  const exact = (c.path ?? []).map((p) => windowsSegments(p));
  const prefixes = (c.pathPrefix ?? []).map((p) => windowsSegments(p));
  return (path) => windowsKeyPath(exact, prefixes, path);
}

/**
 * The other routes of a config that a route's wider readings (a GET route's HEAD, an exact path's
 * spelling one trailing `/` apart) yield to: a route that names HEAD itself, or whose exact `path`
 * is the request's own spelling, keeps those requests when it matches them, whatever the order
 * (`path "/api"` and `path "/api/"` as two routes keep their own spellings). Filled after every
 * route is compiled (`add`); its checks run strict: only literal paths and named methods, so no
 * route's wider reading is asked from inside another's.
 */
export class RouteYield {
  private readonly literal = new Map<string, MatchableRoute[]>();
  private readonly head: MatchableRoute[] = [];
  private strict = false;

  add(route: MatchableRoute, c: RouteConditions): void {
    if (c.method?.some((m) => m.toUpperCase() === 'HEAD')) this.head.push(route);
    if (c.windowsPaths) return;
    for (const p of c.path ?? []) {
      const list = this.literal.get(p);
      if (list === undefined) this.literal.set(p, [route]);
      else if (!list.includes(route)) list.push(route);
    }
  }

  /** inside a yield check: wider readings do not match */
  get checking(): boolean {
    return this.strict;
  }

  /** another route names HEAD and matches the request */
  headClaimed(input: MatchInput): boolean {
    return this.head.length !== 0 && this.any(this.head, input);
  }

  /** another route's exact path is the request's spelling and it matches the request */
  pathClaimed(input: MatchInput): boolean {
    const routes = this.literal.get(input.path);
    return routes !== undefined && this.any(routes, input);
  }

  private any(routes: readonly MatchableRoute[], input: MatchInput): boolean {
    this.strict = true;
    try {
      for (const r of routes) if (r.test(input)) return true;
      return false;
    } finally {
      this.strict = false;
    }
  }
}

/** Compiles the conditions into checks, cheapest first (the order they are evaluated in). */
export function compileChecks(c: RouteConditions, yieldTo?: RouteYield): ConditionCheck[] {
  const checks: ConditionCheck[] = [];
  const method = (i: MatchInput) => i.method;
  const path = (i: MatchInput) => i.path;
  if (c.method?.length) {
    const named = new Set(c.method.map((m) => m.toUpperCase()));
    // HEAD is GET without the content (RFC 9110 §9.3.2), and applications run it through their GET
    // handler (Express, Rails, Django, Spring, Go's ServeMux): a route that claims GET claims HEAD,
    // or a HEAD went past its allow-from, agents and limits to another route and ran the handler
    // there (session 31 audit). nginx's `limit_except GET` covers HEAD the same way.
    // A route naming HEAD itself keeps HEAD requests it matches (RouteYield).
    const impliesHead = named.has('GET') && !named.has('HEAD');
    const test = impliesHead
      ? (i: MatchInput) => named.has(i.method) || (i.method === 'HEAD' && (yieldTo === undefined || (!yieldTo.checking && !yieldTo.headClaimed(i))))
      : (i: MatchInput) => named.has(i.method);
    checks.push({ kind: 'method', expected: [...named].join(', '), test, actual: method });
  }
  if (c.windowsPaths) {
    for (const p of c.path ?? []) {
      const segs = windowsSegments(p);
      // and the route's path one trailing `/` apart (oneSlashApart), as an exact path does
      const alt = p === '/' ? undefined : windowsSegments(p.endsWith('/') ? p.slice(0, -1) : `${p}/`);
      checks.push({ kind: 'path', expected: `${p} (windows spelling)`, test: (i) => windowsPathMatches(segs, i.path, alt), actual: path });
    }
    for (const p of c.pathPrefix ?? []) {
      const segs = windowsSegments(p);
      checks.push({ kind: 'path-prefix', expected: `${p} (windows spelling)`, test: (i) => windowsPrefixMatches(segs, i.path), actual: path });
    }
  } else {
    // the spelling one `/` apart unless another route's exact path is that spelling (RouteYield)
    const slashApart = (p: string, i: MatchInput) => oneSlashApart(p, i.path) && (yieldTo === undefined || (!yieldTo.checking && !yieldTo.pathClaimed(i)));
    for (const p of c.path ?? []) checks.push({ kind: 'path', expected: p, test: (i) => i.path === p || slashApart(p, i), actual: path });
    for (const p of c.pathPrefix ?? []) checks.push({ kind: 'path-prefix', expected: p, test: (i) => prefixMatches(p, i.path), actual: path });
  }
  if (c.host?.length) {
    const hosts = c.host.map(compileHost);
    checks.push({ kind: 'host', expected: c.host.join(' | '), test: (i) => hosts.some((h) => hostMatches(h, i.host)), actual: (i) => i.host });
  }
  for (const h of c.header ?? []) {
    const name = h.name.toLowerCase();
    const value = h.value;
    const actual = (i: MatchInput) => i.header(name);
    const expected = value === undefined ? `${h.name} present` : `${h.name}: ${value}`;
    checks.push(value === undefined ? { kind: 'header', expected, test: (i) => i.header(name) !== undefined, actual } : { kind: 'header', expected, test: (i) => i.header(name) === value, actual });
  }
  for (const q of c.queryParam ?? []) {
    const value = q.value;
    const actual = (i: MatchInput) => i.query(q.name);
    const expected = value === undefined ? `${q.name} present` : `${q.name}=${value}`;
    checks.push(value === undefined ? { kind: 'query-param', expected, test: (i) => i.query(q.name) !== undefined, actual } : { kind: 'query-param', expected, test: (i) => i.query(q.name) === value, actual });
  }
  for (const r of c.pathRegex ?? []) {
    const re = compileRouteRegex(r);
    if (c.windowsPaths) {
      // under the rule a regex also sees each Windows reading of the path (lower-cased, trailing
      // dots and spaces, streams cut, best fit, `..%20`, decoded twice), and compares case-insensitively
      const folded = compileRouteRegex(r, 'i');
      // and an 8.3 alias as each long name the regex spells that it may stand for (session 24)
      const names = regexLiteralNames(r);
      const test = (i: MatchInput) => re.test(i.path) || windowsReadingPaths(i.path).some((p) => folded.test(p)) || shortNameReadingPaths(i.path, names).some((p) => folded.test(p));
      checks.push({ kind: 'path-regex', expected: `${r} (windows spelling)`, test, actual: path });
    } else checks.push({ kind: 'path-regex', expected: r, test: (i) => re.test(i.path) || (endsInSlash(i.path) && re.test(i.path.slice(0, -1))), actual: path });
  }
  return checks;
}

/**
 * Whether two paths differ only by one trailing `/` (`/login` and `/login/`). Express (strict
 * routing off, its default), Rails, Spring 5, ASP.NET Core and Laravel route both to one handler:
 * an exact `path` condition that claimed one spelling left the other to another route, past its
 * allow-from, agents and rate limits (session 31 audit). The rate-limit `path` key drops one
 * trailing `/` for the same reason (session 14).
 */
export function oneSlashApart(a: string, b: string): boolean {
  const d = b.length - a.length;
  if (d === 1) return b.charCodeAt(a.length) === 47 && b.startsWith(a);
  if (d === -1) return a.charCodeAt(b.length) === 47 && a.startsWith(b);
  return false;
}

/** A path other than `/` that ends in `/`: a `path-regex` also tries it without that slash (oneSlashApart). */
function endsInSlash(path: string): boolean {
  return path.length > 1 && path.charCodeAt(path.length - 1) === 47;
}

/** The checks AND-ed into one predicate (no allocation per call). */
export function allOf(checks: readonly ConditionCheck[]): (input: MatchInput) => boolean {
  const tests = checks.map((c) => c.test);
  if (tests.length === 0) return () => true;
  if (tests.length === 1) return tests[0]!;
  return (i) => {
    for (const t of tests) if (!t(i)) return false;
    return true;
  };
}

/** Compiles the conditions into one predicate; conditions are checked cheapest first. */
export function compileConditions(c: RouteConditions): (input: MatchInput) => boolean {
  return allOf(compileChecks(c));
}

/** The first check that fails on `input`, in evaluation order; undefined when the route matches. */
export function firstFailure(checks: readonly ConditionCheck[], input: MatchInput): ConditionCheck | undefined {
  for (const c of checks) if (!c.test(input)) return c;
  return undefined;
}

/** The MatchInput of a request: lower-cased header names as Node gives them, the query decoded lazily. */
export function requestMatchInput(method: string, path: string, query: string, host: string, headers: Readonly<Record<string, string | string[] | undefined>>): MatchInput {
  let params: URLSearchParams | undefined;
  let semicolons: URLSearchParams | undefined;
  const input: MatchInput = {
    method,
    path,
    host,
    header: (name) => {
      const v = headers[name];
      return Array.isArray(v) ? v[0] : v;
    },
    query: (name) => {
      params ??= new URLSearchParams(query);
      const all = params.getAll(name);
      if (all.some((v) => v !== all[0])) input.ambiguousQuery = name;
      else if (query.includes(';')) {
        semicolons ??= new URLSearchParams(query.replaceAll(';', '&'));
        const alt = semicolons.getAll(name);
        if (alt.length !== all.length || alt.some((v) => v !== all[0])) input.ambiguousQuery = name;
      }
      if (input.ambiguousQuery === undefined && aliasDisagrees(params, name, all[0])) input.ambiguousQuery = name;
      return all.length === 0 ? undefined : all[0];
    },
  };
  return input;
}

/**
 * A query parameter name as PHP registers it (php_register_variable_ex): the name ends at a NUL
 * (a C string there), leading spaces are dropped, `.` and ` ` become `_` up to the first `[`; a
 * `[` with a `]` after it makes an array (undefined: never the scalar a condition compares), an
 * unclosed one becomes `_` too.
 */
export function phpParamName(name: string): string | undefined {
  let n = name;
  const nul = n.indexOf('\0');
  if (nul >= 0) n = n.slice(0, nul);
  let start = 0;
  while (n.charCodeAt(start) === 32) start++;
  let out = '';
  for (let i = start; i < n.length; i++) {
    const c = n[i]!;
    if (c === '[') {
      if (n.indexOf(']', i + 1) >= 0) return undefined;
      return out + '_' + n.slice(i + 1);
    }
    out += c === ' ' || c === '.' ? '_' : c;
  }
  return out;
}

/**
 * Whether another spelling of `name` in the query reads as `name` to an upstream and with another
 * value than the one the condition saw (session 31 audit): PHP's name mangling (`%20action`,
 * `action%00x`, `do.it` for `do_it`) and ASP.NET's case-insensitive names (`ACTION`). Such a
 * request is refused like a parameter sent twice: the route chosen on the gateway's reading
 * (absent, or the first value) could be one the upstream's reading would not have matched.
 */
function aliasDisagrees(params: URLSearchParams, name: string, value: string | undefined): boolean {
  let upper: string | undefined;
  for (const [n, v] of params) {
    if (n === name || (value !== undefined && v === value)) continue;
    upper ??= name.toUpperCase();
    if (n.toUpperCase() === upper || phpParamName(n) === name) return true;
  }
  return false;
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
