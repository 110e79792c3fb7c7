// Least connections: the eligible target with the fewest requests in flight; the weighted variant
// compares (in-flight + 1) / weight. Ties rotate so equal targets share the load.
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible } from './common.ts';

function leastBy(score: (t: TargetState) => number, name: string): Balancer {
  let rotate = 0;
  return {
    name,
    pick(targets: readonly TargetState[], ctx: PickContext): Pick | undefined {
      const n = targets.length;
      let best: TargetState | undefined;
      let bestScore = Infinity;
      for (let i = 0; i < n; i++) {
        const t = targets[(rotate + i) % n]!;
        if (!eligible(t, ctx)) continue;
        const s = score(t);
        if (s < bestScore) {
          best = t;
          bestScore = s;
        }
      }
      rotate = (rotate + 1) % Math.max(1, n);
      return best ? { target: best } : undefined;
    },
  };
}

export function leastConnections(): Balancer {
  return leastBy((t) => t.inFlight, 'least_connections');
}

export function weightedLeastConnections(): Balancer {
  return leastBy((t) => (t.inFlight + 1) / t.weight, 'weighted_least_connections');
}
