// Plain round robin: every eligible target in turn, weights ignored (use "weighted" for weights).
// The cursor is a position in the current list (target ids are not positions; the list may change).
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible } from './common.ts';

export function roundRobin(): Balancer {
  let next = 0;
  return {
    name: 'round_robin',
    pick(targets: readonly TargetState[], ctx: PickContext): Pick | undefined {
      const n = targets.length;
      for (let i = 0; i < n; i++) {
        const t = targets[(next + i) % n]!;
        if (eligible(t, ctx)) {
          next = (next + i + 1) % n;
          return { target: t };
        }
      }
      return undefined;
    },
  };
}
