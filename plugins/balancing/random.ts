// Weighted random: each eligible target with probability weight / total weight.
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible, type Rng } from './common.ts';

export function weightedRandomPick(targets: readonly TargetState[], ctx: PickContext, rng: Rng): TargetState | undefined {
  let total = 0;
  for (const t of targets) if (eligible(t, ctx)) total += t.weight;
  if (total <= 0) return undefined;
  let r = rng() * total;
  let last: TargetState | undefined;
  for (const t of targets) {
    if (!eligible(t, ctx)) continue;
    last = t;
    r -= t.weight;
    if (r < 0) return t;
  }
  return last; // floating-point edge: r landed exactly on the total
}

export function random(rng: Rng): Balancer {
  return {
    name: 'random',
    pick: (targets, ctx): Pick | undefined => {
      const t = weightedRandomPick(targets, ctx, rng);
      return t ? { target: t } : undefined;
    },
  };
}
