// A shutdown waits for the log sinks' buffered lines (a cluster worker exits right after
// gateway.close()): flushed() resolves once the lines are in the file, and a stuck or destroyed
// sink does not hold the shutdown longer than FLUSH_WAIT_MS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSink, FLUSH_WAIT_MS, waitFlushed } from '../../../src/logging/logger.ts';

test('flushed() resolves with every line written so far in the file, the file opened asynchronously', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sfl-'));
  try {
    const file = join(dir, 'sub', 'access.log'); // mkdir + open still under way when the lines come
    const sink = createSink({ file }, true)!;
    for (let i = 0; i < 5; i++) sink.write(`${JSON.stringify({ i })}\n`); // under SonicBoom's 4 KB minLength: held in memory
    await sink.flushed!();
    assert.deepEqual(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i), [0, 1, 2, 3, 4]);
    sink.end?.();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// On a held clock (mock timers): the flushes that call back (or throw) end the wait with no time
// passing; a stuck one ends exactly when FLUSH_WAIT_MS has passed, and not a millisecond before.
for (const [name, flush] of [
  ['a flush that calls back', (cb: (err?: Error | null) => void) => setImmediate(cb)],
  ['a flush that calls back with an error', (cb: (err?: Error | null) => void) => cb(new Error('EIO'))],
  ['a flush that throws (destroyed sink)', () => { throw new Error('SonicBoom destroyed'); }],
  ['a flush that never calls back (stuck disk)', () => {}],
] as const) {
  test(`waitFlushed ends for ${name}`, async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let ended = false;
    const wait = waitFlushed(flush).then(() => (ended = true));
    // settles the flush's own callback (setImmediate is not mocked) and the promise chain
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    if (!name.includes('never')) {
      assert.equal(ended, true, 'ended without the FLUSH_WAIT_MS timer');
      return;
    }
    assert.equal(ended, false, 'a stuck flush is waited for');
    t.mock.timers.tick(FLUSH_WAIT_MS - 1);
    await new Promise((r) => setImmediate(r));
    assert.equal(ended, false, 'not given up before FLUSH_WAIT_MS');
    t.mock.timers.tick(1);
    await new Promise((r) => setImmediate(r));
    assert.equal(ended, true, 'given up at FLUSH_WAIT_MS');
    await wait;
  });
}
