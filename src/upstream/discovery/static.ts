// discovery "static" { backends "h:p" ... }: a fixed list, resolved once and never refreshed.
import { parseHostPort, type TargetSpec } from '../address.ts';
import type { DiscoverySource } from './types.ts';

export function staticSource(backends: readonly string[]): DiscoverySource {
  const specs: TargetSpec[] = backends.map((address) => ({ address, ...parseHostPort(address), weight: 1 }));
  return {
    kind: 'static',
    intervalMs: undefined,
    resolve: () => Promise.resolve(specs),
  };
}
