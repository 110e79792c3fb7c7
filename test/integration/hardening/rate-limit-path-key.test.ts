// Session 12 audit finding, closed in session 14 (docs/rate-limit.md, "Keys"): a `path` key was the
// normalised path as it stood, so `/x/`, `/X` or `/a%21` were fresh buckets beside `/x` and `/a!`,
// which most applications serve as the same resource. Keys now drop one trailing slash, fold case
// and decode printable-ASCII escapes. Real requests on loopback, paths sent as written (no client
// URL parsing in between).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLimitedGateway, type LimitedGateway } from '../../helpers/rate-limit.ts';

let g: LimitedGateway;
let w: LimitedGateway;
/** One request with the target exactly as written. */
const status = (path: string) => g.status(path);

before(async () => {
  g = await startLimitedGateway([
    { prefix: '/c', key: 'client-ip-and-path' },
    { prefix: '/', key: 'path' },
  ]);
  const windows = 'path-spelling "windows"';
  w = await startLimitedGateway([
    { prefix: '/login.aspx', key: 'path', matches: windows },
    { prefix: '/administration', key: 'client-ip-and-path', matches: windows },
    { prefix: '/', key: 'path' },
  ]);
});

after(async () => {
  await g.close();
  await w.close();
});

const groups: [first: string, respellings: string[]][] = [
  ['/login', ['/login/', '/Login', '/LOGIN/', '//login', '/l%6Fgin', '/x/../login/', '/login?fresh=1']],
  ['/a!b', ['/a%21b', '/A%21B/', '/a!b/']],
  ['/api/v1/items', ['/api/v1/items/', '/API/V1/Items', '/api//v1/./items/', '/api::$INDEX_ALLOCATION/v1/items']],
  // session 21: what IIS serves as /login.aspx (trailing dots and spaces, full-width l, ā)
  ['/login.aspx', ['/login.aspx.', '/LOGIN.ASPX%20', '/login.aspx.%20.', '/%EF%BD%8Cogin.aspx', '/login.%C4%81spx/']],
  // session 23: an NTFS stream suffix on a route WITHOUT path-spelling "windows" (`%24` is `$`)
  ['/logon.aspx', ['/logon.aspx::$DATA', '/LOGON.ASPX:$DATA', '/logon.aspx:%24data', '/logon.aspx:x:$DATA']],
];

test('path key: every respelling of a limited path lands in its bucket (429), other paths do not', async () => {
  for (const [first, respellings] of groups) {
    assert.equal(await status(first), 200, first);
    for (const p of respellings) assert.equal(await status(p), 429, `${p} shares the bucket of ${first}`);
  }
  assert.equal(await status('/login/x'), 200, 'a deeper path is another resource');
  assert.equal(await status('/logins'), 200);
  assert.equal(await status('/login:batch'), 200, 'a `:` custom method is another resource (no data-stream cut)');
  assert.equal(await status('/wiki/D.C.'), 200);
  assert.equal(await status('/wiki/D.C'), 429, 'a trailing dot is not a resource of its own');
});

test('client-ip-and-path key: the same, per client', async () => {
  assert.equal(await status('/c/report'), 200);
  for (const p of ['/c/report/', '/c/Report', '/c/rep%6Frt/']) assert.equal(await status(p), 429, p);
  assert.equal(await status('/c/other'), 200);
});

// Session 22 (open since session 21): the keys left a data stream (`::$DATA`) and 8.3 aliases
// (`LOGIN~1.ASP`) apart, two more buckets per limited path against an IIS upstream. On a route with
// `path-spelling "windows"` the keys now count the route's own reading of the path.
test('on a path-spelling "windows" route the key is the route\'s reading: data streams and 8.3 aliases share the bucket', async () => {
  const s = (path: string) => w.status(path);
  assert.equal(await s('/login.aspx'), 200);
  for (const p of ['/login.aspx::$DATA', '/LOGIN.ASPX:$DATA', '/LOGIN~1.ASP', '/login~2.asp', '/x/..%20/login.aspx', '/%256Cogin.aspx']) assert.equal(await s(p), 429, `${p} shares the bucket of /login.aspx`);
  assert.equal(await s('/administration/users.aspx'), 200);
  for (const p of ['/ADMINI~1/users.aspx', '/administration::$INDEX_ALLOCATION/users.aspx', '/Administration./Users.aspx']) assert.equal(await s(p), 429, `${p} shares the bucket of /administration/users.aspx`);
  assert.equal(await s('/administration/other.aspx'), 200, 'another page is another bucket');
  // a route without the key keeps the `:` (a custom method is its own resource)
  assert.equal(await s('/items'), 200);
  assert.equal(await s('/items:batchGet'), 200);
});
