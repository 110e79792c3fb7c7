// Upstream checks that need the balancing plugin (kept out of src/config to avoid a cycle).
import type { RawUpstream } from '../config/schema.ts';
import { validateLoadBalancing } from '../../plugins/balancing/index.ts';

export function validateUpstreamConfig(u: RawUpstream): string[] {
  const err = validateLoadBalancing(u['load-balancing']);
  return err ? [err] : [];
}
