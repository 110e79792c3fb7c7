// Admin surfaces are private by default (issue 17 item 8, issue 13 item 6): the embedded default
// config serves the status page and health on all interfaces and the dumps and metrics only on
// its 127.0.0.1 admin listener; allow-from restricts a route to client addresses; status details
// stay on private listeners; no dump shows a secret.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { defaultConfigText, loadConfigText } from '../../../src/config/load.ts';
import { configView } from '../../../src/config/view.ts';
import { configDump } from '../../../src/builtins/handlers.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import { request } from '../../helpers/http.ts';

const gateways: Gateway[] = [];
after(async () => {
  for (const g of gateways) await g.close();
});

async function start(kdl: string): Promise<(listener: string, path: string, headers?: Record<string, string>) => ReturnType<typeof request>> {
  const gw = await startGateway({ configText: kdl, logLevel: 'silent' });
  gateways.push(gw);
  return (listener, path, headers = {}) => request(`http://127.0.0.1:${gw.address(listener).port}${path}`, { headers });
}

test('the embedded default config: public listener shows status and health only; the admin listener has the dumps', async () => {
  const text = defaultConfigText();
  // Same config, ephemeral ports: the public listener still binds every interface.
  const get = await start(text.replace('"0.0.0.0:8080"', '"0.0.0.0:0"').replace('"127.0.0.1:9090"', '"127.0.0.1:0"'));
  for (const path of ['/admin/config', '/admin/upstreams', '/metrics', '/admin/config/x']) {
    const r = await get('default-http', path);
    assert.doesNotMatch(r.body, /listeners|upstreams|sentinel_requests_total|"server"/, `${path} on the public listener`);
    assert.equal(JSON.parse(r.body).status, 'ok', `${path} falls to the status page`);
    assert.equal(JSON.parse(r.body).version, undefined, 'no version on a public listener');
  }
  assert.equal(JSON.parse((await get('default-http', '/health')).body).status, 'healthy');
  const page = await get('default-http', '/', { accept: 'text/html' });
  assert.doesNotMatch(page.body, /admin\/config|\/metrics|Version/, 'the public welcome page links nothing private');
  const dump = JSON.parse((await get('admin', '/admin/config')).body);
  assert.deepEqual(dump.listeners.map((l: { id: string }) => l.id), ['default-http', 'admin']);
  assert.match((await get('admin', '/metrics')).body, /sentinel_requests_total/);
  assert.equal((await get('admin', '/admin/upstreams')).status, 200);
  assert.ok(JSON.parse((await get('admin', '/status')).body).version, 'status details on the loopback listener');
});

test('allow-from: a state-revealing builtin on an all-interfaces listener answers only the listed clients', async () => {
  const get = await start(`
listeners { listener "http" { address "0.0.0.0:0" } }
routes {
  route "ours" { matches { path "/mine" }; allow-from "127.0.0.0/8" "::1"; builtin-handler "config" }
  route "theirs" { matches { path "/theirs" }; allow-from "10.0.0.0/8"; builtin-handler "config" }
  route "status" { priority "low"; builtin-handler "status" }
  route "app" {
    matches { path-prefix "/app"; method "GET" "POST" }
    upstream "u"
    websocket #true
    websocket-allowed-origins "https://App.example.com"
    policies { timeout-secs 7; max-body-size "1KB"; max-body-buffer-bytes 0; forward-method-override "PUT"; failure-mode "closed" }
  }
}
upstreams { upstream "u" { target "127.0.0.1:1" } }`);
  const mine = await get('http', '/mine');
  assert.equal(mine.status, 200);
  // the dump shows what each route lets through and how it fails, as the config view does
  const routes = JSON.parse(mine.body).routes as Record<string, unknown>[];
  const byId = (id: string) => routes.find((r) => r.id === id);
  assert.deepEqual(byId('theirs')?.allow_from, ['10.0.0.0/8']);
  assert.deepEqual(byId('status')?.allow_from, null);
  const app = byId('app')!;
  assert.deepEqual(app.matches, { 'path-prefix': ['/app'], method: ['GET', 'POST'] });
  assert.equal(app.timeout_ms, 7000);
  assert.equal(app.max_body_bytes, 1024);
  assert.equal(app.body_buffer_bytes, 0);
  assert.deepEqual(app.forward_method_override, ['PUT']);
  assert.deepEqual(app.websocket_allowed_origins, ['https://app.example.com']);
  assert.equal(app.failure_mode, 'closed');
  const denied = await get('http', '/theirs');
  assert.equal(denied.status, 403);
  assert.equal(JSON.parse(denied.body).error, 'Forbidden');
  assert.equal(JSON.parse((await get('http', '/x')).body).version, undefined);
});

test('the default config, the old default shape, and dumps: no secret and no exposed dump', () => {
  // The shape the default config had before: dumps on 0.0.0.0:8080 for every listener.
  assert.throws(
    () => loadConfigText(`listeners { listener "http" { address "0.0.0.0:8080" } }\nroutes { route "config" { matches { path-prefix "/admin/config" }; builtin-handler "config" } }`),
    /builtin-handler "config" shows gateway state, and listener "http" \(0\.0\.0\.0:8080\) is not bound to a loopback address/,
  );
  const config = loadConfigText(
    `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path "/" }; upstream "u"; filters "rl" "agent" } }
upstreams { upstream "u" { target "127.0.0.1:1" } }
filters {
  filter "rl" { type "rate-limit"; max-rps 5; key "client-ip"; backend "redis"; redis-url "redis://app:hunter2-redis@127.0.0.1:6379/0" }
  filter "agent" { type "agent"; agent "waf" }
}
agents { agent "waf" { unix-socket "/tmp"; config { api-key "hunter2-agent"; token "hunter2-token"; endpoint "https://svc:hunter2-url@example.invalid/x" } } }`,
    { validators: pluginValidators },
  );
  for (const dump of [configView(config), configDump(config)]) {
    const text = JSON.stringify(dump);
    assert.doesNotMatch(text, /hunter2/);
  }
  const view = JSON.stringify(configView(config));
  assert.match(view, /redis:\/\/app:<redacted>@127\.0\.0\.1:6379\/0/, 'the URL stays readable, without its password');
});

test('/admin/config shows what applies: keys accepted and never read are left out, and listed with the loader warning when set', async () => {
  const admin = `listeners { listener "admin" { address "127.0.0.1:0" } }
routes { route "config" { matches { path-prefix "/admin/config" }; builtin-handler "config" } }`;
  // Nothing set: no route-cache-size 1000 / daemon false that nothing reads (the schema used to fill them in).
  const plain = JSON.parse((await (await start(`system { worker-threads 1 }\n${admin}`))('admin', '/admin/config')).body);
  assert.deepEqual(Object.keys(plain.server).sort(), ['auto-reload', 'graceful-shutdown-timeout-secs', 'max-connections', 'trace-id-format', 'worker-threads']);
  assert.deepEqual(plain.not_implemented, []);
  // Set: still out of server/limits, and listed with the same message `sentinel lint` prints.
  const kdl = `system { worker-threads 1; route-cache-size 50; daemon #true }\nlimits { max-queued-requests 10; max-header-count 50 }\n${admin}`;
  const dump = JSON.parse((await (await start(kdl))('admin', '/admin/config')).body);
  for (const key of ['route-cache-size', 'daemon']) assert.equal(key in dump.server, false, `server.${key}`);
  assert.equal('max-queued-requests' in dump.limits, false);
  assert.equal(dump.limits['max-header-count'], 50, 'a limit that applies stays');
  const warnings = loadConfigText(kdl).warnings.filter((w) => w.message.startsWith('not implemented')).map((w) => ({ path: w.path, message: w.message }));
  assert.equal(warnings.length, 3);
  assert.deepEqual(dump.not_implemented, warnings);
});

// Session 29 audit (audit29): the status builtin's welcome page listed every builtin route the
// listener serves, with its path, to anyone: an allow-from `config` or `metrics` route on a public
// listener gave its path away to a client it refuses. Only the detail view (a loopback listener,
// an allow-from status route) lists those now.
test('the welcome page on a public listener does not list state-revealing builtins to an anonymous client', async () => {
  const kdl = (statusAllow: string) => `
listeners { listener "http" { address "0.0.0.0:0" } }
routes {
  route "cfg" { matches { path "/ops-7f3a/config" }; allow-from "10.0.0.0/8"; builtin-handler "config" }
  route "prom" { matches { path "/ops-7f3a/metrics" }; allow-from "127.0.0.0/8"; builtin-handler "metrics" }
  route "health" { matches { path "/healthz" }; builtin-handler "health" }
  route "status" { matches { path-prefix "/" }; priority "low"; ${statusAllow} builtin-handler "status" }
}`;
  const anon = await start(kdl(''));
  const page = await anon('http', '/', { accept: 'text/html' });
  assert.equal(page.status, 200);
  assert.match(page.body, /\/healthz/, 'the public builtins are still listed');
  assert.doesNotMatch(page.body, /ops-7f3a/, 'no path of an admin builtin');
  // a client the status route lets in (allow-from) sees them all
  const ops = await start(kdl('allow-from "127.0.0.0/8";'));
  assert.match((await ops('http', '/', { accept: 'text/html' })).body, /\/ops-7f3a\/config[^]*\/ops-7f3a\/metrics/);
});
