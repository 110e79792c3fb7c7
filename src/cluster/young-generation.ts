// The size of V8's young generation for the gateway's worker processes (issue #16). V8 starts the
// semi-space at 1 MB and grows it only when many objects survive a scavenge; a proxy's survivors
// are its in-flight requests (a few KiB each), so it never grew: a gateway scavenged every ~45-70
// requests, each scavenge copying every in-flight request's objects again and promoting those that
// survived two. Starting at 16 MB (V8's own maximum on 64-bit) cut the gateway's scavenges per
// request x6-10, bytes promoted x2-3 and GC pause per request x2.5-3 (docs/waf.md, "Engine levers
// of the sixteenth session"). It must be a command-line flag: V8 sizes the heap at start-up,
// v8.setFlagsFromString() afterwards does not resize it, and NODE_OPTIONS refuses
// --min-semi-space-size. So the cluster primary gives it to the workers it forks; a single process
// takes it on its own command line (`node --min-semi-space-size=16 bin/sentinel.mjs run ...`).

/** Semi-space size in MB when SENTINEL_SEMI_SPACE_MB is not set. */
export const DEFAULT_SEMI_SPACE_MB = 16;

const SEMI_FLAG = /--(min|max)[-_]semi[-_]space[-_]size\b/;

/** SENTINEL_SEMI_SPACE_MB: an integer 1-1024, or 0 for V8's own sizing (no flag). */
export function semiSpaceMb(env: NodeJS.ProcessEnv): number {
  const raw = env.SENTINEL_SEMI_SPACE_MB;
  if (raw === undefined || raw.trim() === '') return DEFAULT_SEMI_SPACE_MB;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 1024) throw new Error(`SENTINEL_SEMI_SPACE_MB must be an integer from 0 to 1024 (0 = V8's default sizing), got "${raw}"`);
  return n;
}

/**
 * The node flags for a forked worker: the parent's own flags, plus the semi-space size unless the
 * operator already chose one (a semi-space flag in the parent's flags or NODE_OPTIONS, which the
 * child inherits) or SENTINEL_SEMI_SPACE_MB is 0.
 */
export function workerExecArgv(execArgv: readonly string[], env: NodeJS.ProcessEnv): string[] {
  const mb = semiSpaceMb(env);
  if (mb === 0 || execArgv.some((a) => SEMI_FLAG.test(a)) || SEMI_FLAG.test(env.NODE_OPTIONS ?? '')) return [...execArgv];
  // min alone is clamped to V8's maximum (16 MB): above it, raise the maximum too.
  return [...execArgv, `--min-semi-space-size=${mb}`, ...(mb > DEFAULT_SEMI_SPACE_MB ? [`--max-semi-space-size=${mb}`] : [])];
}
