// Limits that used to be accepted and ignored (issue 17 item 11): header name/value size -> 431,
// max-in-flight-requests -> 503, system { pid-file } written and removed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../../helpers/until.ts';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { startUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';
import { oversizedHeader } from '../../../src/server/request-limits.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('oversizedHeader: table', () => {
  const cases: [string[], number, number, string | undefined][] = [
    [['a', 'b'], 1, 1, undefined],
    [['ab', 'b'], 1, 1, 'name'],
    [['a', 'bc'], 1, 1, 'value'],
    [['x', 'ok', 'long-name', 'v'], 4, 4, 'name'],
    [[], 1, 1, undefined],
  ];
  for (const [raw, n, v, want] of cases) assert.equal(oversizedHeader(raw, n, v)?.part, want, JSON.stringify(raw));
});

test('max-header-name-bytes / max-header-value-bytes -> 431; max-in-flight-requests -> 503', async () => {
  let release: () => void = () => undefined;
  const held = new Promise<void>((r) => (release = r));
  const up = await startUpstream((req, res) => {
    if (req.url === '/slow') void held.then(() => res.end('slow'));
    else res.end('ok');
  });
  cleanups.push(() => up.close());
  const { gw, url } = await gatewayFrom(simpleConfig(up.address, { top: 'limits { max-header-name-bytes 16; max-header-value-bytes 100; max-in-flight-requests 1 }' }));
  cleanups.push(() => gw.close());
  assert.equal((await request(`${url()}/x`, { headers: { 'x-v': 'a'.repeat(100) } })).status, 200);
  const longValue = await request(`${url()}/x`, { headers: { 'x-v': 'a'.repeat(101) } });
  assert.equal(longValue.status, 431);
  assert.equal(JSON.parse(longValue.body).error, 'Request Header Fields Too Large');
  assert.equal((await request(`${url()}/x`, { headers: { 'x-seventeen-chars': '1' } })).status, 431);
  // one request held at the upstream fills the single slot; the next is refused, then served again
  const slow = request(`${url()}/slow`);
  await until('the held request at the upstream', () => up.seen.some((s) => s.url === '/slow'));
  const busy = await request(`${url()}/x`);
  assert.equal(busy.status, 503);
  assert.equal(busy.headers['retry-after'], '1');
  release();
  assert.equal((await slow).body, 'slow');
  assert.equal((await request(`${url()}/x`)).status, 200);
});

test('system { pid-file } is written by the running gateway and removed when it stops', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-pid-'));
  const file = join(dir, 's.kdl');
  writeFileSync(file, `system { worker-threads 1; graceful-shutdown-timeout-secs 1; pid-file "run/s.pid" }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { builtin-handler "health" } }
`);
  mkdirSync(join(dir, 'run'));
  const bin = fileURLToPath(new URL('../../../bin/sentinel.mjs', import.meta.url));
  const child = spawn(process.execPath, [bin, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => void child.kill('SIGKILL'));
  const pidFile = join(dir, 'run/s.pid');
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start line: ${out}`)), 60_000);
    const check = () => {
      if (existsSync(pidFile)) {
        clearTimeout(timer);
        resolve();
      } else setTimeout(check, 50);
    };
    check();
  });
  assert.equal(readFileSync(pidFile, 'utf8').trim(), String(child.pid));
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  assert.equal(existsSync(pidFile), false);
});
