// The CLI as a user runs it: bin/sentinel.mjs in a child process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from '../../helpers/http.ts';

const bin = fileURLToPath(new URL('../../../bin/sentinel.mjs', import.meta.url));
const fixtures = fileURLToPath(new URL('../../fixtures/', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SENTINEL_CONFIG: '' } });

test('--version and --help', () => {
  const v = run('--version');
  assert.equal(v.status, 0);
  assert.match(v.stdout, /^sentinel \d+\.\d+\.\d+/);
  const h = run('--help');
  assert.equal(h.status, 0);
  assert.match(h.stdout, /sentinel test -c FILE/);
  // docs/operations.md names validate as a spelling of test: --help says so, and it works
  assert.match(h.stdout, /sentinel validate -c FILE/);
  const validate = run('validate', '-c', join(fixtures, 'example-passthrough.kdl'));
  assert.equal(validate.status, 0, validate.stderr);
  assert.match(validate.stdout, /test is successful/);
});

test('sentinel test: success line, exit 0', () => {
  const r = run('test', '-c', join(fixtures, 'example-multi-file/zentinel.kdl'));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /configuration file .*zentinel\.kdl test is successful/);
});

test('sentinel test --dump: the compiled config as JSON on stdout, secrets redacted; only with test', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-cli-dump-'));
  const file = join(dir, 'd.kdl');
  writeFileSync(
    file,
    `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/api" }; upstream "u"; policies { timeout-secs 3 } } }
upstreams { upstream "u" { target "127.0.0.1:1" } }
agents { agent "a" { unix-socket "/tmp/a.sock"; config { api-key "hunter2" } } }
`,
  );
  const r = run('test', '-c', file, '--dump');
  assert.equal(r.status, 0, r.stderr);
  const view = JSON.parse(r.stdout) as { routes: { id: string; timeout_ms: number; matches: unknown }[] };
  assert.deepEqual(
    view.routes.map((x) => [x.id, x.timeout_ms, x.matches]),
    [['r', 3000, { 'path-prefix': ['/api'] }]],
  );
  assert.doesNotMatch(r.stdout, /hunter2/);
  assert.match(r.stderr, /test is successful/);
  const wrong = run('run', '--dump', '-c', file);
  assert.equal(wrong.status, 2);
  assert.match(wrong.stderr, /--dump goes with "sentinel test"/);
});

test('sentinel test: errors and exit 1 on a bad config; lint prints warnings', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-cli-'));
  const bad = join(dir, 'bad.kdl');
  writeFileSync(bad, 'system { }\nlisteners { listener "http" { address "127.0.0.1:0" } }\nroutes { route "r" { upstream "nope" } }\n');
  const r = run('test', '-c', bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown upstream "nope"/);
  assert.match(r.stderr, /test failed/);
  const lint = run('lint', '-c', join(fixtures, 'example-multi-file/zentinel.kdl'));
  assert.equal(lint.status, 0);
  assert.match(lint.stderr, /unknown key "max-connections"/);
  const missing = run('test', '-c', join(dir, 'nope.kdl'));
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /not found/);
  const unknownArg = run('--frobnicate');
  assert.equal(unknownArg.status, 2);
});

test('sentinel run serves the config, reloads on SIGHUP and drains on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-cli-run-'));
  const file = join(dir, 's.kdl');
  const cfg = (handler: string) => `system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; builtin-handler "${handler}" } }
`;
  writeFileSync(file, cfg('health'));
  const child = spawn(process.execPath, [bin, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    // On a loaded CI machine the start can be slow; whatever happens, the failure says what the
    // child printed on both streams (a bare "no start line" once left nothing to go on).
    const timer = setTimeout(() => reject(new Error(`no start line within 60 s; stdout: ${out}; stderr: ${err}`)), 60_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sentinel run exited (${code ?? signal}) before its start line; stdout: ${out}; stderr: ${err}`));
    });
    child.stdout.on('data', () => {
      const m = /http=[^"]*:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  assert.equal(JSON.parse((await request(`http://127.0.0.1:${port}/`)).body).status, 'healthy');
  writeFileSync(file, cfg('status'));
  child.kill('SIGHUP');
  const deadline = Date.now() + 30_000;
  let body = '';
  while (Date.now() < deadline) {
    body = (await request(`http://127.0.0.1:${port}/`)).body;
    if (JSON.parse(body).status === 'ok') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(JSON.parse(body).status, 'ok', 'SIGHUP reloaded the status route');
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  assert.equal(code, 0);
});
