// Helpers shared by the balancing algorithms.
import type { PickContext, TargetState } from '../../src/upstream/types.ts';

/** A target a balancer may choose: healthy (active checks + breaker) and not already tried by this request. */
export function eligible(t: TargetState, ctx: PickContext): boolean {
  return t.healthy && t.weight > 0 && !(ctx.exclude?.has(t.index) ?? false);
}

/** The same context with another exclude set (kept as closures: the core's ctx may be a class). */
export function withExclude(ctx: PickContext, exclude: ReadonlySet<number> | undefined): PickContext {
  return {
    clientIp: ctx.clientIp,
    path: ctx.path,
    header: (name) => ctx.header(name),
    cookie: (name) => ctx.cookie(name),
    ...(exclude ? { exclude } : {}),
  };
}

/** Random source in [0, 1); injected so distribution tests are reproducible. */
export type Rng = () => number;

/** Small deterministic PRNG (mulberry32) for tests and seeded runs. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
