import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileConditions, compileHost, hostMatches, matchRoute, phpParamName, prefixMatches, priorityValue, requestMatchInput, sortRoutes, specificity, stripPort, type MatchInput, type RouteConditions } from '../../../src/routing/match.ts';

function input(over: Partial<{ method: string; path: string; host: string; headers: Record<string, string>; query: string }> = {}): MatchInput {
  const headers = over.headers ?? {};
  const params = new URLSearchParams(over.query ?? '');
  return {
    method: over.method ?? 'GET',
    path: over.path ?? '/',
    host: over.host ?? 'example.com',
    header: (n) => headers[n],
    query: (n) => params.get(n) ?? undefined,
  };
}

test('path-prefix respects segment boundaries', () => {
  const cases: [string, string, boolean][] = [
    ['/v2', '/v2', true],
    ['/v2', '/v2/users', true],
    ['/v2', '/v2example', false],
    ['/', '/anything', true],
    ['/api/', '/api/x', true],
    ['/api/', '/api', true], // the folder's own path: frameworks serve /api as /api/ (session 31 audit; before: false)
    ['/api', '/ap', false],
  ];
  for (const [prefix, path, want] of cases) assert.equal(prefixMatches(prefix, path), want, `${prefix} vs ${path}`);
});

test('host patterns: exact, wildcard (one label at least), regex, port stripped', () => {
  const cases: [string, string, boolean][] = [
    ['api.example.com', 'api.example.com', true],
    ['api.example.com', 'www.example.com', false],
    ['*.example.com', 'api.example.com', true],
    ['*.example.com', 'a.b.example.com', true],
    ['*.example.com', 'example.com', false],
    ['*.example.com', 'badexample.com', false],
    ['^(api|www)\\.example\\.com$', 'www.example.com', true],
    ['^(api|www)\\.example\\.com$', 'ftp.example.com', false],
  ];
  for (const [pattern, host, want] of cases) assert.equal(hostMatches(compileHost(pattern), host), want, `${pattern} vs ${host}`);
  assert.equal(stripPort('example.com:8080'), 'example.com');
  assert.equal(stripPort('[::1]:8080'), '[::1]');
  assert.equal(stripPort('example.com'), 'example.com');
});

test('conditions are AND-ed except hosts, which are OR-ed', () => {
  const table: [RouteConditions, Parameters<typeof input>[0], boolean][] = [
    [{ path: ['/health'] }, { path: '/health' }, true],
    [{ path: ['/health'] }, { path: '/health/x' }, false],
    [{ path: ['/health', '/ready'] }, { path: '/health' }, false], // Sentinel semantics: AND
    [{ host: ['a.com', 'b.com'] }, { host: 'b.com' }, true],
    [{ host: ['a.com', 'b.com'] }, { host: 'c.com' }, false],
    [{ method: ['GET', 'post'] }, { method: 'POST' }, true],
    [{ method: ['GET'] }, { method: 'DELETE' }, false],
    [{ method: ['GET'] }, { method: 'HEAD' }, true], // HEAD is GET without the content (session 31 audit)
    // one trailing slash apart (session 31 audit): frameworks serve both spellings as one
    [{ path: ['/login'] }, { path: '/login/' }, true],
    [{ path: ['/login/'] }, { path: '/login' }, true],
    [{ path: ['/login'] }, { path: '/login/x' }, false],
    [{ path: ['/'] }, { path: '/x' }, false],
    [{ pathPrefix: ['/admin/'] }, { path: '/admin' }, true],
    [{ pathPrefix: ['/admin/'] }, { path: '/adm' }, false],
    [{ pathPrefix: ['/admin/'] }, { path: '/adminx' }, false],
    [{ pathRegex: ['^/r/[0-9]+$'] }, { path: '/r/1/' }, true],
    [{ pathRegex: ['^/r/[0-9]+$'] }, { path: '/r/' }, false],
    [{ path: ['/m'], windowsPaths: true }, { path: '/M./' }, true],
    [{ pathPrefix: ['/t/'], windowsPaths: true }, { path: '/T' }, true],
    [{ pathPrefix: ['/t/'], windowsPaths: true }, { path: '/tx' }, false],
    [{ method: ['HEAD'] }, { method: 'GET' }, false],
    [{ header: [{ name: 'X-Api-Key' }] }, { headers: { 'x-api-key': 'k' } }, true],
    [{ header: [{ name: 'X-Api-Key' }] }, {}, false],
    [{ header: [{ name: 'X-User-Tier', value: 'free' }] }, { headers: { 'x-user-tier': 'free' } }, true],
    [{ header: [{ name: 'X-User-Tier', value: 'free' }] }, { headers: { 'x-user-tier': 'Free' } }, false],
    [{ queryParam: [{ name: 'version', value: 'v2' }] }, { query: 'version=v2' }, true],
    [{ queryParam: [{ name: 'empty', value: '' }] }, { query: 'foo=bar&empty=' }, true],
    [{ queryParam: [{ name: 'flag' }] }, { query: 'flag' }, true],
    [{ queryParam: [{ name: 'version' }] }, { query: 'v=1' }, false],
    [{ pathRegex: ['^/users/\\d+$'] }, { path: '/users/42' }, true],
    [{ pathRegex: ['^/users/\\d+$'] }, { path: '/users/abc' }, false],
    [{ pathPrefix: ['/api'], method: ['GET'], host: ['*.example.com'] }, { path: '/api/x', host: 'v1.example.com' }, true],
    [{}, { path: '/whatever' }, true],
  ];
  for (const [conds, inp, want] of table) assert.equal(compileConditions(conds)(input(inp)), want, JSON.stringify({ conds, inp }));
});

test('priority names and integers', () => {
  assert.equal(priorityValue('low'), 10);
  assert.equal(priorityValue('NORMAL'), 50);
  assert.equal(priorityValue('high'), 100);
  assert.equal(priorityValue('critical'), 1000);
  assert.equal(priorityValue(undefined), 50);
  assert.equal(priorityValue(7), 7);
  assert.equal(priorityValue('urgent'), undefined);
});

test('ordering: priority, then specificity, then config order; first match wins; default route', () => {
  const mk = (id: string, priority: number, c: RouteConditions) => ({ id, priority, specificity: specificity(c), test: compileConditions(c) });
  const routes = sortRoutes([
    mk('catch-all', 10, { pathPrefix: ['/'] }),
    mk('api', 50, { pathPrefix: ['/api'] }),
    mk('api-exact', 50, { path: ['/api/health'] }),
    mk('api-users', 50, { pathPrefix: ['/api/users'] }),
    mk('urgent', 1000, { pathPrefix: ['/api/users/admin'] }),
    mk('api-dup', 50, { pathPrefix: ['/api'] }),
  ]);
  const pick = (path: string) => matchRoute(routes, input({ path }))?.id;
  assert.equal(pick('/api/health'), 'api-exact'); // exact beats prefix
  assert.equal(pick('/api/users/1'), 'api-users'); // longer prefix is more specific
  assert.equal(pick('/api/users/admin/x'), 'urgent'); // priority first
  assert.equal(pick('/api/other'), 'api'); // stable: first of equals
  assert.equal(pick('/static'), 'catch-all');
  const narrow = sortRoutes([mk('only', 50, { path: ['/x'] })]);
  const fallback = mk('fallback', 10, {});
  assert.equal(matchRoute(narrow, input({ path: '/y' }), fallback)?.id, 'fallback');
  assert.equal(matchRoute(narrow, input({ path: '/y' })), undefined);
});

test('KDL header/query-param second argument is the value to compare (issue 17 item 5)', async () => {
  const { loadConfigText } = await import('../../../src/config/load.ts');
  const config = loadConfigText(`
    listeners { listener "http" { address "127.0.0.1:0" } }
    routes {
      route "gold" { matches { header "X-Tier" "gold" }; builtin-handler "health" }
      route "v2" { matches { query-param "v" "2" }; builtin-handler "health" }
      route "keyed" { matches { header "X-Api-Key" }; builtin-handler "health" }
      route "other" { priority "low"; builtin-handler "not-found" }
    }`);
  const table: [Parameters<typeof input>[0], string][] = [
    [{ headers: { 'x-tier': 'gold' } }, 'gold'],
    [{ headers: { 'x-tier': 'silver' } }, 'other'],
    [{ headers: { 'x-tier': 'Gold' } }, 'other'],
    [{ query: 'v=2' }, 'v2'],
    [{ query: 'v=3' }, 'other'],
    [{ query: 'v' }, 'other'],
    [{ headers: { 'x-api-key': '' } }, 'keyed'],
    [{}, 'other'],
  ];
  for (const [req, want] of table) assert.equal(matchRoute(config.routes, input(req))?.id, want, JSON.stringify(req));
});

test('host globs escape dots; `*` inside a label is one label\'s characters; regexes keep their case classes (issue 17 item 14)', () => {
  const cases: [string, string, boolean][] = [
    ['api-*.example.com', 'api-1.example.com', true],
    ['api-*.example.com', 'api-blue.example.com', true],
    ['api-*.example.com', 'apizexamplezcom', false],
    ['api-*.example.com', 'api-.example.com', false],
    ['api-*.example.com', 'api-1.eu.example.com', false],
    ['*.example.com', 'a.b.example.com', true],
    ['a.c', 'abc', false],
    ['example.com:8080', 'example.com', true],
    ['^\\D+\\.example\\.com$', 'www.example.com', true],
    ['^\\D+\\.example\\.com$', 'w1.example.com', false],
    ['API\\.Example\\.com', 'api.example.com', true],
    ['a|b', 'ab', false],
    ['a|b', 'b', true],
  ];
  for (const [pattern, host, want] of cases) assert.equal(hostMatches(compileHost(pattern), host), want, `${pattern} vs ${host}`);
});

test('a query parameter read with values upstreams may read differently is flagged (session 16 audit)', () => {
  const table: [query: string, value: string | undefined, ambiguous: boolean][] = [
    ['action=delete', 'delete', false],
    ['action=delete&action=delete', 'delete', false],
    ['action=view&action=delete', 'view', true], // PHP, Rails, Django read "delete"
    ['action=delete&action=', 'delete', true],
    ['x=1;action=delete', undefined, true], // Rack and older Python split on ;
    ['action=view;x=1', 'view;x=1', true],
    ['other=1;2&action=view', 'view', false], // ; elsewhere does not touch this parameter
    ['other=1', undefined, false],
  ];
  for (const [query, value, ambiguous] of table) {
    const i = requestMatchInput('GET', '/', query, 'a.example', {});
    assert.equal(i.query('action'), value, query);
    assert.equal(i.ambiguousQuery !== undefined, ambiguous, query);
  }
  const untouched = requestMatchInput('GET', '/', 'action=view&action=delete', 'a.example', {});
  assert.equal(untouched.ambiguousQuery, undefined, 'only parameters a condition reads are looked at');
});

test('a parameter an upstream reads under another spelling is flagged (session 31 audit)', () => {
  const table: [query: string, name: string, value: string | undefined, ambiguous: boolean][] = [
    // PHP: leading spaces dropped, the name cut at a NUL
    ['%20action=delete', 'action', undefined, true],
    ['+action=delete', 'action', undefined, true],
    ['action%00x=delete', 'action', undefined, true],
    ['action=view&%20action=delete', 'action', 'view', true],
    ['action=delete&%20action=delete', 'action', 'delete', false], // every reading agrees
    // PHP: '.', ' ' and an unclosed '[' become '_'
    ['do.it=1', 'do_it', undefined, true],
    ['do+it=1', 'do_it', undefined, true],
    ['do[it=1', 'do_it', undefined, true],
    ['do[it]=1', 'do_it', undefined, false], // an array: $_GET['do'], not do_it
    // ASP.NET: names compared case-insensitively (ToUpperInvariant reads 'ſ' as 'S')
    ['ACTION=delete', 'action', undefined, true],
    ['Action=delete&action=view', 'action', 'view', true],
    ['%C5%BFort=x', 'sort', undefined, true],
    // other names stay out of it
    ['actions=delete&xaction=1&action_=2', 'action', undefined, false],
    ['a.b=1', 'a.b', '1', false],
  ];
  for (const [query, name, value, ambiguous] of table) {
    const i = requestMatchInput('GET', '/', query, 'a.example', {});
    assert.equal(i.query(name), value, query);
    assert.equal(i.ambiguousQuery !== undefined, ambiguous, query);
  }
  assert.equal(phpParamName(' \u0000x'), '');
  assert.equal(phpParamName('  a.b c[d.e'), 'a_b_c_d.e');
  assert.equal(phpParamName('a[b]'), undefined);
});
