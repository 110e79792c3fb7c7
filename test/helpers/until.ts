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

/**
 * Bound for a recovery that waits on a backoff: the rate-limit breaker's cooldown doubles per
 * failed probe up to 30 s (plugins/rate-limit/backend-breaker.ts), so a backend down for long on a
 * loaded machine may be probed again only 30 s later.
 */
export const RECOVERY_MS = 60_000;

/** Bound for a child process (redis-server, memcached, dnsmasq, rsyslogd, a gateway) to start answering on a loaded machine. */
export const START_MS = 60_000;
