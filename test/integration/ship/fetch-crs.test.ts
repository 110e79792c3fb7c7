// scripts/fetch-crs.sh's checksum and install logic, on a CRS-shaped tarball made here
// (the real download needs a route to github.com, which tests never take).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { locateCrs } from '../../../src/waf/agent/crs-location.ts';

const run = promisify(execFile);
const script = resolve(import.meta.dirname, '..', '..', '..', 'scripts', 'fetch-crs.sh');
const tmp = mkdtempSync(join(tmpdir(), 'sentinel-fetch-crs-'));

async function tarball(name: string, files: Record<string, string>): Promise<{ path: string; sha256: string }> {
  const src = join(tmp, `${name}-src`);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(src, 'coreruleset-4.0.0', f, '..'), { recursive: true });
    writeFileSync(join(src, 'coreruleset-4.0.0', f), text);
  }
  const path = join(tmp, `${name}.tar.gz`);
  await run('tar', ['-czf', path, '-C', src, 'coreruleset-4.0.0']);
  return { path, sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

const fetchCrs = (args: string[]) =>
  run('bash', [script, ...args]).then(
    (r) => ({ code: 0, stderr: r.stderr }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );

const crsFiles = {
  'rules/REQUEST-901-INITIALIZATION.conf': 'SecAction "id:901001,phase:1,pass,nolog"\n',
  'crs-setup.conf.example': 'SecDefaultAction "phase:1,log,auditlog,pass"\n',
  LICENSE: 'Apache-2.0\n',
  'tests/regression/x.yaml': 'not installed\n',
};

describe('scripts/fetch-crs.sh', () => {
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('installs a tarball whose sha256 matches: rules, setup, license, nothing else', async () => {
    const t = await tarball('good', crsFiles);
    const dest = join(tmp, 'good', 'crs');
    const r = await fetchCrs(['--from-file', t.path, '--sha256', t.sha256, '--dest', dest]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(dest, 'rules', 'REQUEST-901-INITIALIZATION.conf'), 'utf8'), crsFiles['rules/REQUEST-901-INITIALIZATION.conf']);
    assert.ok(existsSync(join(dest, 'LICENSE')));
    assert.equal(existsSync(join(dest, 'tests')), false);
    assert.deepEqual(locateCrs({ crsDir: dest }, existsSync), { ok: true, crsDir: dest });
  });

  it('refuses a tarball whose sha256 differs and installs nothing (an earlier install stays)', async () => {
    const t = await tarball('bad', crsFiles);
    const dest = join(tmp, 'bad', 'crs');
    const wrong = createHash('sha256').update('something else').digest('hex');
    const r = await fetchCrs(['--from-file', t.path, '--sha256', wrong, '--dest', dest]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`sha256 mismatch .*expected ${wrong}, got ${t.sha256}; nothing installed`));
    assert.equal(existsSync(dest), false);

    mkdirSync(join(tmp, 'kept', 'crs', 'rules'), { recursive: true });
    const again = await fetchCrs(['--from-file', t.path, '--sha256', wrong, '--dest', join(tmp, 'kept', 'crs')]);
    assert.equal(again.code, 1);
    assert.ok(existsSync(join(tmp, 'kept', 'crs', 'rules')));
  });

  it('checks against the pinned sha256 when none is given, and refuses a tarball that is not a CRS', async () => {
    const t = await tarball('pinned', crsFiles);
    const pinned = /^CRS_SHA256="([0-9a-f]{64})"$/m.exec(readFileSync(script, 'utf8'))?.[1];
    assert.ok(pinned, 'no pinned CRS_SHA256 in the script');
    const r = await fetchCrs(['--from-file', t.path, '--dest', join(tmp, 'pinned', 'crs')]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`expected ${pinned}`), r.stderr);

    const notCrs = await tarball('notcrs', { 'README.md': 'hello\n' });
    const r2 = await fetchCrs(['--from-file', notCrs.path, '--sha256', notCrs.sha256, '--dest', join(tmp, 'notcrs', 'crs')]);
    assert.equal(r2.code, 1);
    assert.match(r2.stderr, /no rules\/ or crs-setup\.conf\.example/);
  });
});
