// Pure target-set planning for discovery refreshes and reloads: which targets stay (and keep
// their state), which are new, which leave. The group applies the plan.
import type { TargetSpec } from '../address.ts';

export interface TargetSetPlan<T> {
  /** false: same addresses and weights in the same order, nothing to rebuild */
  changed: boolean;
  /** the new list, in `wanted` order (first spec wins for a duplicate address) */
  next: T[];
  /** members of `next` that were not in `current` (made by `make`) */
  added: T[];
  /** members of `current` that are not in `next` */
  removed: T[];
  /** targets that stay but whose weight changed: [target, new weight] */
  reweighted: [T, number][];
}

/** One list from static targets (config order) and discovered ones (sorted, so a DNS answer in another order is no change). */
export function mergeSpecs(staticSpecs: readonly TargetSpec[], discovered: readonly TargetSpec[]): TargetSpec[] {
  const sorted = [...discovered].sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.weight - b.weight));
  const seen = new Set<string>();
  const out: TargetSpec[] = [];
  for (const s of [...staticSpecs, ...sorted]) {
    if (seen.has(s.address)) continue; // a discovered address that is also static stays the static target
    seen.add(s.address);
    out.push(s);
  }
  return out;
}

export function planTargetSet<T extends { readonly address: string; readonly weight: number }>(
  current: readonly T[],
  wanted: readonly TargetSpec[],
  make: (spec: TargetSpec) => T,
): TargetSetPlan<T> {
  const byAddress = new Map(current.map((t) => [t.address, t]));
  const seen = new Set<string>();
  const next: T[] = [];
  const added: T[] = [];
  const reweighted: [T, number][] = [];
  for (const spec of wanted) {
    if (seen.has(spec.address)) continue;
    seen.add(spec.address);
    const existing = byAddress.get(spec.address);
    if (existing) {
      if (existing.weight !== spec.weight) reweighted.push([existing, spec.weight]);
      next.push(existing);
    } else {
      const t = make(spec);
      added.push(t);
      next.push(t);
    }
  }
  const removed = current.filter((t) => !seen.has(t.address));
  const changed = added.length > 0 || removed.length > 0 || reweighted.length > 0 || next.some((t, i) => current[i] !== t);
  return { changed, next, added, removed, reweighted };
}
