// The container image without a Docker engine: the Dockerfile's instructions carried out by
// test/helpers/image.ts (every stage an overlay over this Debian bookworm + Node 20 root, RUN
// verbatim inside it but for the substitutions below), then the image run as containers: its
// ENTRYPOINT/CMD, USER, WORKDIR and ENV, a private network, `-v` mounts; and the Helm chart's
// rendered gateway container (command, args, env, probes, read-only root, run-as user) in it.
// What this does not prove is in docs/deploy.md ("What is tested without Docker").
import { it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DockerBuild, imageHostMissing, listFiles, parseDockerfile, parseDockerignore, type Container, type Stage, type Substitution } from '../../helpers/image.ts';
import { conformanceData, describeNeeding } from '../../helpers/needs.ts';
import { chartDir, find, render, type K8sObject } from '../../helpers/helm.ts';
import { installPackedBuild, repoRoot, type Proc } from '../../helpers/packed.ts';

const run = promisify(execFile);
const crs = conformanceData('crs');
const missing = (await imageHostMissing()) ?? crs.missing;

const tmp = mkdtempSync(join(tmpdir(), 'sentinel-image-'));
let build: DockerBuild;
let image: Stage;
const containers: Container[] = [];
const procs: Proc[] = [];

/** Where the test cannot do what the RUN line does, and what it does instead. */
function substitutions(crsTarball: string, crsSha: string): Substitution[] {
  return [
    {
      from: 'npm ci --no-audit --no-fund',
      to: `ln -s ${join(repoRoot, 'node_modules')} node_modules`,
      why: 'a full install with dev dependencies (and re2 compiled from source) takes many minutes here: the checkout node_modules, installed from the same package-lock.json',
    },
    {
      from: 'bash scripts/fetch-crs.sh --dest /out/crs',
      to: `bash scripts/fetch-crs.sh --from-file ${crsTarball} --sha256 ${crsSha} --dest /out/crs`,
      why: 'tests never reach github.com: the same script and destination, on a release-shaped tarball of the test copy of CRS v4.28.0',
    },
    {
      from: 'npm ci --omit=dev --no-audit --no-fund',
      to: `npm ci --omit=dev --no-audit --no-fund --ignore-scripts --prefer-offline && cp -R ${join(repoRoot, 'node_modules', 're2', 'build')} node_modules/re2/`,
      why: 're2 is the one production dependency with an install script (checked below): its addon compiled by the checkout install (same re2, same Node) instead of minutes of g++',
    },
  ];
}

const FETCH_URL = (port: number, path: string) => `http://127.0.0.1:${port}${path}`;

describeNeeding(missing, 'the Dockerfile carried out without Docker', { timeout: 1_200_000 }, () => {
  before(async () => {
    const crsTarball = join(tmp, 'coreruleset.tar.gz');
    await run('tar', ['-czf', crsTarball, '--transform', 's,^\\.,coreruleset-4.28.0,', '-C', crs.dir, './rules', './crs-setup.conf.example', './LICENSE']);
    const crsSha = createHash('sha256').update(readFileSync(crsTarball)).digest('hex');
    const ignore = parseDockerignore(readFileSync(join(repoRoot, '.dockerignore'), 'utf8'));
    build = new DockerBuild(tmp, repoRoot, ignore, substitutions(crsTarball, crsSha));
    image = await build.build(parseDockerfile(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8')));
  });
  after(async () => {
    await Promise.all([...containers.map((c) => c.stop()), ...procs.map((p) => p.stop())]);
    rmSync(tmp, { recursive: true, force: true });
  });

  /** An HTTP server in the container's network answering its own name and the request path. */
  async function upstream(c: Container, port: number): Promise<void> {
    const script = join(tmp, 'upstream.mjs');
    writeFileSync(script, `import { createServer } from 'node:http';\ncreateServer((req, res) => res.end('upstream saw ' + req.url)).listen(${port}, '127.0.0.1', () => console.log('listening'));\n`);
    const p = c.inNet(process.execPath, [script]);
    procs.push(p);
    const deadline = Date.now() + 30_000;
    while (!p.output().includes('listening')) {
      if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`upstream did not start: ${p.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Through the gateway on 8080 of `c` (upstream on 3000): a SQLi is a WAF 403, a benign GET reaches the upstream. */
  async function assertWafVerdicts(c: Container): Promise<void> {
    const headers = { host: 'shop.example', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64)', accept: 'text/html' };
    const attack = await c.request(FETCH_URL(8080, `/api/?id=${encodeURIComponent("1' OR '1'='1")}`), headers);
    assert.equal(attack.status, 403, attack.body);
    assert.equal(attack.headers['x-waf-blocked'], 'true');
    const clean = await c.request(FETCH_URL(8080, '/api/shoes?q=blue'), headers);
    assert.deepEqual([clean.status, clean.body], [200, 'upstream saw /api/shoes?q=blue']);
  }

  it('the runtime stage holds the packed tarball under /app, production dependencies only, and the CRS', async () => {
    const build_ = build.stages.get('build')!;
    const tarball = join(build_.upper, 'out', 'sentinel-gateway.tgz');
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const packed = stdout.split('\n').filter((f) => f && !f.endsWith('/')).map((f) => f.replace(/^package\//, '')).sort();
    const app = join(image.upper, 'app');
    const installed = listFiles(app).filter((f) => !f.startsWith('node_modules/'));
    assert.deepEqual(installed, [...packed, 'package-lock.json'].sort(), 'the image /app is the tarball plus the lockfile');
    assert.ok(packed.includes('dist/src/cli/main.js') && packed.includes('bin/entrypoint.mjs') && packed.includes('docs/deploy.md'));
    // the same tarball the package tests install (docs/deploy.md): every file, with its size (the
    // build stamp's time and commit aside), so a build input the Dockerfile does not COPY shows here
    const sizes = async (tgz: string) => new Map((await run('tar', ['-tvzf', tgz], { maxBuffer: 16 << 20 })).stdout.split('\n').filter((l) => l && !l.startsWith('d')).map((l) => l.trim().split(/\s+/)).map((f) => [f.at(-1)!.replace(/^package\//, ''), f[2] ?? '']));
    const mine = await sizes(tarball);
    const theirs = await sizes((await installPackedBuild(join(tmp, 'package-test'))).tarball);
    for (const m of [mine, theirs]) m.delete('dist/build-info.json');
    assert.deepEqual([...mine].sort(), [...theirs].sort(), 'the image build stage packs what the package tests install');
    for (const dev of ['tsx', 'typescript', 'eslint', '@types']) assert.equal(existsSync(join(app, 'node_modules', dev)), false, `${dev} in the image`);
    // the substitution above skips install scripts: re2 must be the only production package with one
    const lock = JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; hasInstallScript?: boolean }> };
    assert.deepEqual(Object.entries(lock.packages).filter(([k, p]) => k && !p.dev && p.hasInstallScript).map(([k]) => k), ['node_modules/re2']);
    assert.ok(existsSync(join(image.upper, 'usr', 'share', 'sentinel', 'crs', 'crs-setup.conf.example')));
    assert.ok(listFiles(join(image.upper, 'usr', 'share', 'sentinel', 'crs', 'rules')).some((f) => f.endsWith('.conf')));
    assert.equal(image.user, '10001:10001');
  });

  it('docker run <image>: ENTRYPOINT + CMD as user 10001 serve the embedded default config; /_/health, /_/ready, HEALTHCHECK pass; SIGTERM exits 0', async () => {
    const c = await build.container(image);
    containers.push(c);
    await c.waitFor(FETCH_URL(8080, '/_/health'), 200);
    assert.equal((await c.request(FETCH_URL(8080, '/_/ready'))).status, 200);
    const status = await c.request(FETCH_URL(8080, '/'), { accept: 'application/json' });
    assert.equal(status.status, 200);
    assert.equal(JSON.parse(status.body).status, 'ok');
    const hc = await c.exec(image.healthcheck!);
    assert.equal(hc.code, 0, `HEALTHCHECK ${image.healthcheck!.join(' ')}: ${hc.stderr}`);
    const ps = await c.exec(['node', '-e', 'console.log(process.getuid(), process.cwd())']);
    assert.equal(ps.stdout.trim(), '10001 /app');
    assert.equal(await c.stop(), 0, c.proc.output());
    assert.doesNotMatch(c.proc.output(), /running them through tsx/);
  });

  it('docker run -v my.kdl:/etc/sentinel/config.kdl <image> sentinel run -c ... (docs/deploy.md): a proxied request reaches the upstream', async () => {
    const kdl = join(tmp, 'my.kdl');
    writeFileSync(
      kdl,
      `system { worker-threads 1; graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "0.0.0.0:8080" } }
routes { route "all" { matches { path-prefix "/" }; upstream "app" } }
upstreams { upstream "app" { target "127.0.0.1:3000" } }
`,
    );
    const c = await build.container(image, { args: ['sentinel', 'run', '-c', '/etc/sentinel/config.kdl'], binds: [[kdl, '/etc/sentinel/config.kdl']] });
    containers.push(c);
    await c.waitFor(FETCH_URL(8080, '/_/ready'), 200);
    await upstream(c, 3000);
    const r = await c.request(FETCH_URL(8080, '/hello?x=1'));
    assert.deepEqual([r.status, r.body], [200, 'upstream saw /hello?x=1']);
    assert.equal(await c.stop(), 0, c.proc.output());
  });

  it('the Helm chart gateway container in this image: rendered command, args, env, user, read-only root, probes and the image HEALTHCHECK agree', async () => {
    const objs = await render({ set: ['config.upstreams=upstream "app" { target "127.0.0.1:3000" }', 'config.routes=route "app" { matches { path-prefix "/app" }; upstream "app" }'] });
    type Probe = { httpGet: { path: string; port: string } };
    type Ctr = { name: string; command?: string[]; args: string[]; env: { name: string; value: string }[]; ports: { name: string; containerPort: number }[]; livenessProbe: Probe; readinessProbe: Probe; startupProbe: Probe; securityContext: { readOnlyRootFilesystem: boolean }; volumeMounts: { name: string; mountPath: string }[] };
    const d = find<K8sObject & { spec: { template: { spec: { securityContext: { runAsUser: number; runAsGroup?: number }; containers: Ctr[]; volumes: { name: string; emptyDir?: object }[] } } } }>(objs, 'Deployment')!;
    const pod = d.spec.template.spec;
    const ctr = pod.containers.find((x) => x.name === 'sentinel')!;
    const cm = find<K8sObject & { data: Record<string, string> }>(objs, 'ConfigMap')!;
    // the chart's command keeps the image's entrypoint script; its user is the image's USER
    assert.equal(ctr.command?.at(-1), image.entrypoint!.at(-1));
    assert.equal(`${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup ?? pod.securityContext.runAsUser}`, image.user);
    const values = { http: 8080, https: 8443, metrics: 9091 };
    for (const p of Object.values(values)) assert.ok(image.expose.includes(p), `EXPOSE lacks the chart default port ${p}`);
    const configDir = join(tmp, 'chart-config');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'config.kdl'), cm.data['config.kdl']!);
    const mount = (name: string) => ctr.volumeMounts.find((m) => m.name === name)!.mountPath;
    const emptyDirs = pod.volumes.filter((v) => v.emptyDir && ctr.volumeMounts.some((m) => m.name === v.name)).map((v) => mount(v.name));
    const c = await build.container(image, {
      command: ctr.command,
      args: ctr.args,
      env: Object.fromEntries(ctr.env.map((e) => [e.name, e.value])),
      user: `${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup ?? pod.securityContext.runAsUser}`,
      binds: [[configDir, mount('config')]],
      tmpfs: emptyDirs,
      readOnlyRoot: ctr.securityContext.readOnlyRootFilesystem,
    });
    containers.push(c);
    const port = (p: Probe) => ctr.ports.find((x) => x.name === p.httpGet.port)!.containerPort;
    await c.waitFor(FETCH_URL(port(ctr.startupProbe), ctr.startupProbe.httpGet.path), 200);
    assert.equal((await c.request(FETCH_URL(port(ctr.livenessProbe), ctr.livenessProbe.httpGet.path))).status, 200);
    assert.equal((await c.request(FETCH_URL(port(ctr.readinessProbe), ctr.readinessProbe.httpGet.path))).status, 200);
    // the image's HEALTHCHECK, with the chart's env, checks the liveness probe's URL
    const hcUrl = ctr.env.find((e) => e.name === 'SENTINEL_HEALTHCHECK_URL')?.value;
    assert.equal(hcUrl, FETCH_URL(port(ctr.livenessProbe), ctr.livenessProbe.httpGet.path));
    assert.equal((await c.exec(image.healthcheck!)).code, 0);
    await upstream(c, 3000);
    const r = await c.request(FETCH_URL(port(ctr.readinessProbe), '/app/x'));
    assert.deepEqual([r.status, r.body], [200, 'upstream saw /app/x']);
    assert.equal((await c.request(FETCH_URL(port(ctr.readinessProbe), '/elsewhere'))).status, 404);
    const metrics = await c.request(FETCH_URL(ctr.ports.find((p) => p.name === 'metrics')!.containerPort, '/metrics'));
    assert.equal(metrics.status, 200);
    assert.equal(await c.stop(), 0, c.proc.output());
    assert.ok(existsSync(join(chartDir, 'values.yaml')));
  });

  it('the WAF sidecar of the chart in this image loads the CRS installed by the build from its default location and blocks an attack', async () => {
    const objs = await render({ valuesFiles: [join(chartDir, 'ci', 'waf-values.yaml')], set: ['config.upstreams=upstream "api" { target "127.0.0.1:3000" }', 'waf.timeoutMs=10000'] });
    type Ctr = { name: string; command?: string[]; args: string[]; env?: { name: string; value: string }[]; volumeMounts: { name: string; mountPath: string }[]; readinessProbe: { exec?: { command: string[] } } };
    const pod = find<K8sObject & { spec: { template: { spec: { containers: Ctr[] } } } }>(objs, 'Deployment')!.spec.template.spec;
    const waf = pod.containers.find((x) => x.name === 'waf')!;
    const gw = pod.containers.find((x) => x.name === 'sentinel')!;
    const socketDir = join(tmp, 'waf-socket');
    const configDir = join(tmp, 'waf-config');
    mkdirSync(socketDir, { mode: 0o777 });
    mkdirSync(configDir);
    await run('chmod', ['0777', socketDir]);
    writeFileSync(join(configDir, 'config.kdl'), find<K8sObject & { data: Record<string, string> }>(objs, 'ConfigMap')!.data['config.kdl']!);
    const mountOf = (c: Ctr, name: string) => c.volumeMounts.find((m) => m.name === name)!.mountPath;
    const env = (c: Ctr) => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value]));
    const sidecar = await build.container(image, { command: waf.command, args: waf.args, env: env(waf), binds: [[socketDir, mountOf(waf, 'waf-socket')]], tmpfs: ['/tmp'], readOnlyRoot: true });
    containers.push(sidecar);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const probe = await sidecar.exec(waf.readinessProbe.exec!.command);
      if (probe.code === 0) break;
      if (sidecar.proc.child.exitCode !== null || Date.now() > deadline) throw new Error(`the WAF readiness probe never passed:\n${sidecar.proc.output()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.match(sidecar.proc.output(), /\d+ rules loaded/);
    const c = await build.container(image, { command: gw.command, args: gw.args, env: env(gw), binds: [[socketDir, mountOf(gw, 'waf-socket')], [configDir, mountOf(gw, 'config')]], tmpfs: ['/tmp'], readOnlyRoot: true, netOf: sidecar });
    containers.push(c);
    await c.waitFor(FETCH_URL(8080, '/_/ready'), 200);
    await upstream(c, 3000);
    await assertWafVerdicts(c);
  });

  it('the chart with the WAF in process, in this image: the gateway alone (read-only root, the image\'s user) compiles the CRS the build installed, then serves verdicts', async () => {
    const objs = await render({ valuesFiles: [join(chartDir, 'ci', 'waf-in-process-values.yaml')], set: ['config.upstreams=upstream "api" { target "127.0.0.1:3000" }'] });
    type Probe = { httpGet: { path: string; port: string } };
    type Ctr = { name: string; command?: string[]; args: string[]; env: { name: string; value: string }[]; volumeMounts: { name: string; mountPath: string }[]; startupProbe: Probe; readinessProbe: Probe };
    const pod = find<K8sObject & { spec: { template: { spec: { securityContext: { runAsUser: number; runAsGroup?: number }; containers: Ctr[] } } } }>(objs, 'Deployment')!.spec.template.spec;
    assert.deepEqual(pod.containers.map((x) => x.name), ['sentinel']);
    const gw = pod.containers[0]!;
    const configDir = join(tmp, 'waf-in-process-config');
    mkdirSync(configDir);
    writeFileSync(join(configDir, 'config.kdl'), find<K8sObject & { data: Record<string, string> }>(objs, 'ConfigMap')!.data['config.kdl']!);
    const c = await build.container(image, {
      command: gw.command,
      args: gw.args,
      env: Object.fromEntries(gw.env.map((e) => [e.name, e.value])),
      user: `${pod.securityContext.runAsUser}:${pod.securityContext.runAsGroup ?? pod.securityContext.runAsUser}`,
      binds: [[configDir, gw.volumeMounts.find((m) => m.name === 'config')!.mountPath]],
      tmpfs: ['/tmp'],
      readOnlyRoot: true,
    });
    containers.push(c);
    await c.waitFor(FETCH_URL(8080, gw.startupProbe.httpGet.path), 200);
    const ready = await c.request(FETCH_URL(8080, gw.readinessProbe.httpGet.path)).catch((e: Error) => assert.fail(`${e.message}\n${c.proc.output()}`));
    assert.equal(ready.status, 200);
    await upstream(c, 3000);
    await assertWafVerdicts(c);
    assert.equal(await c.stop(), 0, c.proc.output());
  });
});
