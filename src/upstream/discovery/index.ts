// Builds the DiscoverySource for an upstream's `discovery "<kind>" { }` block (validated by
// validateDiscovery at config compile time).
import { discoveryConfig, type RawDiscovery } from './schema.ts';
import type { DiscoverySource } from './types.ts';
import { staticSource } from './static.ts';
import { fileSource } from './file.ts';
import { dnsSource } from './dns.ts';
import { dnsSrvSource } from './dns-srv.ts';
import { consulSource } from './consul.ts';
import { kubernetesSource } from './kubernetes.ts';

export type { DiscoverySource } from './types.ts';
export { validateDiscovery, DiscoverySchema, DISCOVERY_KINDS } from './schema.ts';

export function createDiscoverySource(raw: unknown, baseDir: string): DiscoverySource | undefined {
  if (raw === undefined) return undefined;
  const cfg = discoveryConfig(raw as RawDiscovery);
  switch (cfg.kind) {
    case 'static':
      return staticSource(cfg.backends);
    case 'file':
      return fileSource(cfg.path, cfg.watchMs, baseDir);
    case 'dns':
      return dnsSource(cfg);
    case 'dns-srv':
      return dnsSrvSource(cfg);
    case 'consul':
      return consulSource(cfg);
    case 'kubernetes':
      return kubernetesSource(cfg, baseDir);
  }
}
