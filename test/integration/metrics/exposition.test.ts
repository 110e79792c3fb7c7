// The /metrics exposition of a real gateway using several features (https listener, rate limit,
// an agent filter, health checks, breakers, retries): promtool accepts it, docs/metrics.md lists
// exactly the metrics the code exports, and client-chosen values never become label values.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:https';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { h2Once } from '../../helpers/http.ts';
import { Pki } from '../../helpers/pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { documentedMetrics, exposedMetrics, registeredInSource, repoRoot } from '../../helpers/metric-names.ts';
import { requireCli } from '../tls/harness.ts';

let pki: Pki;
let up: TestUpstream;
let gw: Gateway;
let base: string;
let exposition: string;

before(async () => {
  requireCli('promtool', "apt-get install -y prometheus (Debian's package ships promtool; scripts/setup.sh installs it)");
  requireCli('openssl', 'apt-get install -y openssl');
  pki = await Pki.create();
  const ca = await pki.ca('ca');
  await ca.issue('site', { cn: 'site', dns: ['site.test'] });
  up = await startUpstream();
  gw = await startGateway({
    baseDir: pki.dir,
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
cache { }
observability { tracing { backend "otlp" { endpoint "http://127.0.0.1:9/v1/traces" }; sampling-rate 1; scheduled-delay "20ms"; export-timeout "200ms" } }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "https" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "site.crt"; key-file "site.key" } }
}
agents {
  agent "waf" type="waf" {
    unix-socket path="${pki.dir}/no-agent.sock"
    events "request_headers"
    timeout-ms 100
    circuit-breaker { failure-threshold 2; success-threshold 1; timeout-seconds 30; half-open-max-requests 1 }
  }
}
filters {
  filter "rl" { type "rate-limit"; max-rps 0.01; burst 1 }
  filter "waf" { type "agent"; agent "waf"; failure-mode "open"; timeout-ms 100 }
  filter "stamp" { type "plugin"; module "${join(repoRoot, 'examples', 'plugins', 'header-stamp.mjs')}"; config { header "x-stamp"; value "v1" } }
}
routes {
  route "metrics" { priority "high"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "cached" { matches { path-prefix "/cached" }; upstream "backend"; cache { enabled #true } }
  route "limited" { matches { path-prefix "/limited" }; filters "rl"; upstream "backend" }
  route "inspected" { matches { path-prefix "/inspected" }; filters "waf"; upstream "backend" }
  route "api" { matches { path-prefix "/api" }; filters "stamp"; upstream "backend"; retry-policy { max-attempts 2 } }
}
upstreams {
  upstream "backend" {
    target "${up.address}"
    health-check { type "http" { path "/health" }; interval-secs 1; timeout-secs 1 }
    circuit-breaker { failure-threshold 3; success-threshold 1; timeout-seconds 1; half-open-max-requests 1 }
  }
}
`,
  });
  base = `http://127.0.0.1:${gw.address('http').port}`;

  for (const path of ['/cached/1', '/cached/1', '/api/a', '/api/b?q=1', '/limited/1', '/limited/2', '/inspected/x', '/no-route-here']) await (await fetch(base + path)).text();
  // client-chosen methods (HTTP/1.1 and h2): must not become label values
  await (await fetch(base + '/api/m', { method: 'PROPFIND' })).text();
  await h2Once(gw.address('http').port, { ':method': 'WEIRDMETHOD', ':path': '/api/h2' });
  await httpsGet(gw.address('https').port, '/api/tls');
  exposition = await (await fetch(base + '/metrics')).text();
});

after(async () => {
  await gw?.close();
  await up?.close();
  await pki?.close();
});


function httpsGet(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, servername: 'site.test', rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test('promtool check metrics accepts the exposition', () => {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  assert.equal(r.status, 0, `promtool check metrics failed:\n${r.stdout}${r.stderr}`);
  assert.match(exposition, /^sentinel_requests_total\{route="api",method="GET",status="200"\} [1-9]/m);
});

test('every exported metric is documented in docs/metrics.md with its type, and every documented one is exported', () => {
  const documented = documentedMetrics();
  const exposed = exposedMetrics(exposition);
  const inSource = registeredInSource();
  assert.ok(exposed.size > 60 && inSource.size > 40, `scrape (${exposed.size}) and source (${inSource.size}) both found metrics`);
  // This config registers every feature's metrics, so the scrape must hold every name in the source.
  for (const name of inSource) assert.ok(exposed.has(name), `${name} is registered in the source but the feature-rich gateway does not export it`);
  const exported = new Set([...exposed.keys(), ...inSource]);
  const undocumented = [...exported].filter((n) => !documented.has(n));
  assert.deepEqual(undocumented, [], 'exported but missing from docs/metrics.md');
  const stale = [...documented.keys()].filter((n) => !exported.has(n));
  assert.deepEqual(stale, [], 'documented in docs/metrics.md but not exported');
  for (const [name, type] of exposed) assert.equal(documented.get(name), type, `type of ${name} in docs/metrics.md`);
});

test('labels fed by the client stay in bounded sets', () => {
  assert.doesNotMatch(exposition, /PROPFIND|WEIRDMETHOD/, 'raw client methods are not label values');
  assert.match(exposition, /^sentinel_requests_total\{route="api",method="OTHER",status="\d+"\} [1-9]/m);
  assert.doesNotMatch(exposition, /no-route-here|q=1|\/api\/a/, 'no raw paths or queries in labels');
  assert.match(exposition, /^sentinel_requests_total\{route="_none",/m);
});
