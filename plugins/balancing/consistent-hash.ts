// Consistent hashing (ketama-style ring): each target owns `virtualNodes * weight` points at
// hash(address#i); a key goes to the first point clockwise whose target is usable. A target
// leaving only moves the keys it owned (about 1/N of them). The ring is rebuilt when the target
// list changes (discovery); points depend on addresses only, so surviving targets keep their keys.
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible } from './common.ts';
import { hash32 } from './hash.ts';
import type { KeyFn } from './hash-key.ts';

export interface Ring {
  points: Uint32Array;
  /** positions in the target list the ring was built from (ids are not positions) */
  owners: Uint16Array;
}

export function buildRing(targets: readonly TargetState[], virtualNodes: number): Ring {
  const entries: [number, number][] = [];
  targets.forEach((t, pos) => {
    const count = virtualNodes * Math.max(0, t.weight);
    for (let i = 0; i < count; i++) entries.push([hash32(`${t.address}#${i}`), pos]);
  });
  entries.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return { points: Uint32Array.from(entries, (e) => e[0]), owners: Uint16Array.from(entries, (e) => e[1]) };
}

/** First ring position at or after `h` (wrapping). */
function lowerBound(points: Uint32Array, h: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (points[mid]! < h) lo = mid + 1;
    else hi = mid;
  }
  return lo === points.length ? 0 : lo;
}

export function ringLookup(ring: Ring, targets: readonly TargetState[], ctx: PickContext, key: string): TargetState | undefined {
  const n = ring.points.length;
  if (n === 0) return undefined;
  const start = lowerBound(ring.points, hash32(key));
  for (let i = 0; i < n; i++) {
    const t = targets[ring.owners[(start + i) % n]!]!;
    if (eligible(t, ctx)) return t;
  }
  return undefined;
}

export function consistentHash(key: KeyFn, virtualNodes = 160): Balancer {
  let ring: Ring | undefined;
  let builtFor: readonly TargetState[] | undefined;
  return {
    name: 'consistent_hash',
    pick(targets, ctx): Pick | undefined {
      if (builtFor !== targets) {
        ring = buildRing(targets, virtualNodes);
        builtFor = targets;
      }
      const t = ringLookup(ring!, targets, ctx, key(ctx));
      return t ? { target: t } : undefined;
    },
  };
}
