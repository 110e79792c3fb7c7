// Config checks of one `upstream` block: every problem that would make new UpstreamGroup()
// throw (discovery, load-balancing, health-check, TLS files, http-version), as messages for the
// config compiler. The load-balancing and health-check checks are the features' policies'.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RawUpstream } from '../config/schema.ts';
import type { UpstreamPolicies } from './policies.ts';
import { validateDiscovery } from './discovery/index.ts';
import { checkKubeconfig } from './discovery/kubernetes.ts';

/**
 * Every problem in an upstream block's policies that would make new UpstreamGroup() throw,
 * as messages for the config compiler (load-balancing, health-check, tls files).
 */
export function validateUpstreamBlock(config: RawUpstream, baseDir: string, policies: Pick<UpstreamPolicies, 'balancing' | 'health'>): string[] {
  // Targets are checked by the config compiler itself (same collectTargets parser).
  const errors: string[] = [];
  const discoveryErrors = validateDiscovery(config.discovery);
  errors.push(...discoveryErrors);
  const kc = (config.discovery as { kind?: string; kubeconfig?: string } | undefined)?.kubeconfig;
  if (discoveryErrors.length === 0 && config.discovery?.kind === 'kubernetes' && kc !== undefined) {
    // the API access must work before the config is accepted (as for tls files)
    const m = checkKubeconfig(kc, baseDir);
    if (m) errors.push(`discovery "kubernetes" > kubeconfig: ${m}`);
  }
  const lb = policies.balancing.validate(config['load-balancing']);
  if (lb) errors.push(`load-balancing: ${lb}`);
  if (config['health-check']) {
    const h = policies.health.settings(config['health-check']);
    if (typeof h === 'string') errors.push(`health-check: ${h}`);
  }
  for (const key of ['ca-cert', 'client-cert', 'client-key'] as const) {
    const p = config.tls?.[key];
    if (!p) continue;
    try {
      readFileSync(resolve(baseDir, p));
    } catch (e) {
      errors.push(`tls > ${key}: cannot read "${p}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (config.tls && (config.tls['client-cert'] === undefined) !== (config.tls['client-key'] === undefined)) {
    errors.push('tls: client-cert and client-key must be given together');
  }
  const hv = config['http-version'];
  if (hv && hv['max-version'] !== undefined && (hv['min-version'] ?? 1) > hv['max-version']) errors.push('http-version: min-version is greater than max-version');
  return errors;
}

