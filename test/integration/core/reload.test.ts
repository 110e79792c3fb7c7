// Generations and reload: a new config takes effect atomically, a bad one changes nothing,
// and a reload loop under sustained traffic loses no request.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { ConfigError } from '../../../src/config/diagnostics.ts';

let a: TestUpstream;
let b: TestUpstream;
let gw: Gateway;
let base: string;
let file: string;

const config = (target: string, extraRoute = '') => `
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "main" { matches { path-prefix "/" }; upstream "u" }
  ${extraRoute}
}
upstreams { upstream "u" { target "${target}" } }
`;

before(async () => {
  a = await startUpstream((_req, res) => res.end('A'));
  b = await startUpstream((_req, res) => res.end('B'));
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-reload-'));
  file = join(dir, 'sentinel.kdl');
  writeFileSync(file, config(a.address));
  gw = await startGateway({ configPath: file, logLevel: 'silent' });
  base = `http://127.0.0.1:${gw.address('http').port}`;
});

after(async () => {
  await gw.close();
  await a.close();
  await b.close();
});

test('reload from the file switches upstreams and adds routes', async () => {
  assert.equal((await request(`${base}/`)).body, 'A');
  writeFileSync(file, config(b.address, 'route "h" { matches { path "/h" }; builtin-handler "health" }'));
  await gw.reload();
  assert.equal((await request(`${base}/`)).body, 'B');
  assert.equal((await request(`${base}/h`)).status, 200);
  assert.equal(gw.current.number, 2);
});

test('a bad config on reload keeps the running one', async () => {
  const before = gw.current.number;
  writeFileSync(file, 'system { }\nlisteners { listener "http" { address "127.0.0.1:0" } }\nroutes { route "x" { upstream "missing" } }\n');
  await assert.rejects(gw.reload(), (err: unknown) => err instanceof ConfigError && /unknown upstream "missing"/.test(err.message));
  assert.equal(gw.current.number, before);
  assert.equal((await request(`${base}/`)).status, 200);
  const metrics = await gw.metrics.render();
  assert.match(metrics, /sentinel_config_reloads_total\{result="failure"\} 1/);
  writeFileSync(file, config(b.address));
});

test('reload loop during sustained keep-alive traffic loses no request', async () => {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let ok = 0;
  const failures: string[] = [];
  let stop = false;
  const deadline = Date.now() + 20_000; // bounded in time
  const worker = async () => {
    while (!stop && Date.now() < deadline) {
      try {
        const r = await request(`${base}/x`, { agent });
        if (r.status === 200 && (r.body === 'A' || r.body === 'B')) ok++;
        else failures.push(`${r.status} ${r.body}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const workers = Array.from({ length: 8 }, worker);
  // At least 10 reloads, and keep reloading until 200 requests went through (bounded by the deadline).
  for (let i = 0; i < 10 || (ok < 200 && Date.now() < deadline); i++) {
    writeFileSync(file, config(i % 2 ? a.address : b.address));
    await gw.reload();
    await new Promise((r) => setTimeout(r, 50));
  }
  stop = true;
  await Promise.all(workers);
  agent.destroy();
  assert.deepEqual(failures, []);
  assert.ok(ok >= 100, `only ${ok} requests completed`);
});
