// IP hash: the client IP picks a target; when that target is unusable the key is rehashed with
// another seed, so clients of a healthy target never move.
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible } from './common.ts';
import { hash32 } from './hash.ts';

/** Deterministic target for `key`, probing with new seeds past unusable targets. */
export function rehashPick(targets: readonly TargetState[], ctx: PickContext, key: string): TargetState | undefined {
  const n = targets.length;
  if (n === 0) return undefined;
  for (let seed = 0; seed < 2 * n; seed++) {
    const t = targets[hash32(key, seed) % n]!;
    if (eligible(t, ctx)) return t;
  }
  return targets.find((t) => eligible(t, ctx));
}

export function ipHash(): Balancer {
  return {
    name: 'ip_hash',
    pick: (targets, ctx): Pick | undefined => {
      const t = rehashPick(targets, ctx, ctx.clientIp);
      return t ? { target: t } : undefined;
    },
  };
}
