// A real Helm (scripts/fetch-helm.sh: pinned, checksummed, cached in .cache/helm/) and the
// chart's rendered objects, for the chart tests and the pod test.
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);
export const repoRoot = resolve(import.meta.dirname, '..', '..');
export const chartDir = join(repoRoot, 'helm', 'sentinel');

let helmPath: Promise<string> | undefined;
/** The helm binary (fetched once; the script is a no-op when the cached binary checks out). */
export function helm(): Promise<string> {
  helmPath ??= run('bash', [join(repoRoot, 'scripts', 'fetch-helm.sh')], { timeout: 300_000 }).then((r) => r.stdout.trim());
  return helmPath;
}

export interface RenderOptions {
  valuesFiles?: string[];
  set?: string[];
  apiVersions?: string[];
}

function args(o: RenderOptions): string[] {
  return [...(o.valuesFiles ?? []).flatMap((f) => ['-f', f]), ...(o.set ?? []).flatMap((s) => ['--set', s]), ...(o.apiVersions ?? []).flatMap((a) => ['--api-versions', a])];
}

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; [k: string]: unknown }; [k: string]: unknown };

/** `helm template`: the rendered objects (throws with helm's message when it refuses the values). */
export async function render(o: RenderOptions = {}): Promise<K8sObject[]> {
  const { stdout } = await run(await helm(), ['template', 'sentinel', chartDir, '--namespace', 'edge', ...args(o)], { timeout: 60_000, maxBuffer: 16 << 20 });
  return parseAllDocuments(stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null);
}

/** `helm lint --strict`: resolves with its output, rejects with it when the chart fails. */
export async function lint(o: RenderOptions = {}): Promise<string> {
  const { stdout } = await run(await helm(), ['lint', '--strict', chartDir, ...args(o)], { timeout: 60_000 });
  return stdout;
}

/** helm's error text for values it refuses (values.schema.json), or undefined when it renders. */
export async function refusal(o: RenderOptions): Promise<string | undefined> {
  try {
    await render(o);
    return undefined;
  } catch (e) {
    return (e as { stderr?: string }).stderr ?? String(e);
  }
}

export function find<T = K8sObject>(objs: K8sObject[], kind: string): T | undefined {
  return objs.find((o) => o.kind === kind) as T | undefined;
}
