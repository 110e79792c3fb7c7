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
