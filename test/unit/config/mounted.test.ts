// MountedSnapshot (session 23 audit): files of a Kubernetes Secret/ConfigMap volume read in ONE
// version however `..data` moves between the reads; any other file read as given.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MountedSnapshot } from '../../../src/config/mounted.ts';

test('a volume is read in the version the snapshot first saw; plain files and other symlinks as given', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-mounted-'));
  try {
    for (const v of ['v1', 'v2']) {
      mkdirSync(join(dir, `..${v}`));
      for (const f of ['tls.crt', 'tls.key']) writeFileSync(join(dir, `..${v}`, f), `${f} ${v}`);
    }
    const point = (v: string) => {
      symlinkSync(`..${v}`, join(dir, '..tmp'));
      renameSync(join(dir, '..tmp'), join(dir, '..data'));
    };
    point('v1');
    symlinkSync('..data/tls.crt', join(dir, 'tls.crt'));
    symlinkSync('..data/tls.key', join(dir, 'tls.key'));
    writeFileSync(join(dir, 'plain.pem'), 'plain');
    symlinkSync('plain.pem', join(dir, 'other.pem'));
    const view = new MountedSnapshot();
    const read = (f: string) => readFileSync(view.path(join(dir, f)), 'utf8');
    assert.equal(read('tls.crt'), 'tls.crt v1');
    point('v2');
    assert.equal(read('tls.key'), 'tls.key v1', 'the swap between two reads is not seen');
    assert.equal(new MountedSnapshot().path(join(dir, 'tls.key')), join(dir, '..v2', 'tls.key'), 'a new snapshot sees v2');
    assert.equal(view.path(join(dir, 'plain.pem')), join(dir, 'plain.pem'));
    assert.equal(view.path(join(dir, 'other.pem')), join(dir, 'other.pem'));
    assert.equal(view.path(join(dir, 'missing.pem')), join(dir, 'missing.pem'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
