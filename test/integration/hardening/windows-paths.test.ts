// Windows path spellings (session 20 audit; docs/security.md, "Windows path spellings"): IIS and
// NTFS serve `/admin.`, `/admin%20`, `/ADMIN`, `/admin::$DATA` and the 8.3 alias `/ADMINI~1` of
// `/administration` as the protected resource. Routed on their spelling, they fell to the
// catch-all and past the protected route's allow-from. `matches { path-spelling "windows" }`
// makes the protected route claim them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;
const seen: string[] = [];

before(async () => {
  up = await startUpstream((req, res) => {
    seen.push(req.url!);
    res.end('catch-all');
  });
  gw = (
    await gatewayFrom(`
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "admin" { matches { path-prefix "/admin"; path-spelling "windows" }; upstream "iis"; allow-from "10.9.9.9" }
  route "long" { matches { path "/administration/users.aspx"; path-spelling "windows" }; upstream "iis"; allow-from "10.9.9.9" }
  route "exact" { matches { path-prefix "/secret" }; upstream "iis"; allow-from "10.9.9.9" }
  route "reports" { matches { path-regex "^/reports/[0-9]+$"; path-spelling "windows" }; upstream "iis"; allow-from "10.9.9.9" }
  route "manage" { matches { path-regex "^/management/[a-z]+\\\\.aspx$"; path-spelling "windows" }; upstream "iis"; allow-from "10.9.9.9" }
  route "aspx" { matches { path-regex "^/app/.*\\\\.aspx$"; path-spelling "windows" }; upstream "iis"; allow-from "10.9.9.9" }
  route "tools" { matches { path-regex "^/tool[a-z]*/"; path-spelling "windows" }; upstream "iis"; allow-from "10.9.9.9" }
  route "all" { matches { path-prefix "/" }; upstream "iis" }
}
upstreams { upstream "iis" { target "${up.address}" } }
`)
  ).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
});

const get = (target: string) => rawRequest(port, http1('GET', target, ['Host: a', 'Connection: close']));

test('Windows spellings of a path-spelling "windows" route are routed to it (403 here), never to the catch-all', async () => {
  const spellings = [
    '/admin', '/ADMIN', '/Admin/x', '/admin.', '/admin..', '/admin%20', '/admin.%20.', '/admin./users', '/admin%20/users',
    '/admin::$DATA', '/admin:$DATA', '/ADMIN::$INDEX_ALLOCATION/x', '/admin:x', '/.../admin', '/admin?x=1',
    '/administration/users.aspx', '/ADMINI~1/users.aspx', '/admini~2/USERS~1.ASP', '/administration./users.aspx.', '/Administration/Users.aspx::$DATA',
  ];
  for (const s of spellings) assert.equal((await get(s)).status, 403, s);
  assert.deepEqual(seen, [], 'the upstream saw none of them');
});

// Session 21: best-fit spellings (full-width letters, dots and solidus, a letter with a mark, a
// division slash) are what an application using Windows' ANSI file APIs reads as `/admin`; before,
// the route did not claim them and they reached the catch-all.
test('best-fit Unicode spellings of a path-spelling "windows" route are routed to it (403), never to the catch-all', async () => {
  seen.length = 0;
  const spellings = [
    '/%EF%BD%81dmin', // ａdmin (U+FF41)
    '/%EF%BC%A1%EF%BC%A4%EF%BC%AD%EF%BC%A9%EF%BC%AE', // ＡＤＭＩＮ
    '/admin%EF%BC%8Fusers', // admin／users (U+FF0F)
    '/x/%EF%BC%8E%EF%BC%8E/admin', // /x/．．/admin
    '/x%EF%BC%BC..%EF%BC%BCadmin', // x＼..＼admin (U+FF3C)
    '/x%E2%88%95..%E2%88%95admin', // x∕..∕admin (U+2215 division slash)
    '/%C4%81dmin', // ādmin (U+0101)
    '/a%CC%88dmin', // a + combining diaeresis
    '/admin%EF%BC%9A%EF%BC%9A%EF%BC%84DATA', // admin：：＄DATA
    '/admin%C2%A0', // admin + no-break space
    '/ADMINI%EF%BD%9E1/users.aspx', // ADMINI～1 (8.3 alias of /administration)
  ];
  for (const s of spellings) assert.equal((await get(s)).status, 403, s);
  assert.deepEqual(seen, [], 'the upstream saw none of them');
});

// Session 22 (open since session 21): a `..%20` segment (read as a name whose trailing space and dots
// are trimmed, so dropped, it left `/x/admin`; a reader that trims first resolves it to the parent),
// a double-encoded path (`%2561`, `%252e%252e`: an upstream that decodes twice reads `/admin`), and a
// path-regex route under the rule (matched on the path as sent: `/REPORTS/1`, `/reports/1.`) all
// reached the catch-all.
test('..%20 segments, double-encoded spellings and path-regex routes under path-spelling "windows" are claimed (403)', async () => {
  seen.length = 0;
  const spellings = [
    '/x/..%20/admin', '/x/%20../admin', '/x/..%20./admin', '/x/...%20/admin',
    '/%2561dmin', '/x/%252e%252e/admin', '/x/%252E%252E/ADMIN', '/x%252F..%252Fadmin', '/x%255C..%255Cadmin', '/%2541DMIN%2520',
    '/REPORTS/1', '/reports/1.', '/reports/1%20', '/reports/1::$DATA', '/%EF%BD%92eports/1', '/x/..%20/reports/2', '/%2572eports/3',
    // session 23: decoded three and four times
    '/%252561dmin', '/x/%25252e%25252e/admin', '/%25252561dmin', '/%25252572eports/4',
  ];
  for (const s of spellings) assert.equal((await get(s)).status, 403, s);
  assert.deepEqual(seen, [], 'the upstream saw none of them');
});

// Session 24 (open since session 22): an 8.3 alias against a path-regex route under the rule. A regex
// cannot see `MANAGE~1` (it needs the long name), so `/MANAGE~1/users.aspx` reached the catch-all.
// The alias is now read as each long name the regex spells that it may stand for, and as its base.
test('8.3 aliases against path-regex routes under path-spelling "windows" are claimed (403)', async () => {
  seen.length = 0;
  const spellings = ['/MANAGE~1/users.aspx', '/manage~2/USERS.ASPX', '/MANAGE~1/users.aspx.', '/app/x/LOGIN~1.ASP', '/app/DEFAUL~1.ASP', '/TOOLKI~1/run', '/toolbo~3/x', '/MANAGE~1/%2575sers.aspx'];
  for (const s of spellings) assert.equal((await get(s)).status, 403, s);
  assert.deepEqual(seen, [], 'the upstream saw none of them');
  // an alias of another name, and a regex that names no file there, stay with the catch-all
  for (const s of ['/MANAGX~1/users.aspx', '/app/x/LOGIN~1.HTM', '/TOOL~1X/run', '/REPORT~1/1x']) assert.equal((await get(s)).status, 200, s);
});

test('other paths stay with the catch-all; a route without path-spelling matches its exact spelling only', async () => {
  seen.length = 0;
  for (const s of ['/reports/abc', '/reportsx/1', '/x/..%20/public', '/files/100%25', '/%2561dministrator', '/%2525252561dmin', '/administrator', '/adminx', '/wiki/Washington,_D.C.', '/x/admin.', '/administration/users.aspx/x', '/ADMINX~1/users.aspx', '/secret.', '/SECRET', '/%EF%BD%81dministrator', '/caf%E9', '/%E6%97%A5%E6%9C%AC']) {
    const r = await get(s);
    assert.equal(r.status, 200, s);
    assert.equal(r.body, 'catch-all', s);
  }
  assert.equal((await get('/secret')).status, 403);
  assert.deepEqual(seen, ['/reports/abc', '/reportsx/1', '/x/..%20/public', '/files/100%25', '/%2561dministrator', '/%2525252561dmin', '/administrator', '/adminx', '/wiki/Washington,_D.C.', '/x/admin.', '/administration/users.aspx/x', '/ADMINX~1/users.aspx', '/secret.', '/SECRET', '/%EF%BD%81dministrator', '/caf%E9', '/%E6%97%A5%E6%9C%AC']);
});
