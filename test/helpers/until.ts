// Waiting for something positive in a test: poll a condition until it holds, with an upper bound.
// The bound is generous on purpose (CI runs on a shared 2-core machine, load 10-30 has been seen):
// it only matters when the condition never comes, and then the test fails with `what`.
import { setTimeout as sleep } from 'node:timers/promises';

/** Default bound of `until`: ample on a loaded machine, far below a hung test. */
export const UNTIL_MS = 10_000;

/** Resolves once `cond()` is true; rejects naming `what` (or its text at the time) after `timeoutMs`. */
export async function until(what: string | (() => string), cond: () => boolean | Promise<boolean>, timeoutMs = UNTIL_MS, everyMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await sleep(everyMs);
  }
}

/**
 * Bound for a wait that only a hang exceeds: CI's loaded 2-core machine stalls for seconds, never
 * for this long. A test asserts order and cause; this bound only turns a hang into a message.
 */
export const HANG_MS = 30_000;

/** Resolves as `p` does; rejects naming `what` if `p` has not settled after `timeoutMs` (it hung). */
export async function notHung<T>(what: string, p: Promise<T>, timeoutMs = HANG_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what} had not finished after ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([p, hung]);
  } finally {
    clearTimeout(timer);
  }
}

/** How often a turning timer looks at the clock, and the most one look may count. */
const TURN_MS = 100;

/**
 * A timer that fires once `ms` of event-loop time has passed: a tick every TURN_MS adds the time
 * since the last one, at most 2 x TURN_MS. A stretch in which the loop was blocked (a gateway in
 * this process compiling the CRS for its in-process WAF) or the process was not scheduled (a
 * loaded machine) counts as one tick, not as its length; an idle loop counts wall time. Use it for
 * a bound that a loaded machine must not reach first: the wait for an answer, a close, a reset.
 * `onExpire` gets the wall time that passed. Returns the cancel function.
 */
export function turningTimeout(ms: number, onExpire: (wallMs: number) => void): () => void {
  const start = performance.now();
  let counted = 0;
  let last = start;
  const timer = setInterval(() => {
    const now = performance.now();
    counted += Math.min(now - last, 2 * TURN_MS);
    last = now;
    if (counted < ms) return;
    clearInterval(timer);
    onExpire(now - start);
  }, TURN_MS);
  return () => clearInterval(timer);
}

/**
 * As `notHung`, but the bound counts only time in which this process's event loop turned
 * (`turningTimeout`), so a blocked loop or a loaded machine cannot turn a slow start into a
 * failure; an idle loop waiting for an answer that never comes counts wall time, so a hang still
 * fails after `timeoutMs`.
 */
export async function notHungTurning<T>(what: string, p: Promise<T>, timeoutMs = HANG_MS): Promise<T> {
  let cancel = (): void => undefined;
  const hung = new Promise<never>((_, reject) => {
    cancel = turningTimeout(timeoutMs, (wall) => reject(new Error(`hung: ${what} had not finished after ${timeoutMs} ms of event-loop time (${Math.round(wall)} ms wall)`)));
  });
  try {
    return await Promise.race([p, hung]);
  } finally {
    cancel();
  }
}

/** Resolves with `p`'s value, or with `late` once `timeoutMs` of event-loop time passed without it (`turningTimeout`). */
export async function orAfterTurning<T, L>(p: Promise<T>, timeoutMs: number, late: L): Promise<T | L> {
  let cancel = (): void => undefined;
  const expired = new Promise<L>((resolve) => {
    cancel = turningTimeout(timeoutMs, () => resolve(late));
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    cancel();
  }
}

/**
 * Bound for a recovery that waits on a backoff: the rate-limit breaker's cooldown doubles per
 * failed probe up to 30 s (plugins/rate-limit/backend-breaker.ts), so a backend down for long on a
 * loaded machine may be probed again only 30 s later.
 */
export const RECOVERY_MS = 60_000;

/** Longest delay setTimeout takes (a longer one fires at once): a helper's own timer switched off where `notHungTurning` bounds the wait. */
export const NO_WALL_BOUND = 2 ** 31 - 1;

/**
 * Bound for a child process (redis-server, memcached, dnsmasq, rsyslogd, a gateway) to start answering on a loaded machine.
 * A gateway with the in-process WAF compiles the CRS first: 16.6-18.7 s at a 10% CPU share (docs/deploy.md, session 25)
 * and past 60 s at load 21 on 2 cores (session 26): the chart's startup budget, 120 s.
 */
export const START_MS = 120_000;
