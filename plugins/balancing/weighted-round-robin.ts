// Smooth weighted round robin (as in nginx): each pick adds every eligible target's weight to its
// running score, takes the highest and subtracts the total. Weights 5/1/1 give a a b a c a a, not a a a a a b c.
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible } from './common.ts';

export function weightedRoundRobin(): Balancer {
  let current: number[] = [];
  return {
    name: 'weighted_round_robin',
    pick(targets: readonly TargetState[], ctx: PickContext): Pick | undefined {
      if (current.length !== targets.length) current = new Array<number>(targets.length).fill(0);
      let total = 0;
      let best: TargetState | undefined;
      for (const t of targets) {
        if (!eligible(t, ctx)) continue;
        current[t.index]! += t.weight;
        total += t.weight;
        if (!best || current[t.index]! > current[best.index]!) best = t;
      }
      if (!best) return undefined;
      current[best.index]! -= total;
      return { target: best };
    },
  };
}
