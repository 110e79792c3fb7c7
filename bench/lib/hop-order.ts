// The order of bench/agent-hop.ts's loads within a round. Pure, table-tested
// (test/unit/bench/hop-order.test.ts).
//
// Each side (a gateway of one checkout) takes its round's segments as one block while the other
// side's gateway idles. The block that follows the other side's block starts after that idle
// (16-32 s with --duration 8): its first segment is cold (after an idle the gateway's young
// generation has shrunk, so it often scavenges 5-8x as often per request for the next few thousand
// requests; bench/README.md). Until session 18 the side order and the path order flipped
// together every round, so the cold first segment was always the baseline's /pass and the
// current side's /agent: the baseline's agent/pass read high and the current's low, also with
// the same code in both slots. Here the path order flips every `sides` rounds instead, so over
// 2 x sides rounds every side starts a block after the other side's idle once with each path,
// and every (side, path) has the same mean position in the round; and each block can begin with
// unmeasured warm-up segments (one per path) that take the cold start.

export interface Segment {
  /** index into the run's sides */
  side: number;
  path: string;
  /** false: a warm-up segment, loaded but not counted */
  measured: boolean;
}

/**
 * The segments of round `round` (0-based): for each side in turn (the side order reversed every
 * other round), optionally one warm-up segment per path, then `segments` measured segments per
 * path, the paths in turn and mirrored every other segment (A B, B A, A B, ...). The path that
 * starts a block flips every `sides` rounds (every round with one side).
 */
export function roundPlan(round: number, sides: number, paths: readonly string[], segments: number, warmup: boolean): Segment[] {
  if (!Number.isInteger(round) || round < 0) throw new RangeError(`round ${round}`);
  if (!Number.isInteger(sides) || sides < 1) throw new RangeError(`sides ${sides}`);
  if (!Number.isInteger(segments) || segments < 1) throw new RangeError(`segments ${segments}`);
  if (paths.length === 0) throw new RangeError('no paths');
  const sideOrder = Array.from({ length: sides }, (_, i) => i);
  if (round % 2 === 1) sideOrder.reverse();
  const first = Math.floor(round / sides) % 2 === 0 ? [...paths] : [...paths].reverse();
  const plan: Segment[] = [];
  for (const side of sideOrder) {
    if (warmup) for (const path of first) plan.push({ side, path, measured: false });
    for (let k = 0; k < segments; k++) {
      for (const path of k % 2 === 0 ? first : [...first].reverse()) plan.push({ side, path, measured: true });
    }
  }
  return plan;
}

/** Rounds that give every side and path the same positions: a multiple of 2 x sides (with one path, of 2). */
export function balancedRounds(sides: number, paths: number): number {
  return paths > 1 ? 2 * sides : 2;
}
