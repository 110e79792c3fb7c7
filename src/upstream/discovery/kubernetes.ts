// discovery "kubernetes" { namespace "prod"; service "api"; port-name "http"; kubeconfig "~/.kube/config";
// refresh-interval 30 }: the ready endpoints of a Service from its EndpointSlices
// (discovery.k8s.io/v1, GA since Kubernetes 1.21; the core v1 Endpoints API is deprecated since
// 1.33): GET /apis/discovery.k8s.io/v1/namespaces/<ns>/endpointslices?labelSelector=
// kubernetes.io/service-name=<service>.
//
// API access: the `kubeconfig` file (current-context: cluster server, certificate-authority(-data)
// or insecure-skip-tls-verify, user token / tokenFile or client-certificate(-data) +
// client-key(-data)); without it, in-cluster: KUBERNETES_SERVICE_HOST/PORT and the service
// account's token, ca.crt and namespace under /var/run/secrets/kubernetes.io/serviceaccount.
// The token file is re-read on every refresh (bound tokens rotate).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, resolve as resolvePath } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Agent } from 'undici';
import { urlHost, type TargetSpec } from '../address.ts';
import type { DiscoverySource } from './types.ts';
import { apiAgent, getJson } from './http.ts';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeAccess {
  /** API server URL, e.g. https://10.96.0.1:443 */
  server: string;
  ca?: Buffer;
  insecure: boolean;
  /** a fixed bearer token, or a file read on every request */
  token?: string;
  tokenFile?: string;
  cert?: Buffer;
  key?: Buffer;
  /** the context's (or service account's) namespace */
  namespace?: string;
}

type Y = Record<string, unknown>;
const obj = (v: unknown): Y => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Y) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

function named(list: unknown, name: string, what: string): Y {
  const found = (Array.isArray(list) ? list : []).map(obj).find((e) => e.name === name);
  if (!found) throw new Error(`kubeconfig: no ${what} named "${name}"`);
  return found;
}

/**
 * Pure-ish: kubeconfig YAML -> API access for its current context (`context` overrides).
 * `readFile` resolves paths relative to the kubeconfig's directory (kubectl's rule).
 */
export function parseKubeconfig(text: string, dir: string, readFile: (path: string) => Buffer = (p) => readFileSync(p), context?: string): KubeAccess {
  const doc = obj(parseYaml(text) as unknown);
  const ctxName = context ?? str(doc['current-context']);
  if (!ctxName) throw new Error('kubeconfig: no current-context');
  const ctx = obj(named(doc.contexts, ctxName, 'context').context);
  const clusterName = str(ctx.cluster);
  const userName = str(ctx.user);
  if (!clusterName) throw new Error(`kubeconfig: context "${ctxName}" has no cluster`);
  const cluster = obj(named(doc.clusters, clusterName, 'cluster').cluster);
  const user = userName ? obj(named(doc.users, userName, 'user').user) : {};
  const server = str(cluster.server);
  if (!server) throw new Error(`kubeconfig: cluster "${clusterName}" has no server`);
  const file = (p: string) => readFile(isAbsolute(p) ? p : resolvePath(dir, p));
  const inline = (v: unknown) => (str(v) ? Buffer.from(str(v)!, 'base64') : undefined);
  const pick = (dataKey: string, fileKey: string, from: Y): Buffer | undefined => inline(from[dataKey]) ?? (str(from[fileKey]) ? file(str(from[fileKey])!) : undefined);
  if (user.exec !== undefined || user['auth-provider'] !== undefined) {
    throw new Error(`kubeconfig: user "${userName}" authenticates with exec/auth-provider plugins, which are not supported; use a token, tokenFile or client certificate`);
  }
  const access: KubeAccess = { server: server.replace(/\/$/, ''), insecure: cluster['insecure-skip-tls-verify'] === true };
  const ca = pick('certificate-authority-data', 'certificate-authority', cluster);
  if (ca) access.ca = ca;
  const token = str(user.token);
  if (token) access.token = token;
  else if (str(user.tokenFile)) access.tokenFile = isAbsolute(str(user.tokenFile)!) ? str(user.tokenFile)! : resolvePath(dir, str(user.tokenFile)!);
  const cert = pick('client-certificate-data', 'client-certificate', user);
  const key = pick('client-key-data', 'client-key', user);
  if ((cert === undefined) !== (key === undefined)) throw new Error(`kubeconfig: user "${userName}" needs both a client certificate and a client key`);
  if (cert && key) {
    access.cert = cert;
    access.key = key;
  }
  const ns = str(ctx.namespace);
  if (ns) access.namespace = ns;
  return access;
}

/** In-cluster access from the pod's environment and service account directory. */
export function inClusterAccess(env: NodeJS.ProcessEnv, saDir = SERVICE_ACCOUNT_DIR, readFile: (path: string) => Buffer = (p) => readFileSync(p)): KubeAccess {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('kubernetes: no kubeconfig given and not in a cluster (KUBERNETES_SERVICE_HOST is unset)');
  const access: KubeAccess = { server: `https://${urlHost(host)}:${port}`, insecure: false, tokenFile: `${saDir}/token`, ca: readFile(`${saDir}/ca.crt`) };
  try {
    const ns = readFile(`${saDir}/namespace`).toString('utf8').trim();
    if (ns) access.namespace = ns;
  } catch {
    // no namespace file: the block's namespace or "default"
  }
  return access;
}

export function endpointSlicesPath(namespace: string, service: string): string {
  const selector = encodeURIComponent(`kubernetes.io/service-name=${service}`);
  return `/apis/discovery.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/endpointslices?labelSelector=${selector}`;
}

/**
 * Pure: an EndpointSliceList -> targets. Per slice, the port named `portName` (default: the
 * slice's first TCP port; a slice without it is skipped); per endpoint, the first address
 * ("fungible", as the API says) when `conditions.ready` is not false (unset means ready).
 */
export function endpointSliceTargets(list: unknown, portName: string | undefined): TargetSpec[] {
  const l = obj(list);
  if (!Array.isArray(l.items)) throw new Error('kubernetes: expected an EndpointSliceList with items');
  const out: TargetSpec[] = [];
  for (const slice of l.items.map(obj)) {
    const type = slice.addressType;
    if (type !== 'IPv4' && type !== 'IPv6' && type !== 'FQDN') continue;
    const ports = (Array.isArray(slice.ports) ? slice.ports : []).map(obj).filter((p) => (p.protocol ?? 'TCP') === 'TCP' && typeof p.port === 'number');
    const port = portName !== undefined ? ports.find((p) => (p.name ?? '') === portName) : ports[0];
    if (!port) continue;
    const portNum = port.port as number;
    for (const ep of (Array.isArray(slice.endpoints) ? slice.endpoints : []).map(obj)) {
      if (obj(ep.conditions).ready === false) continue;
      const addr = Array.isArray(ep.addresses) ? str(ep.addresses[0]) : undefined;
      if (!addr) continue;
      out.push({ address: `${urlHost(addr)}:${portNum}`, host: addr, port: portNum, weight: 1 });
    }
  }
  return out;
}

/** The kubeconfig file of a block, as a path (`~/` = home, else relative to the config directory). */
export function kubeconfigPath(kubeconfig: string, baseDir: string): string {
  return kubeconfig.startsWith('~/') ? resolvePath(homedir(), kubeconfig.slice(2)) : resolvePath(baseDir, kubeconfig);
}

/** Config-time check: the kubeconfig can be read and gives API access; an error message or undefined. */
export function checkKubeconfig(kubeconfig: string, baseDir: string): string | undefined {
  const path = kubeconfigPath(kubeconfig, baseDir);
  try {
    parseKubeconfig(readFileSync(path, 'utf8'), dirname(path));
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code ? `cannot read "${kubeconfig}": ${code}` : (e as Error).message;
  }
}

export interface KubernetesOptions {
  namespace: string | undefined;
  service: string;
  portName: string | undefined;
  kubeconfig: string | undefined;
  refreshMs: number;
}

export function kubernetesSource(o: KubernetesOptions, baseDir: string, env: NodeJS.ProcessEnv = process.env): DiscoverySource {
  let access: KubeAccess | undefined;
  let agent: Agent | undefined;
  const load = (): { access: KubeAccess; agent: Agent } => {
    if (!access || !agent) {
      if (o.kubeconfig !== undefined) {
        const path = kubeconfigPath(o.kubeconfig, baseDir);
        access = parseKubeconfig(readFileSync(path, 'utf8'), dirname(path));
      } else {
        access = inClusterAccess(env);
      }
      agent = apiAgent({ ...(access.ca ? { ca: access.ca } : {}), ...(access.cert ? { cert: access.cert, key: access.key } : {}), rejectUnauthorized: !access.insecure });
    }
    return { access, agent };
  };
  return {
    kind: 'kubernetes',
    intervalMs: o.refreshMs,
    async resolve(signal) {
      const { access: a, agent: d } = load();
      const token = a.token ?? (a.tokenFile ? readFileSync(a.tokenFile, 'utf8').trim() : undefined);
      const namespace = o.namespace ?? a.namespace ?? 'default';
      const body = await getJson(`${a.server}${endpointSlicesPath(namespace, o.service)}`, {
        signal,
        dispatcher: d,
        ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
      });
      return endpointSliceTargets(body, o.portName);
    },
    close: () => agent?.close(),
  };
}
