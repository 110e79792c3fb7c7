// Smooth weighted round robin (as in nginx): each pick adds every eligible target's weight to its
// running score, takes the highest and subtracts the total. Weights 5/1/1 give a a b a c a a, not a a a a a b c.
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible } from './common.ts';

export function weightedRoundRobin(): Balancer {
  // running scores per target object: survives changes of the target list (discovery)
  let current = new WeakMap<TargetState, number>();
  let builtFor: readonly TargetState[] | undefined;
  return {
    name: 'weighted_round_robin',
    pick(targets: readonly TargetState[], ctx: PickContext): Pick | undefined {
      if (builtFor !== targets) {
        // a changed set starts from zero scores, as nginx does after a reconfiguration
        if (builtFor !== undefined) current = new WeakMap();
        builtFor = targets;
      }
      let total = 0;
      let best: TargetState | undefined;
      for (const t of targets) {
        if (!eligible(t, ctx)) continue;
        const score = (current.get(t) ?? 0) + t.weight;
        current.set(t, score);
        total += t.weight;
        if (!best || score > current.get(best)!) best = t;
      }
      if (!best) return undefined;
      current.set(best, current.get(best)! - total);
      return { target: best };
    },
  };
}
