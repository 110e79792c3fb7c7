// Feature scenario: route header policies (sentinel-reference.md §1.5 `policies`): one header set
// and one removed on the way up, one set and one removed on the way down. Measures what the
// header-policy filter costs next to plain passthrough under the same load (closed loop, /small).
import type { FeatureScenario } from '../lib/scenario.ts';

const POLICIES = `        policies {
            request-headers {
                set {
                    "X-Bench-Route" "all"
                }
                remove "X-Debug"
            }
            response-headers {
                set {
                    "X-Served-By" "sentinel"
                }
                remove "Server"
            }
        }
`;

const scenario: FeatureScenario = {
  name: 'header-policies',
  description: 'route request-headers/response-headers policies (set + remove each way)',
  sentinelConfig(ctx) {
    const base = ctx.passthroughConfig();
    const withPolicies = base.replace(/( {8}upstream "origin"\n)/, `$1${POLICIES}`);
    if (withPolicies === base) throw new Error('the passthrough config no longer has the route line this scenario extends');
    return withPolicies;
  },
};

export default scenario;
