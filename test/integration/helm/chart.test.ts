// helm/sentinel rendered and linted by a real Helm (scripts/fetch-helm.sh), every object checked
// against the Kubernetes API schema, the values schema refusing bad values, and the rendered KDL
// compiled by the gateway's own loader (the probes use a port the config really serves).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { loadConfigText } from '../../../src/config/load.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import { chartDir, find, helm, lint, refusal, render, repoRoot, type K8sObject } from '../../helpers/helm.ts';
import { openssl } from '../../helpers/pki.ts';
import { unknownFields, validateObject } from '../../helpers/k8s-schema.ts';

interface Probe {
  httpGet?: { path: string; port: string };
  exec?: { command: string[] };
  initialDelaySeconds?: number;
  periodSeconds?: number;
  failureThreshold?: number;
}
interface Container {
  name: string;
  command?: string[];
  args: string[];
  env?: { name: string; value: string }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe: Probe;
  readinessProbe: Probe;
  startupProbe: Probe;
  resources?: { requests?: { cpu?: string | number } };
  securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean; capabilities: { drop: string[] } };
  volumeMounts: { name: string; mountPath: string; subPath?: string }[];
}
interface Deployment extends K8sObject {
  spec: {
    replicas?: number;
    template: {
      metadata: { annotations?: Record<string, string> };
      spec: {
        containers: Container[];
        volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string }; emptyDir?: object }[];
        securityContext: { runAsNonRoot: boolean; seccompProfile: { type: string } };
        topologySpreadConstraints: unknown[];
      };
    };
  };
}
interface Service extends K8sObject {
  spec: { ports: { name: string; port: number; targetPort: string }[] };
}

const valueSets: Record<string, string[]> = {
  default: [],
  waf: [join(chartDir, 'ci', 'waf-values.yaml')],
  'WAF in process': [join(chartDir, 'ci', 'waf-in-process-values.yaml')],
  tls: [join(chartDir, 'ci', 'tls-values.yaml')],
  'existing ConfigMap': [join(chartDir, 'ci', 'existing-configmap-values.yaml')],
  'autoscaling + PDB + ServiceMonitor + NetworkPolicy': [join(chartDir, 'ci', 'scaling-values.yaml')],
};
const monitoringApi = ['monitoring.coreos.com/v1'];

/** prometheus-operator's ServiceMonitor is a CRD (in neither model package): the fields the chart uses. */
const serviceMonitorFields: Record<string, string[]> = {
  '': ['apiVersion', 'kind', 'metadata', 'spec'],
  '.spec': ['selector', 'endpoints', 'namespaceSelector', 'jobLabel'],
  '.spec.endpoints[]': ['port', 'path', 'interval', 'scrapeTimeout', 'scheme'],
};

function kdlOf(objs: K8sObject[]): string {
  const cm = find<K8sObject & { data: Record<string, string> }>(objs, 'ConfigMap');
  assert.ok(cm, 'no ConfigMap rendered');
  return cm.data['config.kdl']!;
}

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'sentinel-chart-'));

/** The values README.md shows under "Deploy on Kubernetes" (its first yaml block there), as a values file: the newcomer's example must render and load. */
function readmeValues(): string {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Deploy on Kubernetes'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(block, 'README.md "Deploy on Kubernetes" has no yaml block');
  const file = join(tmp, 'readme-values.yaml');
  writeFileSync(file, block[1]!);
  return file;
}
valueSets['README example'] = [readmeValues()];

const gateway = (d: Deployment) => d.spec.template.spec.containers.find((c) => c.name === 'sentinel')!;

/**
 * CPU-seconds one process takes from its start to the answer its startup probe waits for, rounded
 * up from what session 25 measured on the `npm pack` build under a 10% CPU quota (the chart's
 * 100m request; docs/deploy.md, "Session 25 (ship25)"): the gateway 0.86 (8.8 s wall), the gateway
 * with the in-process WAF 1.65-1.84 (16.6-18.7 s; the CRS compile), sentinel-waf with one engine
 * process 0.97 (15.5 s). A compile's CPU grows with the node's slower cores too: the budget asks twice.
 */
const START_CPU_S = { gateway: 1, inProcessWaf: 2, sidecar: 1 };
const START_MARGIN = 2;
/** Kubernetes CPU quantity -> cores ("100m", "0.5", 2). */
const cores = (q: string | number | undefined): number => (q === undefined ? NaN : typeof q === 'number' ? q : q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q));
/** Seconds the kubelet gives a container to pass its startup probe before it kills it. */
const startBudget = (p: Probe) => (p.initialDelaySeconds ?? 0) + (p.periodSeconds ?? 10) * (p.failureThreshold ?? 3);

/** Containers whose startup budget does not cover START_MARGIN x their measured start at their CPU request, with the figures. */
function shortStartBudgets(objs: K8sObject[]): string[] {
  const d = find<Deployment>(objs, 'Deployment')!;
  const short: string[] = [];
  for (const c of d.spec.template.spec.containers) {
    let cpuS: number;
    if (c.name === 'waf') cpuS = START_CPU_S.sidecar * Number(c.args[c.args.indexOf('--workers') + 1]);
    else {
      const config = loadConfigText(kdlOf(objs));
      const inProcess = JSON.stringify(config.raw.agents ?? {}).includes('"in-process"');
      cpuS = (inProcess ? START_CPU_S.inProcessWaf : START_CPU_S.gateway) * Math.max(1, config.system['worker-threads']);
    }
    const need = (START_MARGIN * cpuS) / cores(c.resources?.requests?.cpu);
    const budget = startBudget(c.startupProbe);
    if (!(budget >= need)) short.push(`${c.name}: startup budget ${budget} s < ${need.toFixed(0)} s (${START_MARGIN} x ${cpuS} CPU-s at ${c.resources?.requests?.cpu} CPU)`);
  }
  return short;
}
const port = (c: Container, name: string) => c.ports?.find((p) => p.name === name)?.containerPort;

describe('helm/sentinel', { timeout: 300_000 }, () => {
  before(async () => {
    await helm();
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  for (const [name, valuesFiles] of Object.entries(valueSets)) {
    describe(`values: ${name}`, () => {
      it('passes helm lint --strict', async () => {
        const out = await lint({ valuesFiles });
        assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      });

      it('renders objects that match the Kubernetes API schema, field names included', async () => {
        const objs = await render({ valuesFiles, apiVersions: monitoringApi });
        assert.ok(objs.length >= 3);
        for (const o of objs) {
          if (o.kind === 'ServiceMonitor') continue;
          assert.deepEqual(await validateObject(o), [], `${o.kind} ${o.metadata.name}`);
        }
      });

      if (name !== 'existing ConfigMap') {
        it('the rendered ConfigMap passes `sentinel validate` and `sentinel lint` without a warning (the CLI, as an operator checks it)', async () => {
          // the TLS Secret's files where the chart mounts them: a folder of this test's (tls.mountPath)
          const tls = join(tmp, name.replace(/\W+/g, '-'));
          mkdirSync(tls, { recursive: true });
          await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(tls, 'tls.key'), '-out', join(tls, 'tls.crt'), '-subj', '/CN=sentinel.example', '-days', '2']);
          const kdl = join(tls, 'config.kdl');
          writeFileSync(kdl, kdlOf(await render({ valuesFiles, set: [`tls.mountPath=${tls}`] })));
          for (const command of ['validate', 'lint']) {
            const r = await run(process.execPath, [join(repoRoot, 'bin', 'sentinel.mjs'), command, '-c', kdl], { timeout: 120_000 }).catch((e: { stdout: string; stderr: string }) => assert.fail(`sentinel ${command}: ${e.stdout}${e.stderr}`));
            assert.match(r.stdout, /test is successful/);
            assert.doesNotMatch(r.stderr, /warning/i, `sentinel ${command}: ${r.stderr}`);
          }
        });
      }

      it('probes /_/health and /_/ready on the port the rendered config listens on; hardened pod', async () => {
        const objs = await render({ valuesFiles });
        const d = find<Deployment>(objs, 'Deployment')!;
        const c = gateway(d);
        assert.deepEqual(c.livenessProbe.httpGet, { path: '/_/health', port: 'http' });
        assert.deepEqual(c.startupProbe.httpGet, { path: '/_/health', port: 'http' });
        assert.deepEqual(c.readinessProbe.httpGet, { path: '/_/ready', port: 'http' });
        const configMount = c.volumeMounts.find((m) => m.name === 'config')!;
        assert.equal(configMount.subPath, undefined, 'a subPath mount never sees ConfigMap updates');
        assert.equal(c.args.at(-1), `${configMount.mountPath}/config.kdl`);
        if (name !== 'existing ConfigMap') {
          const config = loadConfigText(kdlOf(objs));
          assert.ok(config.listeners.some((l) => l.port === port(c, 'http') && l.probes), `no listener serves probes on ${port(c, 'http')}`);
          // Safe defaults: no config/upstreams dumps, nothing on a wildcard address but the routes and probes.
          assert.deepEqual(config.routes.filter((r) => r.builtin === 'config' || r.builtin === 'upstreams').map((r) => r.id), []);
          // Response buffering's temp files (whole gateway) fit the pod's /tmp with 64Mi to spare: an
          // emptyDir past its sizeLimit gets the pod evicted, which a slow-reading client could trip.
          const tmpVolume = d.spec.template.spec.volumes.find((v) => v.name === 'tmp') as { emptyDir?: { sizeLimit?: string } } | undefined;
          const sizeLimit = /^(\d+)Mi$/.exec(tmpVolume?.emptyDir?.sizeLimit ?? '');
          assert.ok(sizeLimit, `/tmp is not an emptyDir sized in Mi: ${JSON.stringify(tmpVolume)}`);
          const fileBytes = config.limits['max-response-buffer-file-bytes'];
          assert.ok(fileBytes !== undefined && fileBytes + 64 * 2 ** 20 <= Number(sizeLimit[1]) * 2 ** 20, `file bound ${fileBytes} vs /tmp ${sizeLimit[1]}Mi`);
        }
        const pod = d.spec.template.spec;
        assert.equal(pod.securityContext.runAsNonRoot, true);
        assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
        assert.ok(pod.topologySpreadConstraints.length > 0);
        for (const ctr of pod.containers) {
          assert.equal(ctr.securityContext.readOnlyRootFilesystem, true);
          assert.equal(ctr.securityContext.allowPrivilegeEscalation, false);
          assert.deepEqual(ctr.securityContext.capabilities.drop, ['ALL']);
        }
      });
    });
  }

  it('Chart.yaml describes this package: version and appVersion are package.json\'s, no home or sources but its own', async () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string; homepage?: string; repository?: string | { url: string } };
    const { stdout } = await run(await helm(), ['show', 'chart', chartDir], { timeout: 60_000 });
    const chart = parse(stdout) as { name: string; version: string; appVersion: string; home?: string; sources?: string[] };
    assert.equal(chart.name, 'sentinel');
    // the image tag defaults to appVersion: the image built from this checkout's package
    assert.equal(chart.appVersion, pkg.version);
    assert.equal(chart.version, pkg.version);
    // session 23's chart had home: the Rust Sentinel's repository, another project
    const own = [pkg.homepage, typeof pkg.repository === 'string' ? pkg.repository : pkg.repository?.url].filter((u): u is string => u !== undefined);
    for (const url of [chart.home, ...(chart.sources ?? [])].filter((u): u is string => u !== undefined)) assert.ok(own.includes(url), `Chart.yaml names ${url}, which is not this package's homepage or repository`);
  });

  it('default values: one gateway container, the Service exposes http only, roll mode checksums the config', async () => {
    const objs = await render();
    const d = find<Deployment>(objs, 'Deployment')!;
    assert.deepEqual(d.spec.template.spec.containers.map((c) => c.name), ['sentinel']);
    assert.deepEqual(find<Service>(objs, 'Service')!.spec.ports.map((p) => p.name), ['http']);
    assert.equal(d.spec.replicas, 2);
    for (const kind of ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ServiceMonitor', 'NetworkPolicy']) assert.equal(find(objs, kind), undefined, kind);
    const sum = d.spec.template.metadata.annotations?.['checksum/config'];
    assert.match(sum ?? '', /^[0-9a-f]{64}$/);
    const changed = find<Deployment>(await render({ set: ['config.upstreams=upstream "x" { target "x:80" }'] }), 'Deployment')!;
    assert.notEqual(changed.spec.template.metadata.annotations?.['checksum/config'], sum, 'a changed config must roll the Deployment');
    assert.match(kdlOf(objs), /auto-reload #false/);
  });

  it('nodeSemiSpaceMb: the gateway container runs node with the young-generation flag (16 by default); 0 leaves the image ENTRYPOINT and turns it off in cluster workers', async () => {
    const env = (c: Container, name: string) => c.env?.find((e) => e.name === name)?.value;
    const dflt = gateway(find<Deployment>(await render({ valuesFiles: valueSets.waf }), 'Deployment')!);
    assert.deepEqual(dflt.command, ['node', '--min-semi-space-size=16', '/app/bin/entrypoint.mjs']);
    assert.equal(env(dflt, 'SENTINEL_SEMI_SPACE_MB'), undefined);
    const waf = find<Deployment>(await render({ valuesFiles: valueSets.waf }), 'Deployment')!.spec.template.spec.containers.find((c) => c.name === 'waf')!;
    assert.equal(waf.command, undefined, 'the WAF agent keeps the image ENTRYPOINT (the flag did not pay there)');
    const big = gateway(find<Deployment>(await render({ set: ['nodeSemiSpaceMb=32'] }), 'Deployment')!);
    assert.deepEqual(big.command, ['node', '--min-semi-space-size=32', '--max-semi-space-size=32', '/app/bin/entrypoint.mjs']);
    const off = gateway(find<Deployment>(await render({ set: ['nodeSemiSpaceMb=0'] }), 'Deployment')!);
    assert.equal(off.command, undefined);
    assert.equal(env(off, 'SENTINEL_SEMI_SPACE_MB'), '0');
  });

  it('WAF sidecar: own container, probes and resources, socket on a shared emptyDir that the KDL agent block points at', async () => {
    const objs = await render({ valuesFiles: valueSets.waf });
    const d = find<Deployment>(objs, 'Deployment')!;
    const waf = d.spec.template.spec.containers.find((c) => c.name === 'waf');
    assert.ok(waf, 'no waf container');
    assert.equal(waf.args[0], 'sentinel-waf');
    const socket = waf.args[waf.args.indexOf('--socket') + 1]!;
    assert.equal(waf.args[waf.args.indexOf('--paranoia-level') + 1], '2');
    // The chart's KDL subscribes request events only (files/config.kdl).
    assert.ok(waf.args.includes('--request-side-only'), 'the sidecar keeps transactions for a request_complete that never comes');
    // sentinel-waf's own default is one engine process per CPU of the node, each compiling the CRS
    assert.equal(waf.args[waf.args.indexOf('--workers') + 1], '1');
    // An operator whose own config subscribes response events turns it off.
    const full = find<Deployment>(await render({ valuesFiles: valueSets.waf, set: ['waf.requestSideOnly=false'] }), 'Deployment')!;
    const fullWaf = full.spec.template.spec.containers.find((c) => c.name === 'waf')!;
    assert.ok(!fullWaf.args.includes('--request-side-only'), 'waf.requestSideOnly=false still passes --request-side-only');
    for (const p of [waf.livenessProbe, waf.readinessProbe, waf.startupProbe]) assert.equal(p.exec?.command.at(-1), socket);
    const shared = d.spec.template.spec.volumes.find((v) => v.name === 'waf-socket');
    assert.ok(shared?.emptyDir, 'the socket volume is not an emptyDir');
    const dir = socket.slice(0, socket.lastIndexOf('/'));
    for (const c of [waf, gateway(d)]) assert.ok(c.volumeMounts.some((m) => m.name === 'waf-socket' && m.mountPath === dir), c.name);
    const config = loadConfigText(kdlOf(objs));
    const agents = config.raw.agents as unknown as Record<string, { 'unix-socket'?: unknown }>;
    assert.match(JSON.stringify(agents), new RegExp(socket.replace(/\//g, '\\/')));
    assert.ok(config.routes.every((r) => r.filters.includes('waf')), 'every route goes through the WAF');
    // fail-open keeps oversized bodies refused (and the config loads without the padding warning)
    const open = loadConfigText(kdlOf(await render({ valuesFiles: valueSets.waf, set: ['waf.failureMode=open'] })), { validators: pluginValidators });
    assert.deepEqual(open.filters.get('waf')?.config['body-over-limit'], 'reject');
    assert.deepEqual(open.warnings.map((x) => x.message), []);
  });

  it('WAF in process: no sidecar and no socket volume; the gateway runs sentinel-waf with the CRS where the image installs it', async () => {
    const objs = await render({ valuesFiles: valueSets['WAF in process'] });
    const d = find<Deployment>(objs, 'Deployment')!;
    assert.deepEqual(d.spec.template.spec.containers.map((c) => c.name), ['sentinel']);
    assert.equal(d.spec.template.spec.volumes.find((v) => v.name === 'waf-socket'), undefined);
    assert.equal(gateway(d).volumeMounts.find((m) => m.name === 'waf-socket'), undefined);
    const config = loadConfigText(kdlOf(objs), { validators: pluginValidators });
    assert.deepEqual(config.warnings.map((x) => x.message), []);
    const agent = (config.raw.agents as unknown as { id: string; 'in-process'?: string; 'unix-socket'?: unknown; config?: Record<string, unknown> }[]).find((a) => a.id === 'waf')!;
    assert.equal(agent['in-process'], 'sentinel-waf');
    assert.equal(agent['unix-socket'], undefined);
    const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
    const crs = /^COPY --from=build \/out\/crs (\S+)$/m.exec(dockerfile)?.[1];
    assert.ok(crs, 'the Dockerfile installs the CRS');
    assert.deepEqual(agent.config, { 'crs-dir': crs, 'paranoia-level': 2, mode: 'blocking', 'request-side-only': true });
    assert.ok(config.routes.every((r) => r.filters.includes('waf')), 'every route goes through the WAF');
  });

  it('startup probes cover the build at the CPU request (in-process WAF: the CRS compile before the listeners open), for every value set', async () => {
    for (const [name, valuesFiles] of Object.entries(valueSets)) {
      if (name === 'existing ConfigMap') continue; // its config is not the chart's to read
      assert.deepEqual(shortStartBudgets(await render({ valuesFiles })), [], name);
    }
    // the check itself: session 24's 60 s budget did not cover two in-process workers at 100m
    const before = await render({ valuesFiles: valueSets['WAF in process'], set: ['probes.startup.failureThreshold=30', 'config.workers=2'] });
    assert.deepEqual(shortStartBudgets(before), ['sentinel: startup budget 60 s < 80 s (2 x 4 CPU-s at 100m CPU)']);
    // the default budget covers up to three in-process workers, not four
    assert.deepEqual(shortStartBudgets(await render({ valuesFiles: valueSets['WAF in process'], set: ['config.workers=3'] })), []);
    assert.equal(shortStartBudgets(await render({ valuesFiles: valueSets['WAF in process'], set: ['config.workers=4'] })).length, 1);
  });

  it('TLS from a Secret: the Secret is mounted where the https listener reads it; in-place reload turns auto-reload on', async () => {
    const objs = await render({ valuesFiles: valueSets.tls });
    const d = find<Deployment>(objs, 'Deployment')!;
    const c = gateway(d);
    const vol = d.spec.template.spec.volumes.find((v) => v.secret);
    assert.equal(vol?.secret?.secretName, 'sentinel-tls');
    const mount = c.volumeMounts.find((m) => m.name === vol!.name)!;
    const config = loadConfigText(kdlOf(objs));
    const https = config.listeners.find((l) => l.protocol === 'https')!;
    assert.equal(https.port, port(c, 'https'));
    assert.equal(https.tls?.['cert-file'], `${mount.mountPath}/tls.crt`);
    assert.ok(find<Service>(objs, 'Service')!.spec.ports.some((p) => p.name === 'https' && p.targetPort === 'https'));
    assert.equal(config.system['auto-reload'], true);
    assert.equal(d.spec.template.metadata.annotations?.['checksum/config'], undefined);
  });

  it('existingConfigMap: no chart ConfigMap, the volume names the given one', async () => {
    const objs = await render({ valuesFiles: valueSets['existing ConfigMap'] });
    assert.equal(find(objs, 'ConfigMap'), undefined);
    const d = find<Deployment>(objs, 'Deployment')!;
    assert.equal(d.spec.template.spec.volumes.find((v) => v.name === 'config')?.configMap?.name, 'my-sentinel-config');
  });

  it('autoscaling + PDB + ServiceMonitor (only with the CRD) + NetworkPolicy', async () => {
    const objs = await render({ valuesFiles: valueSets['autoscaling + PDB + ServiceMonitor + NetworkPolicy'], apiVersions: monitoringApi });
    for (const kind of ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ServiceMonitor', 'NetworkPolicy']) assert.ok(find(objs, kind), kind);
    assert.equal(find<Deployment>(objs, 'Deployment')!.spec.replicas, undefined, 'the HPA owns replicas');
    assert.ok(find<Service>(objs, 'Service')!.spec.ports.some((p) => p.name === 'metrics'));
    const sm = find<K8sObject & { spec: { endpoints: Record<string, unknown>[] } }>(objs, 'ServiceMonitor')!;
    const check = (o: Record<string, unknown>, where: string) => Object.keys(o).filter((k) => !serviceMonitorFields[where]!.includes(k));
    assert.deepEqual([...check(sm, ''), ...check(sm.spec, '.spec'), ...sm.spec.endpoints.flatMap((e) => check(e, '.spec.endpoints[]'))], []);
    const without = await render({ valuesFiles: valueSets['autoscaling + PDB + ServiceMonitor + NetworkPolicy'] });
    assert.equal(find(without, 'ServiceMonitor'), undefined, 'no ServiceMonitor without the monitoring.coreos.com/v1 API');
  });

  it('podDisruptionBudget: maxUnavailable 1 by default; minAvailable, when set, replaces it (also after a null maxUnavailable); neither set is refused', async () => {
    type Pdb = K8sObject & { spec: { minAvailable?: number | string; maxUnavailable?: number | string } };
    const pdb = async (set: string[], valuesFiles: string[] = []) => {
      const o = find<Pdb>(await render({ valuesFiles, set: ['podDisruptionBudget.enabled=true', ...set] }), 'PodDisruptionBudget')!;
      assert.deepEqual(await validateObject(o), []);
      return { min: o.spec.minAvailable, max: o.spec.maxUnavailable };
    };
    assert.deepEqual(await pdb([]), { min: undefined, max: 1 });
    assert.deepEqual(await pdb(['podDisruptionBudget.minAvailable=1']), { min: 1, max: undefined });
    assert.deepEqual(await pdb(['podDisruptionBudget.minAvailable=50%']), { min: '50%', max: undefined });
    // a values file that clears the default the YAML way
    const nulled = join(tmp, 'pdb-null.yaml');
    writeFileSync(nulled, 'podDisruptionBudget:\n  maxUnavailable: null\n  minAvailable: 2\n');
    assert.deepEqual(await pdb([], [nulled]), { min: 2, max: undefined });
    assert.match((await refusal({ set: ['podDisruptionBudget.enabled=true', 'podDisruptionBudget.maxUnavailable='] })) ?? 'accepted', /podDisruptionBudget\.enabled needs podDisruptionBudget\.maxUnavailable or podDisruptionBudget\.minAvailable/);
  });

  it('dashboards.enabled: the Grafana dashboard as a ConfigMap with the sidecar label (off by default)', async () => {
    const configMaps = (objs: K8sObject[]) => objs.filter((o) => o.kind === 'ConfigMap') as (K8sObject & { metadata: { labels?: Record<string, string> }; data: Record<string, string> })[];
    assert.deepEqual(configMaps(await render()).filter((c) => c.metadata.labels?.['grafana_dashboard'] !== undefined), [], 'no dashboard unless enabled');
    const objs = await render({ set: ['dashboards.enabled=true', 'dashboards.annotations.grafana_folder=Sentinel'] });
    const cm = configMaps(objs).find((c) => c.metadata.name === 'sentinel-dashboards');
    assert.ok(cm, 'dashboard ConfigMap rendered');
    assert.equal(cm.metadata.labels?.['grafana_dashboard'], '1');
    assert.deepEqual(await validateObject(cm), []);
    const shipped = readFileSync(join(chartDir, 'dashboards', 'sentinel.json'), 'utf8');
    assert.deepEqual(JSON.parse(cm.data['sentinel.json']!), JSON.parse(shipped), 'the ConfigMap carries dashboards/sentinel.json unchanged');
    assert.equal(kdlOf(objs.filter((o) => o !== cm)).length > 0, true, 'the config ConfigMap is still rendered');
    const out = await lint({ set: ['dashboards.enabled=true'] });
    assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
  });

  describe('values.schema.json refuses bad values with a clear message', () => {
    const bad: [string, RegExp][] = [
      ['reload.mode=restart', /reload\.mode.*must be one of the following: "roll", "in-place"/],
      ['tls.enabled=true', /tls\.secretName.*String length must be greater than or equal to 1/],
      ['ports.http=70000', /ports\.http.*Must be less than or equal to 65535/],
      ['waf.paranoiaLevel=5', /waf\.paranoiaLevel.*Must be less than or equal to 4/],
      ['waf.mode=block', /waf\.mode.*must be one of the following: "blocking", "detection"/],
      ['replicas=3', /Additional property replicas is not allowed/],
      ['dashboards.enabled=yes', /dashboards\.enabled.*Invalid type/],
      ['config.logLevel=verbose', /config\.logLevel.*must be one of the following/],
      ['image.pullPolicy=Sometimes', /image\.pullPolicy.*must be one of the following/],
      ['nodeSemiSpaceMb=-1', /nodeSemiSpaceMb.*Must be greater than or equal to 0/],
    ];
    for (const [set, message] of bad) {
      it(set, async () => {
        const err = await refusal({ set: [set] });
        assert.ok(err, `${set} was accepted`);
        assert.match(err, message);
      });
    }
  });
});

describe('the schema checks themselves', () => {
  it('kubernetes-models refuses wrong types and missing required fields', async () => {
    assert.deepEqual(await validateObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { ports: [{ port: 'eighty' }] } } as never), ['schema: data/spec/ports/0/port must be integer']);
    assert.deepEqual(await validateObject({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' }, spec: { template: {} } } as never), ['schema: data/spec must have required property selector']);
  });

  it('finds misspelled and misplaced fields at any depth, and accepts real ones', () => {
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x', labels: { a: 'b' } },
      spec: {
        selector: { matchLabels: { a: 'b' } },
        template: {
          metadata: { labels: { a: 'b' } },
          spec: {
            containers: [{ name: 'c', image: 'i', imagePullPolicy: 'Always', ports: [{ containerPort: 1, protcol: 'TCP' }], resources: { limits: { cpu: '1' } } }],
            volumes: [{ name: 'v', emptyDir: { sizeLimit: '1Mi' }, readOnly: true }],
          },
        },
        replica: 2,
      },
    };
    assert.deepEqual(unknownFields(deployment, 'V1Deployment'), [
      '.spec.template.spec.containers[0].ports[0].protcol (not a field of V1ContainerPort)',
      '.spec.template.spec.volumes[0].readOnly (not a field of V1Volume)',
      '.spec.replica (not a field of V1DeploymentSpec)',
    ]);
  });
});
