// Choosing a target for one attempt: the balancer picks among the healthy targets, preferring
// ones the request has not tried yet; when every untried target is unusable, retrying one
// already tried beats failing.
import type { Balancer, Pick, PickContext, TargetState } from './types.ts';

export function pickTarget(balancer: Balancer, targets: readonly TargetState[], ctx: PickContext): Pick | undefined {
  const pick = balancer.pick(targets, ctx);
  if (pick || !ctx.exclude || ctx.exclude.size === 0) return pick;
  return balancer.pick(targets, {
    clientIp: ctx.clientIp,
    path: ctx.path,
    header: (n) => ctx.header(n),
    cookie: (n) => ctx.cookie(n),
  });
}
