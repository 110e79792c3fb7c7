// Cluster startup failures: a bad config is rejected by the primary before anything is forked;
// a worker that cannot start stops the whole cluster with a non-zero exit.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../../bin/sentinel.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sentinel-cluster-start-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a bad config exits 1 with the usual diagnostics, before any worker is forked', () => {
  const bad = join(dir, 'bad.kdl');
  writeFileSync(bad, 'system { worker-threads 2 }\nlisteners { listener "http" { address "127.0.0.1:0" } }\nroutes { route "r" { upstream "nope" } }\n');
  const r = spawnSync(process.execPath, [bin, 'run', '-c', bad], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SENTINEL_CONFIG: '' } });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown upstream "nope"/);
  assert.doesNotMatch(r.stdout, /sentinel started/);
});

test('--workers: an invalid value is a usage error', () => {
  const r = spawnSync(process.execPath, [bin, 'run', '--workers', 'many'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SENTINEL_CONFIG: '' } });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--workers needs a non-negative integer/);
});

test('workers that cannot bind their listener stop the cluster with exit 1 (--workers 2 overrides worker-threads 1)', async () => {
  const busy = createServer();
  busy.listen(0, '127.0.0.1');
  await once(busy, 'listening');
  const port = (busy.address() as { port: number }).port;
  try {
    const f = join(dir, 'busy.kdl');
    writeFileSync(f, `system { worker-threads 1 }\nlisteners { listener "http" { address "127.0.0.1:${port}" } }\nroutes { route "r" { matches { path-prefix "/" }; builtin-handler "health" } }\n`);
    const child = spawn(process.execPath, [bin, 'run', '--workers', '2', '-c', f], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SENTINEL_CONFIG: '' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(timer);
    assert.equal(code, 1, `stdout: ${out}\nstderr: ${err}`);
    assert.match(err, /EADDRINUSE/);
    assert.match(out, /worker failed during startup; stopping/);
  } finally {
    busy.close();
  }
});
