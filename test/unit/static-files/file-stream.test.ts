// fileStream (plugins/static-files/server.ts): a large file is streamed from the file the realpath
// check described, not from whatever the name points at when the stream opens (session 14 audit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileStream } from '../../../plugins/static-files/server.ts';

async function drain(r: Readable): Promise<{ text: string; error?: Error }> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of r) chunks.push(c as Buffer);
    return { text: Buffer.concat(chunks).toString('latin1') };
  } catch (err) {
    return { text: Buffer.concat(chunks).toString('latin1'), error: err as Error };
  }
}

test('fileStream: the checked file is streamed; a parent swapped for a symlink out of the root, a replaced or changed file fail the body', async () => {
  const base = mkdtempSync(join(tmpdir(), 'sentinel-filestream-'));
  try {
    const root = join(base, 'www');
    mkdirSync(join(root, 'dir'), { recursive: true });
    mkdirSync(join(base, 'outside'));
    const inside = join(root, 'dir', 'big.bin');
    writeFileSync(inside, 'A'.repeat(100_000));
    writeFileSync(join(base, 'outside', 'big.bin'), 'S'.repeat(100_000));
    const st = statSync(inside);

    const ok = await drain(fileStream(inside, st, 10, 19));
    assert.equal(ok.error, undefined);
    assert.equal(ok.text, 'A'.repeat(10));

    // between the check and the open, someone who can write in the root swaps the parent directory
    renameSync(join(root, 'dir'), join(root, 'dir-old'));
    symlinkSync(join(base, 'outside'), join(root, 'dir'));
    const swapped = await drain(fileStream(inside, st, 0, 99_999));
    assert.ok(swapped.error, 'the body fails');
    assert.doesNotMatch(swapped.text, /S/, 'nothing of the file outside the root');

    // the last part a symlink (O_NOFOLLOW), or the file gone
    rmSync(join(root, 'dir'));
    renameSync(join(root, 'dir-old'), join(root, 'dir'));
    rmSync(inside);
    assert.ok((await drain(fileStream(inside, st, 0, 9))).error, 'gone');
    symlinkSync(join(base, 'outside', 'big.bin'), inside);
    assert.ok((await drain(fileStream(inside, st, 0, 9))).error, 'a symlink');
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
