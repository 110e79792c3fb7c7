// `matches { path-spelling "windows" }` (src/routing/windows-path.ts): which request paths a route's
// path / path-prefix claims under the Windows spelling. Integration: hardening/windows-paths.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { regexLiteralNames, shortNameReadingPaths, windowsKeyPath, windowsPathMatches, windowsPrefixMatches, windowsSegments } from '../../../src/routing/windows-path.ts';
import { configDiagnostics } from '../../helpers/config-diagnostics.ts';

test('windowsSegments: case, trailing dots and spaces, streams, empty segments', () => {
  const cases: Array<[string, string[]]> = [
    ['/', ['']],
    ['/Admin', ['admin']],
    ['/admin.', ['admin']],
    ['/admin%20.%20', ['admin']],
    ['/admin/', ['admin', '']],
    ['/admin::$DATA', ['admin']],
    ['/a.b.', ['a.b']],
    ['/.../x', ['x']],
    ['/x/...', ['x', '']],
    // session 21: the best-fit fold of non-ASCII characters
    ['/caf%C3%A9', ['cafe']],
    ['/caf%E9', ['caf%e9']], // not UTF-8: left as escapes
    ['/%EF%BC%A1dmin%EF%BC%8Fx', ['admin', 'x']],
    ['/a/%EF%BC%8E%EF%BC%8E/b/%EF%BC%8E', ['b', '']],
    ['/a%E2%88%95b%C2%A5c', ['a', 'b', 'c']],
    ['/%E6%97%A5%E6%9C%AC', ['日本']],
  ];
  for (const [path, want] of cases) assert.deepEqual(windowsSegments(path), want, path);
});

test('windowsPrefixMatches / windowsPathMatches: segment boundaries and 8.3 aliases', () => {
  const prefix = (p: string, path: string) => windowsPrefixMatches(windowsSegments(p), path);
  const exact = (p: string, path: string) => windowsPathMatches(windowsSegments(p), path);
  const cases: Array<[boolean, boolean, string, string]> = [
    // [want, exact?, route, request]
    [true, false, '/admin', '/ADMIN./x'],
    [false, false, '/admin', '/administrator'],
    [true, false, '/admin/', '/admin%20/'],
    [true, false, '/admin/', '/admin'], // the folder's own path (session 31 audit; before: false)
    [true, false, '/', '/anything'],
    [true, false, '/administration', '/ADMINI~1'],
    [true, false, '/administration', '/admini~12/x'],
    [false, false, '/administration', '/ADMINX~1'],
    [true, false, '/Program Files', '/PROGRA~1'],
    [true, true, '/a/long-file-name.html', '/a/LONG-F~1.HTM'],
    [false, true, '/a/b', '/a/b/'],
    [true, true, '/a/b', '/A/B.'],
    [false, true, '/a/b', '/a/b/c'],
  ];
  for (const [want, isExact, route, path] of cases) assert.equal(isExact ? exact(route, path) : prefix(route, path), want, `${route} ${path}`);
});

test('path-spelling without path, path-prefix or path-regex warns', () => {
  const kdl = (m: string) => `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { ${m} }; upstream "u" } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;
  assert.deepEqual(configDiagnostics(kdl('method "GET"; path-spelling "windows"')).warnings, ['routes > route "r" > matches > path-spelling: has no effect without path, path-prefix or path-regex']);
  // session 22: a path-regex is matched on the Windows readings too
  assert.deepEqual(configDiagnostics(kdl('path-regex "^/a"; path-spelling "windows"')).warnings, []);
  assert.deepEqual(configDiagnostics(kdl('path-prefix "/a"; path-spelling "windows"')).warnings, []);
});

test('windowsKeyPath: the route\'s own reading of a request path (rate-limit keys)', () => {
  const exact = [windowsSegments('/login.aspx')];
  const prefixes = [windowsSegments('/administration'), windowsSegments('/api/')];
  const table: [string, string][] = [
    ['/LOGIN~1.ASP', '/login.aspx'],
    ['/login.aspx::$DATA', '/login.aspx'],
    ['/Login.aspx.', '/login.aspx'],
    ['/ADMINI~1/Users.aspx', '/administration/users.aspx'],
    ['/administration:$I30/x', '/administration/x'],
    ['/api/V1', '/api/v1'],
    ['/x/..%20/login.aspx', '/login.aspx'],
    ['/%2561dministration/a', '/administration/a'],
    ['/%25252561dministration/a', '/administration/a'],
    ['/other:batch', '/other'],
  ];
  for (const [path, want] of table) assert.equal(windowsKeyPath(exact, prefixes, path), want, path);
});

test('regexLiteralNames: the runs of name characters a path-regex spells (session 24)', () => {
  assert.deepEqual(regexLiteralNames('^/administration/[0-9]+$'), ['administration']);
  assert.deepEqual(regexLiteralNames('\\.aspx$'), ['.aspx']);
  assert.deepEqual(regexLiteralNames('^/(admin|Administration)/'), ['admin', 'administration']);
  assert.deepEqual(regexLiteralNames('^/api/v[12]/internal\\-tools/.*'), ['api', 'v', 'internal-tools']);
  assert.deepEqual(regexLiteralNames('^/x[]a]y/\\d+z'), ['x', 'y', 'z']);
});

test('shortNameReadingPaths: an 8.3 alias as each long name it may stand for, and its base (session 24)', () => {
  assert.deepEqual(shortNameReadingPaths('/ADMINI~1/5', ['administration', 'admin']), ['/admini/5', '/administration/5']);
  assert.deepEqual(shortNameReadingPaths('/x/LOGIN~1.ASP', ['.aspx', '.html']), ['/x/login', '/x/login.aspx']);
  assert.deepEqual(shortNameReadingPaths('/administration/5', ['administration']), [], 'no alias, no reading');
  assert.deepEqual(shortNameReadingPaths('/a~b/5', ['administration']), [], 'not an 8.3 name');
  const many = shortNameReadingPaths(`/${Array.from({ length: 8 }, (_, i) => `ABCDEF~${i + 1}`).join('/')}`, ['abcdefgh', 'abcdefghi', 'abcdefx']);
  assert.ok(many.length > 0 && many.length <= 64, `bounded: ${many.length}`);
});
