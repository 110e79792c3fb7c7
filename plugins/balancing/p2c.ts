// Power of two choices: two distinct random eligible targets (weighted), keep the one with fewer
// requests in flight. Near least-connections quality at O(1) and without herd effects.
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { withExclude, type Rng } from './common.ts';
import { weightedRandomPick } from './random.ts';

/** Two distinct candidates (or one when only one is eligible); `cost` decides. */
export function twoChoices(targets: readonly TargetState[], ctx: PickContext, rng: Rng, cost: (t: TargetState) => number): TargetState | undefined {
  const a = weightedRandomPick(targets, ctx, rng);
  if (!a) return undefined;
  const without = new Set(ctx.exclude ?? []);
  without.add(a.index);
  const b = weightedRandomPick(targets, withExclude(ctx, without), rng);
  if (!b) return a;
  return cost(b) < cost(a) ? b : a;
}

export function powerOfTwoChoices(rng: Rng): Balancer {
  return {
    name: 'power_of_two_choices',
    pick: (targets, ctx): Pick | undefined => {
      const t = twoChoices(targets, ctx, rng, (x) => x.inFlight);
      return t ? { target: t } : undefined;
    },
  };
}
