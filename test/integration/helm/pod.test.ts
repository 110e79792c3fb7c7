// Plays the pod: renders helm/sentinel, writes the rendered ConfigMap's KDL where the Deployment
// mounts it (each mount path mapped to a temp folder, the image's /app to the installed package,
// /usr/share/sentinel/crs to the test copy of the CRS), installs the `npm pack` tarball with
// --omit=dev, starts each rendered container as the image would (node bin/entrypoint.mjs + the
// rendered args and env), runs the rendered probes on the rendered ports, and sends an attack
// through the WAF (the sidecar, or the gateway's in-process engine) when it is on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../helpers/redis.ts';
import { request } from '../../helpers/http.ts';
import { chartDir, find, helm, render, type K8sObject } from '../../helpers/helm.ts';
import { installPackedBuild, startProc, waitForStatus, type PackedInstall, type Proc } from '../../helpers/packed.ts';
// The test copy of the CRS ($CRS_DIR, else ../shared/conformance/crs).
import { crsDir } from '../../unit/waf-regex/crs-rules.ts';
import { conformanceData, itNeeding } from '../../helpers/needs.ts';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'sentinel-pod-'));
let inst: PackedInstall;
const procs: Proc[] = [];

interface Probe {
  httpGet?: { path: string; port: string };
  exec?: { command: string[] };
}
interface Container {
  name: string;
  /** set when the chart gives node flags: ["node", ...flags, "/app/bin/entrypoint.mjs"] */
  command?: string[];
  args: string[];
  env: { name: string; value: string }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe: Probe;
  readinessProbe: Probe;
  startupProbe: Probe;
  volumeMounts: { name: string; mountPath: string }[];
}
interface PodDeployment extends K8sObject {
  spec: { template: { spec: { containers: Container[]; volumes: { name: string; configMap?: { name: string; items?: { key: string; path: string }[] } }[] } } };
}

/** Pod paths -> folders on this machine. */
type PathMap = [string, string][];
/** One pass (a mapped path is never mapped again), whole path segments only, longest first. */
function mapPath(map: PathMap, text: string): string {
  const froms = map.map(([from]) => from).sort((a, b) => b.length - a.length);
  const re = new RegExp(`(${froms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})(?=[/"\\s]|$)`, 'gm');
  return text.replace(re, (m) => map.find(([from]) => from === m)![1]);
}

/** Lays out the pod's volumes in `root` and returns the path map the containers run with. */
function layOutPod(objs: K8sObject[], root: string): PathMap {
  const d = find<PodDeployment>(objs, 'Deployment')!;
  const map: PathMap = [
    ['/usr/share/sentinel/crs', crsDir],
    ['/app', inst.pkgDir],
  ];
  for (const c of d.spec.template.spec.containers) {
    for (const m of c.volumeMounts) {
      const local = join(root, m.name);
      mkdirSync(local, { recursive: true });
      if (!map.some(([from]) => from === m.mountPath)) map.unshift([m.mountPath, local]);
    }
  }
  const cm = find<K8sObject & { data: Record<string, string> }>(objs, 'ConfigMap')!;
  const vol = d.spec.template.spec.volumes.find((v) => v.configMap?.name === cm.metadata.name)!;
  for (const item of vol.configMap!.items!) writeFileSync(join(root, vol.name, item.path), mapPath(map, cm.data[item.key]!));
  return map;
}

function startContainer(c: Container, map: PathMap): Proc {
  const env = Object.fromEntries(c.env.map((e) => [e.name, mapPath(map, e.value)]));
  // the image's ENTRYPOINT is `node /app/bin/entrypoint.mjs`; a rendered command replaces it
  const [node, ...entry] = c.command ?? ['node', '/app/bin/entrypoint.mjs'];
  assert.equal(node, 'node', `${c.name}: the image runs node`);
  const p = startProc(process.execPath, [...entry.map((a) => mapPath(map, a)), ...c.args.map((a) => mapPath(map, a))], { cwd: tmp, env });
  procs.push(p);
  return p;
}

async function execProbe(probe: Probe, map: PathMap, owner: Proc): Promise<void> {
  const [cmd, ...args] = probe.exec!.command.map((a) => mapPath(map, a));
  assert.equal(cmd, 'node');
  const deadline = Date.now() + 90_000;
  for (;;) {
    const ok = await run(process.execPath, args, { timeout: 10_000 }).then(
      () => true,
      () => false,
    );
    if (ok) return;
    if (owner.child.exitCode !== null || Date.now() > deadline) throw new Error(`exec probe ${args.join(' ')} never passed:\n${owner.output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function playPod(name: string, valuesFiles: string[], set: string[] = []): Promise<{ url: string; gateway: Proc }> {
  const [http, metrics] = await Promise.all([freePort(), freePort()]);
  const objs = await render({ valuesFiles, set: [`ports.http=${http}`, `ports.metrics=${metrics}`, 'listenHost=127.0.0.1', ...set] });
  const root = join(tmp, name);
  const map = layOutPod(objs, root);
  const containers = find<PodDeployment>(objs, 'Deployment')!.spec.template.spec.containers;
  const sidecar = containers.find((c) => c.name === 'waf');
  if (sidecar) {
    const waf = startContainer(sidecar, map);
    await execProbe(sidecar.startupProbe, map, waf);
    await execProbe(sidecar.livenessProbe, map, waf);
    await execProbe(sidecar.readinessProbe, map, waf);
  }
  const c = containers.find((x) => x.name === 'sentinel')!;
  const gateway = startContainer(c, map);
  const portOf = (p: Probe) => c.ports!.find((x) => x.name === p.httpGet!.port)!.containerPort;
  const url = (p: Probe) => `http://127.0.0.1:${portOf(p)}${p.httpGet!.path}`;
  await waitForStatus(url(c.startupProbe), 200, gateway, 90_000);
  assert.equal((await request(url(c.livenessProbe))).status, 200, 'liveness');
  assert.equal((await request(url(c.readinessProbe))).status, 200, 'readiness');
  assert.equal(portOf(c.livenessProbe), http, 'the probes use the port the test rendered');
  // The image's HEALTHCHECK (bin/healthcheck.mjs) with the rendered env.
  const env = Object.fromEntries(c.env.map((e) => [e.name, e.value]));
  await run(process.execPath, [join(inst.pkgDir, 'bin', 'healthcheck.mjs')], { env: { ...process.env, ...env }, timeout: 10_000 });
  return { url: `http://127.0.0.1:${http}`, gateway };
}

describe('the chart played as a pod from the npm package', { timeout: 900_000 }, () => {
  before(async () => {
    await helm();
    inst = await installPackedBuild(tmp);
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('default values: probes answer 200 on the rendered port, SIGTERM stops it cleanly', async () => {
    const { url, gateway } = await playPod('default', []);
    assert.equal((await request(`${url}/anything`)).status, 404);
    await gateway.stop();
    assert.equal(gateway.child.exitCode, 0, gateway.output());
  });

  /** Attacks get the WAF's 403, a clean request reaches the catch-all route. */
  async function wafAnswers(url: string): Promise<void> {
    // A browser-like request: the CRS scores missing Accept/User-Agent and a numeric Host at PL2.
    const headers = { host: 'shop.example', 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64)', accept: 'text/html' };
    const get = (path: string) => request(`${url}${path}`, { headers });
    for (const attack of ["/?id=1' OR '1'='1", '/?q=<script>alert(1)</script>']) {
      const r = await get(attack.replace(/[' <>()]/g, encodeURIComponent));
      assert.equal(r.status, 403, attack);
      assert.equal(r.headers['x-waf-blocked'], 'true', `${attack}: the 403 comes from the WAF agent`);
    }
    assert.equal((await get('/?q=blue+shoes')).status, 404, 'a clean request reaches the catch-all route');
  }

  itNeeding(conformanceData('crs').missing, 'WAF sidecar on: probes answer 200, an attack gets 403 from the sidecar, a clean request passes', {}, async () => {
    // A generous agent timeout: this is about the wiring, not latency, on a machine that may be loaded
    // (the default 200 ms can run out on a cold first request and give 504, failure-mode closed).
    const { url } = await playPod('waf', [join(chartDir, 'ci', 'waf-values.yaml')], ['waf.timeoutMs=10000']);
    await wafAnswers(url);
  });

  itNeeding(conformanceData('crs').missing, 'WAF in process: one container; its probes answer once the CRS is compiled, an attack gets 403 from the gateway itself', {}, async () => {
    // the chart's own agent timeout (200 ms): the engine was built before the listeners opened and
    // an in-process call cannot time out once started (docs/agents.md), so the first answers are verdicts
    const { url } = await playPod('waf-in-process', [join(chartDir, 'ci', 'waf-in-process-values.yaml')]);
    await wafAnswers(url);
  });
});
