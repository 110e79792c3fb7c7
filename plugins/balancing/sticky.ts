// Sticky sessions by cookie: the cookie names a target by an opaque token (a hash of its
// address, so addresses never leak to clients). A missing, unknown or unusable token falls back
// to the `fallback` balancer and a Set-Cookie assigns the new target.
import type { Balancer, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible } from './common.ts';
import { hash32 } from './hash.ts';

export interface StickyOptions {
  cookieName: string;
  /** Max-Age in seconds; session cookie when undefined */
  ttlSecs?: number;
  path: string;
  secure: boolean;
  sameSite?: 'lax' | 'strict' | 'none';
  fallback: Balancer;
}

/** The cookie value for a target: a hash of its address only, so it stays valid while the
 * target stays in the set (discovery refreshes, reloads); a removed target's token is unknown
 * and falls back. */
export function stickyToken(t: TargetState): string {
  return hash32(t.address).toString(36);
}

export function stickyCookie(o: StickyOptions, token: string): string {
  let c = `${o.cookieName}=${token}; Path=${o.path}; HttpOnly`;
  if (o.ttlSecs !== undefined) c += `; Max-Age=${Math.floor(o.ttlSecs)}`;
  // browsers drop SameSite=None cookies that are not Secure
  if (o.secure || o.sameSite === 'none') c += '; Secure';
  if (o.sameSite) c += `; SameSite=${o.sameSite[0]!.toUpperCase()}${o.sameSite.slice(1)}`;
  return c;
}

export function sticky(o: StickyOptions): Balancer {
  let byToken: Map<string, TargetState> | undefined;
  let builtFor: readonly TargetState[] | undefined;
  return {
    name: 'sticky',
    pick(targets, ctx): Pick | undefined {
      if (builtFor !== targets) {
        byToken = new Map(targets.map((t) => [stickyToken(t), t]));
        builtFor = targets;
      }
      const token = ctx.cookie(o.cookieName);
      const held = token !== undefined ? byToken!.get(token) : undefined;
      if (held && eligible(held, ctx)) return { target: held };
      const pick = o.fallback.pick(targets, ctx);
      if (!pick) return undefined;
      return { target: pick.target, setCookie: stickyCookie(o, stickyToken(pick.target)) };
    },
    observe(target, latencyMs, ok) {
      o.fallback.observe?.(target, latencyMs, ok);
    },
  };
}
