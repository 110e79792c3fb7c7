// The production package as a user installs it: `npm pack` of the build, installed with
// --omit=dev into an empty folder, runs every program from the compiled dist/ without tsx.
import { describe, before, after, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../helpers/redis.ts';
import { request } from '../../helpers/http.ts';
// The test copy of the CRS ($CRS_DIR, else ../shared/conformance/crs).
import { crsDir } from '../../unit/waf-regex/crs-rules.ts';
import { conformanceData, itNeeding } from '../../helpers/needs.ts';
import { installPackedBuild, repoRoot, startProc, waitForOutput, waitForStatus, type PackedInstall, type Proc } from '../../helpers/packed.ts';
import { until } from '../../helpers/until.ts';
import { startCollector } from '../tracing/collector.ts';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'sentinel-pack-'));
let inst: PackedInstall;
const procs: Proc[] = [];
const bin = (name: string) => join(inst.appDir, 'node_modules', '.bin', name);

describe('npm pack + npm install --omit=dev', { timeout: 600_000 }, () => {
  before(async () => {
    inst = await installPackedBuild(tmp);
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('ships the compiled build and its assets, not the sources, and installs no dev tools', async () => {
    const { stdout } = await run('tar', ['-tzf', inst.tarball]);
    const files = stdout.split('\n').filter(Boolean);
    for (const f of ['package/bin/sentinel.mjs', 'package/bin/entrypoint.mjs', 'package/dist/src/cli/main.js', 'package/dist/src/waf/crs/recommended.conf', 'package/dist/config/default.kdl', 'package/dist/agents/echo/main.js']) {
      assert.ok(files.includes(f), `${f} missing from the tarball`);
    }
    assert.deepEqual(files.filter((f) => /^package\/(src|test|plugins|agents|bench)\//.test(f) || f.endsWith('.ts')), []);
    for (const dev of ['tsx', 'typescript', 'eslint']) assert.equal(existsSync(join(inst.appDir, 'node_modules', dev)), false, `${dev} was installed`);
  });

  it('the compiled build names no path of the checkout around it (../shared: test data an installed package never has)', () => {
    const named = readdirSync(join(inst.pkgDir, 'dist'), { recursive: true, encoding: 'utf8' })
      .filter((f) => statSync(join(inst.pkgDir, 'dist', f)).isFile())
      .filter((f) => /shared\/conformance|\.\.\/shared\b/.test(readFileSync(join(inst.pkgDir, 'dist', f), 'latin1')));
    assert.deepEqual(named, []);
  });

  it('sentinel validates its embedded default config from dist/', async () => {
    const { stdout } = await run(bin('sentinel'), ['test'], { cwd: inst.appDir, timeout: 60_000 });
    assert.match(stdout, /dist\/config\/default\.kdl test is successful/);
  });

  /** `sentinel run` from the package (or `start(cfg)`) on a status-page config (plus `extra` KDL), healthy. */
  async function runPacked(name: string, extra = '', start = (cfg: string) => startProc(bin('sentinel'), ['run', '-c', cfg], { cwd: inst.appDir })): Promise<{ gw: Proc; base: string }> {
    const port = await freePort();
    const cfg = join(tmp, `${name}.kdl`);
    writeFileSync(
      cfg,
      `system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:${port}"; default-route "status" } }
routes { route "status" { matches { path-prefix "/" }; builtin-handler "status" } }
${extra}
`,
    );
    const gw = start(cfg);
    procs.push(gw);
    const base = `http://127.0.0.1:${port}`;
    await waitForStatus(`${base}/_/health`, 200, gw);
    return { gw, base };
  }

  it('sentinel runs a config and answers its probes', async () => {
    const { gw, base } = await runPacked('gw');
    assert.equal((await request(`${base}/_/ready`)).status, 200);
    await gw.stop();
    assert.equal(gw.child.exitCode, 0, gw.output());
  });

  it('`npm start` (README\'s quick start) runs the compiled build where there are no sources and no tsx, with $SENTINEL_CONFIG', async () => {
    // the script as npm runs it, without npm's shell in between (a signal must reach the gateway)
    const script = (JSON.parse(readFileSync(join(inst.pkgDir, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start']!;
    const [cmd, ...args] = script.split(' ');
    assert.equal(cmd, 'node', `npm start: ${script}`);
    assert.equal(existsSync(join(inst.appDir, 'node_modules', 'tsx')), false);
    const { gw, base } = await runPacked('npm-start', '', (cfg) => startProc(process.execPath, args, { cwd: inst.pkgDir, env: { SENTINEL_CONFIG: cfg } }));
    assert.equal(JSON.parse((await request(base, { headers: { accept: 'application/json' } })).body).status, 'ok');
    await gw.stop();
    assert.equal(gw.child.exitCode, 0, gw.output());
    assert.doesNotMatch(gw.output(), /tsx/);
  });

  it('tracing exports from dist/ through its export thread when asked (the compiled otlp-worker.js, no tsx)', async () => {
    const collector = await startCollector();
    try {
      // `sentinel run` forks cluster workers with --min-semi-space-size, which a Worker's execArgv refuses
      const { gw, base } = await runPacked('traced', `observability { tracing { backend "otlp" { endpoint "${collector.endpoint}" }; sampling-rate 1; service-name "packed"; scheduled-delay "50ms"; export-thread #true } }`);
      for (let i = 0; i < 3; i++) assert.equal((await request(`${base}/traced/${i}`)).status, 200);
      const traced = () => collector.spans.find((s) => s.attributes['url.path'] === '/traced/2');
      await until(() => `spans from the packed gateway (${collector.requests} exports): ${gw.output()}`, () => traced() !== undefined);
      assert.equal(traced()!.resource['service.name'], 'packed');
      await gw.stop();
      assert.equal(gw.child.exitCode, 0, gw.output());
    } finally {
      await collector.close();
    }
  });

  it('sentinel explain and sentinel migrate from dist/ give the golden outputs of the source tests', async () => {
    // same fixtures, arguments and working directory as test/unit/cli/{explain,migrate}.test.ts
    const golden = (dir: string, name: string) => readFileSync(join(repoRoot, 'test', 'fixtures', dir, 'golden', name), 'utf8');
    const explained = await run(bin('sentinel'), ['explain', '-c', 'test/fixtures/explain/routes.kdl', 'GET', 'http://api.example.com/api/v2/users?id=7', '-H', 'X-Api-Key: k1'], { cwd: repoRoot, timeout: 60_000 });
    assert.equal(explained.stdout, golden('explain', 'host-prefix-match.txt'));
    const refused = await run(bin('sentinel'), ['explain', '-c', 'test/fixtures/explain/routes.kdl', '/api/v2/users;jsessionid=1'], { cwd: repoRoot, timeout: 60_000 });
    assert.equal(refused.stdout, golden('explain', 'front-door-refusal.txt'));
    const migrated = await run(bin('sentinel'), ['migrate', '-c', 'test/fixtures/migrate/legacy.kdl'], { cwd: repoRoot, timeout: 60_000 });
    assert.equal(`exit 0\n--- stdout\n${migrated.stdout}--- stderr\n${migrated.stderr}`, golden('migrate', 'legacy.txt'));
  });

  itNeeding(conformanceData('crs').missing, 'sentinel-waf loads the CRS given with --crs-dir, and without a CRS says how to get one', {}, async () => {
    const waf = startProc(bin('sentinel-waf'), ['--socket', join(tmp, 'waf.sock'), '--crs-dir', crsDir], { cwd: inst.appDir });
    procs.push(waf);
    await waitForOutput(waf, 'listening on');
    assert.match(waf.output(), /\d+ rules loaded/);
    await waf.stop();

    const missing = await run(bin('sentinel-waf'), ['--socket', join(tmp, 'waf2.sock')], { cwd: inst.appDir, env: { ...process.env, CRS_DIR: join(tmp, 'nothing-here') } }).then(
      () => assert.fail('sentinel-waf started without a CRS'),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(missing.code, 2);
    for (const hint of ['--crs-dir', 'CRS_DIR', 'scripts/fetch-crs.sh', '/usr/share/sentinel/crs']) assert.ok(missing.stderr.includes(hint), `no "${hint}" in: ${missing.stderr}`);
  });

  it('the container entrypoint selects the program by its first argument', async () => {
    const entry = join(inst.pkgDir, 'bin', 'entrypoint.mjs');
    assert.match((await run(process.execPath, [entry, 'sentinel', '--version'], { timeout: 60_000 })).stdout, /^sentinel \d/);
    assert.match((await run(process.execPath, [entry, 'sentinel-waf', '--help'], { timeout: 60_000 })).stdout, /--crs-dir DIR/);
    assert.match((await run(process.execPath, [entry, '--version'], { timeout: 60_000 })).stdout, /^sentinel \d/);
  });

  it('the reference agents run from dist/', async () => {
    const echo = startProc(process.execPath, [join(inst.pkgDir, 'dist', 'agents', 'echo', 'main.js'), '--socket', join(tmp, 'echo.sock')], { cwd: inst.appDir });
    procs.push(echo);
    await waitForOutput(echo, 'echo agent listening');
    await echo.stop();
  });
});
