// UpstreamGroup with the features' policies (balancing, breakers, health checks, retries) as the
// forwarding feature injects them, for tests that build groups directly.
import { UpstreamGroup as CoreUpstreamGroup, type UpstreamGroupOptions } from '../../src/upstream/group.ts';
import type { UpstreamPolicies } from '../../src/upstream/policies.ts';
import { COMPOSITION } from '../../src/features.ts';

export { upstreamsReport } from '../../src/upstream/group.ts';

export class UpstreamGroup extends CoreUpstreamGroup {
  constructor(opts: Omit<UpstreamGroupOptions, 'policies'> & { policies?: UpstreamPolicies }) {
    super({ policies: COMPOSITION.upstreamPolicies, ...opts });
  }
}
