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

for (const [name, flush, atMostMs] of [
  ['a flush that calls back', (cb: (err?: Error | null) => void) => setImmediate(cb), FLUSH_WAIT_MS / 2],
  ['a flush that calls back with an error', (cb: (err?: Error | null) => void) => cb(new Error('EIO')), FLUSH_WAIT_MS / 2],
  ['a flush that throws (destroyed sink)', () => { throw new Error('SonicBoom destroyed'); }, FLUSH_WAIT_MS / 2],
  ['a flush that never calls back (stuck disk)', () => {}, FLUSH_WAIT_MS * 3],
] as const) {
  test(`waitFlushed ends for ${name}`, async () => {
    const t0 = Date.now();
    await waitFlushed(flush);
    const ms = Date.now() - t0;
    // bounds, not timings: a stuck flush waits about FLUSH_WAIT_MS, the others do not wait for it
    assert.ok(ms < atMostMs, `waited ${ms} ms`);
    if (name.includes('never')) assert.ok(ms >= FLUSH_WAIT_MS - 50, `gave up after ${ms} ms`);
  });
}
