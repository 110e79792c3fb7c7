// The hang bounds of test/helpers/until.ts: notHung counts wall time, notHungTurning only time in
// which the event loop turned (a gateway in the test's process compiling the CRS blocks it for
// seconds on a loaded machine; ci23's parser-differentials first probe).
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { notHung, notHungTurning } from '../../helpers/until.ts';

/**
 * Resolves once the loop has turned after being blocked for `ms`, as a gateway's answer comes in a
 * socket read after its synchronous CRS compile: the timers due meanwhile run first.
 */
function afterBlocking(ms: number): Promise<string> {
  return new Promise((resolve) => {
    setImmediate(() => {
      const end = performance.now() + ms;
      while (performance.now() < end);
      setImmediate(() => resolve('done'));
    });
  });
}

test('a blocked loop counts as one tick for notHungTurning, as its length for notHung', async () => {
  // at most two ticks before the answer (one before the block, one after it), 200 ms each
  assert.equal(await notHungTurning('the blocked work', afterBlocking(800), 500), 'done');
  await assert.rejects(notHung('the blocked work', afterBlocking(800), 500), /hung: the blocked work had not finished after 500 ms/);
});

test('notHungTurning still fails a wait that never ends on an idle loop', async () => {
  await assert.rejects(notHungTurning('an answer that never comes', new Promise(() => undefined), 300), /hung: an answer that never comes had not finished after 300 ms of event-loop time/);
});
