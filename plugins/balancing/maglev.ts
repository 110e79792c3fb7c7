// Maglev hashing (Google's Maglev paper, §3.4): a lookup table of prime size M filled from each
// target's permutation (offset, skip); weights give a target that many claims per round. The
// table is rebuilt only from healthy targets and only when that set changes, so a failure
// moves just the failed target's share. Retries (ctx.exclude) rehash with another seed.
import type { Balancer, PickContext, Pick, TargetState } from '../../src/upstream/types.ts';
import { eligible } from './common.ts';
import { hash32 } from './hash.ts';
import type { KeyFn } from './hash-key.ts';

export const DEFAULT_MAGLEV_SIZE = 65537;

/** Table of positions in `targets` (-1 when no target is healthy). */
export function buildMaglevTable(targets: readonly TargetState[], size = DEFAULT_MAGLEV_SIZE): Int32Array {
  const table = new Int32Array(size).fill(-1);
  const positions = targets.map((_, pos) => pos).filter((pos) => targets[pos]!.healthy && targets[pos]!.weight > 0);
  const members = positions.map((pos) => targets[pos]!);
  if (members.length === 0) return table;
  const offset = members.map((t) => hash32(t.address, 0x9e3779b9) % size);
  const skip = members.map((t) => (hash32(t.address, 0x85ebca6b) % (size - 1)) + 1);
  const nextIdx = new Array<number>(members.length).fill(0);
  let filled = 0;
  while (filled < size) {
    for (let m = 0; m < members.length && filled < size; m++) {
      for (let claim = 0; claim < members[m]!.weight && filled < size; claim++) {
        let slot: number;
        do {
          slot = (offset[m]! + nextIdx[m]! * skip[m]!) % size;
          nextIdx[m]!++;
        } while (table[slot] !== -1);
        table[slot] = positions[m]!;
        filled++;
      }
    }
  }
  return table;
}

function healthSignature(targets: readonly TargetState[]): string {
  let s = '';
  for (const t of targets) s += t.healthy ? '1' : '0';
  return s;
}

export function maglev(key: KeyFn, size = DEFAULT_MAGLEV_SIZE): Balancer {
  let table: Int32Array | undefined;
  let signature = '';
  let builtFor: readonly TargetState[] | undefined;
  return {
    name: 'maglev',
    pick(targets, ctx: PickContext): Pick | undefined {
      const sig = healthSignature(targets);
      // rebuilt when health changes or the list itself changes (discovery)
      if (!table || sig !== signature || builtFor !== targets) {
        table = buildMaglevTable(targets, size);
        signature = sig;
        builtFor = targets;
      }
      const k = key(ctx);
      for (let seed = 0; seed < 2 * targets.length + 1; seed++) {
        const idx = table[hash32(k, seed) % size]!;
        if (idx >= 0 && eligible(targets[idx]!, ctx)) return { target: targets[idx]! };
      }
      const any = targets.find((t) => eligible(t, ctx));
      return any ? { target: any } : undefined;
    },
  };
}
