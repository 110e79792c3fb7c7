// Config checks of one `upstream` block: every problem that would make new UpstreamGroup()
// throw (discovery, load-balancing, health-check), as messages for the config compiler. The
// load-balancing and health-check checks are the features' policies'; upstream TLS files and
// http-version are the forwarding feature's (plugins/forwarding/config-checks.ts).
import type { RawUpstream } from '../config/schema.ts';
import type { UpstreamPolicies } from './policies.ts';
import { validateDiscovery } from './discovery/index.ts';
import { checkKubeconfig } from './discovery/kubernetes.ts';

/**
 * Every problem in an upstream block's policies that would make new UpstreamGroup() throw,
 * as messages for the config compiler (discovery, load-balancing, health-check).
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
  return errors;
}

