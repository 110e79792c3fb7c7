// The audit file/stdout sink never holds more than its bound: with a reader that is not reading
// (a FIFO nobody opened, like a stuck disk or a blocked stdout pipe), writes return at once and
// what does not fit is dropped and counted; once a reader appears the kept lines arrive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { until } from '../../helpers/until.ts';
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSink } from '../../../src/logging/logger.ts';

test('a stuck sink drops past its bound and counts; nothing waits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbs-'));
  const fifo = join(dir, 'audit.fifo');
  const made = spawnSync('mkfifo', [fifo]);
  assert.equal(made.status, 0, `mkfifo (coreutils): ${made.stderr}`);
  let dropped = 0;
  const sink = createSink({ file: fifo }, false, { maxBytes: 10_000, onDrop: (n) => (dropped += n) })!;
  const line = `${JSON.stringify({ event_type: 'blocked', pad: 'x'.repeat(980) })}\n`; // 1 KB
  for (let i = 0; i < 100; i++) sink.write(line);
  // about 10 lines fit in the bound, the rest were dropped at once
  assert.ok(dropped >= 85 && dropped <= 95, `dropped ${dropped}`);
  // a reader appears: the kept lines arrive intact
  const chunks: Buffer[] = [];
  const reader = createReadStream(fifo);
  reader.on('data', (c) => chunks.push(c as Buffer));
  const ended = new Promise<void>((r) => reader.on('end', () => r()));
  await until('the first bytes through the FIFO once a reader opened it', () => chunks.length > 0);
  sink.end?.();
  await ended;
  const lines = Buffer.concat(chunks).toString().split('\n').filter(Boolean);
  assert.equal(lines.length, 100 - dropped);
  for (const l of lines) assert.equal((JSON.parse(l) as { event_type: string }).event_type, 'blocked');
  rmSync(dir, { recursive: true, force: true });
});
