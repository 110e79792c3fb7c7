// Peak EWMA (Finagle/Linkerd style): per target an exponentially weighted moving average of
// latency that jumps up to any slower sample at once (peak-sensitive) and decays with time
// constant `tauMs`. Cost = ewma * (in-flight + 1); two random choices, keep the cheaper.
// "adaptive" is the error-aware variant: a failed attempt counts as a slow one (at least
// `failurePenaltyMs` and twice the current average), so fast errors do not attract traffic.
import type { Balancer, Pick, TargetState } from '../../src/upstream/types.ts';
import type { Rng } from './common.ts';
import { twoChoices } from './p2c.ts';

export interface PeakEwmaOptions {
  rng: Rng;
  now: () => number;
  tauMs?: number;
  errorAware?: boolean;
  failurePenaltyMs?: number;
}

interface Stat {
  ewma: number;
  at: number;
}

export function peakEwma(opts: PeakEwmaOptions): Balancer {
  const tau = opts.tauMs ?? 10_000;
  const penalty = opts.failurePenaltyMs ?? 1000;
  // keyed by target object: a target that stays across a discovery refresh keeps its average,
  // and the group hands this balancer to the next generation when load-balancing is unchanged
  const stats = new WeakMap<TargetState, Stat>();

  /** the average decayed to `now`, so a penalised target is probed again after a while */
  const current = (t: TargetState, now: number): number => {
    const s = stats.get(t);
    if (!s) return 0;
    return s.ewma * Math.exp(-Math.max(0, now - s.at) / tau);
  };

  return {
    name: opts.errorAware ? 'adaptive' : 'peak_ewma',
    pick(targets, ctx): Pick | undefined {
      const now = opts.now();
      const t = twoChoices(targets, ctx, opts.rng, (x) => current(x, now) * (x.inFlight + 1));
      return t ? { target: t } : undefined;
    },
    observe(target, latencyMs, ok) {
      const now = opts.now();
      const s = stats.get(target);
      let sample = Math.max(0, latencyMs);
      if (!ok && opts.errorAware) sample = Math.max(sample, penalty, 2 * (s?.ewma ?? 0));
      if (!s) {
        stats.set(target, { ewma: sample, at: now });
        return;
      }
      const w = Math.exp(-Math.max(0, now - s.at) / tau);
      s.ewma = sample > s.ewma ? sample : s.ewma * w + sample * (1 - w);
      s.at = now;
    },
  };
}
