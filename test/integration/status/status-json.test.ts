// The status-page builtin over plain HTTP: the JSON report's shape and that it is read from the
// running objects (a killed upstream's breaker opens, the agents' connections, the rate limit's
// rejections, the cache's hits, a failed and a successful reload), the HTML's headers (strict
// CSP, no external assets), and the admin-only rule for a listener outsiders can reach.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from '../../helpers/http.ts';
import { loadConfigText } from '../../../src/config/load.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import { startStatusWorld, driveUntil, flakyTarget, XSS_ROUTE, type StatusWorld } from './helpers.ts';

let w: StatusWorld;

before(async () => {
  w = await startStatusWorld();
});

after(async () => {
  await w?.close();
});

test('the JSON report has every section, typed, from the live gateway', async () => {
  const r = await w.report();
  assert.equal(typeof r.version, 'string');
  assert.equal(typeof r.instance_id, 'string');
  assert.equal(r.generation.current, 1);
  assert.equal(r.generation.serving, 1);
  assert.equal(r.reloads.length, 1);
  assert.equal(r.reloads[0]!.kind, 'start');
  assert.equal(r.reloads[0]!.result, 'success');
  assert.equal(typeof r.reloads[0]!.duration_ms, 'number');
  // the listeners as bound (real ports, not the configured :0)
  assert.deepEqual(
    r.listeners.map((l) => [l.id, l.address, l.loopback]),
    [
      ['http', new URL(w.url).host, true],
      ['admin', new URL(w.admin).host, true],
    ],
  );
  assert.ok(r.routes.some((x) => x.id === 'status-page' && x.kind === 'builtin:status-page' && x.matches === 'path-prefix /_/status'));
  assert.ok(r.routes.some((x) => x.id === XSS_ROUTE && x.upstream === 'solo'));
  const pool = r.upstreams.find((u) => u.id === 'pool')!;
  assert.equal(pool.targets.length, 2);
  for (const t of pool.targets) {
    assert.equal(typeof t.latency?.count, 'number');
    assert.equal(t.circuit_breaker, 'closed');
  }
  assert.deepEqual(r.agents.map((a) => [a.id, a.filters]).sort(), [
    ['gone', ['gone']],
    ['guard', ['guard']],
  ]);
  assert.deepEqual(
    r.rate_limits.map((l) => [l.filter, l.max_rps, l.burst, l.backend]),
    [['tight', 1, 1, 'local']],
  );
  assert.equal(r.cache?.backend, 'memory');
});

test('state changes show up: breaker opens on a killed upstream, agents, rate limit, cache, reloads', async () => {
  await w.killFlaky();
  const open = await driveUntil(w, (r) => flakyTarget(w, r)?.circuit_breaker === 'open', 'flaky breaker open');
  const t = flakyTarget(w, open)!;
  assert.equal(t.status, 'unhealthy');
  assert.ok(t.last_error, 'the last error is kept');
  assert.ok(open.summary.breakers_open >= 1);
  assert.ok(open.summary.targets_unhealthy >= 1);
  const goodTarget = open.upstreams.find((u) => u.id === 'pool')!.targets.find((x) => x.address === w.good.address)!;
  assert.equal(goodTarget.circuit_breaker, 'closed');
  assert.ok(goodTarget.latency!.count > 0 && goodTarget.latency!.p50_ms !== null && goodTarget.latency!.ewma_ms !== null);

  const guard = open.agents.find((a) => a.id === 'guard')!;
  assert.equal(guard.state, 'connected');
  assert.ok(guard.latency.count > 0, 'agent calls were timed');
  const gone = open.agents.find((a) => a.id === 'gone')!;
  assert.equal(gone.state, 'disconnected');
  assert.equal(gone.connections, 0);

  const statuses: number[] = [];
  for (let i = 0; i < 4; i++) statuses.push((await request(`${w.url}/limited/x`)).status);
  assert.ok(statuses.includes(429), `some were limited: ${statuses.join(',')}`);
  const limited = statuses.filter((s) => s === 429).length;
  for (let i = 0; i < 3; i++) assert.equal((await request(`${w.url}/cached/a`)).status, 200);

  const after = await w.report();
  const tight = after.rate_limits.find((l) => l.filter === 'tight')!;
  assert.equal(tight.exceeded, limited);
  assert.equal(tight.passed, 4 - limited);
  assert.equal(tight.keys, 1);
  assert.ok(after.cache!.hits >= 2, `cache hits: ${after.cache!.hits}`);
  assert.ok(after.cache!.entries >= 1);

  await assert.rejects(w.gw.reload('routes { this is not valid'));
  await w.gw.reload(w.config('route "extra" { listeners "http"; matches { path "/extra" }; upstream "solo" }'));
  const reloaded = await w.report();
  assert.equal(reloaded.generation.current, 2);
  assert.deepEqual(
    reloaded.reloads.map((x) => [x.kind, x.result, x.generation]),
    [
      ['reload', 'success', 2],
      ['reload', 'failure', null],
      ['start', 'success', 1],
    ],
  );
  assert.ok(reloaded.reloads[1]!.error && reloaded.reloads[1]!.error.length > 0);
  assert.ok(reloaded.routes.some((x) => x.id === 'extra'));
  // the target state survives the reload (the new generation adopts it)
  assert.ok(flakyTarget(w, reloaded)!.latency!.count >= t.latency!.count);
  await w.restartFlaky();
});

test('the HTML page: strict CSP, no external assets, JSON embedded safely', async () => {
  const r = await request(`${w.admin}/_/status`, { headers: { accept: 'text/html' } });
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^text\/html/);
  const csp = String(r.headers['content-security-policy']);
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'(;|$)/);
  assert.match(csp, /connect-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  assert.equal(r.headers['x-frame-options'], 'DENY');
  assert.doesNotMatch(r.body, /\b(src|href)="(https?:)?\/\//, 'nothing loaded from elsewhere');
  assert.doesNotMatch(r.body, /<link|<img|<iframe/);
  // the odd route id is in the embedded JSON with its < escaped, never as markup
  assert.ok(!r.body.includes(XSS_ROUTE));
  assert.ok(r.body.includes('\\u003cimg src=x id=xss'));
  assert.ok(r.body.includes('data-url="/_/status?format=json"'));
  // JSON by Accept too
  const j = await request(`${w.admin}/_/status`, { headers: { accept: 'application/json' } });
  assert.match(String(j.headers['content-type']), /^application\/json/);
  assert.equal(typeof (JSON.parse(j.body) as { generation: unknown }).generation, 'object');
});

test('the status page is admin-only: refused on a public listener without allow-from', () => {
  const text = (allow: string) => `
listeners { listener "pub" { address "0.0.0.0:8080" } }
routes { route "sp" { matches { path "/status" }; builtin-handler "status-page"; ${allow} } }
`;
  assert.throws(() => loadConfigText(text(''), { validators: pluginValidators }), /builtin-handler "status-page" shows gateway state/);
  assert.doesNotThrow(() => loadConfigText(text('allow-from "10.0.0.0/8"'), { validators: pluginValidators }));
});
