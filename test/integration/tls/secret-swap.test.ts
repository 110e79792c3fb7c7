// A TLS Secret swapped between the reads of one certificate load (session 23 audit, open since
// session 21). The kubelet writes each version of a Secret volume into a timestamped folder and
// renames `..data` over; tls.crt and tls.key are symlinks through `..data`. A load read cert-file
// and key-file each through its symlink, so a swap between the two reads paired the certificate of
// one version with the key of the next: the reload failed ("tls: reload failed, keeping the
// previous certificates"). Fail-safe, and what a client saw mid-swap stayed the old certificate
// until the swap's own event reloaded again (with SIGHUP alone, until the next signal). Now one
// load resolves each folder's `..data` once and reads every file of it from that version
// (src/config/mounted.ts): the swap mid-load gives the version the load began with, whole.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, symlink } from 'node:fs/promises';
import { renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Pki, type TestCa } from '../../helpers/pki.ts';
import { requireCli, sClient, servedCn, startTlsServer, type TestServer } from './harness.ts';
import { certHooks } from '../../../plugins/tls/certs.ts';

let pki: Pki;
let ca: TestCa;
let srv: TestServer;
let secret: string;

/** Writes version `v` of the Secret (tls.crt, tls.key) into its own timestamped folder. */
async function writeVersion(v: string): Promise<void> {
  const issued = await ca.issue(v, { cn: `swap ${v}`, dns: ['swap.test'] });
  await mkdir(join(secret, `..${v}`));
  await copyFile(issued.cert, join(secret, `..${v}`, 'tls.crt'));
  await copyFile(issued.key, join(secret, `..${v}`, 'tls.key'));
}

/** The kubelet's swap: a new `..data` link renamed over the old one (atomic); synchronous, so a hook's swap is done when it returns. */
function point(v: string): void {
  symlinkSync(`..${v}`, join(secret, '..data_tmp'));
  renameSync(join(secret, '..data_tmp'), join(secret, '..data'));
}

before(async () => {
  requireCli('openssl', 'apt-get install -y openssl');
  pki = await Pki.create();
  ca = await pki.ca('ca');
  secret = pki.path('secret');
  await mkdir(secret);
  for (const v of ['v0', 'v1', 'v2']) await writeVersion(v);
  point('v0');
  await symlink('..data/tls.crt', join(secret, 'tls.crt'));
  await symlink('..data/tls.key', join(secret, 'tls.key'));
  srv = await startTlsServer({ 'cert-file': 'secret/tls.crt', 'key-file': 'secret/tls.key' }, pki.dir);
});

after(async () => {
  certHooks.afterRead = undefined;
  await srv?.close();
  await pki?.close();
});

const served = async () => servedCn((await sClient(srv.port, { servername: 'swap.test' })).stdout);

test('a Secret swapped between reading tls.crt and tls.key: the load keeps the version it began with, whole', async () => {
  assert.equal(await served(), 'swap v0');
  point('v1'); // a new version the gateway has not loaded yet
  let swapped = false;
  certHooks.afterRead = () => {
    if (swapped) return;
    swapped = true;
    point('v2'); // the next version lands between the two reads
  };
  await srv.mgr.reload();
  certHooks.afterRead = undefined;
  assert.ok(swapped, 'the swap was injected');
  assert.deepEqual(srv.logs.filter((l) => l.msg === 'tls: reload failed, keeping the previous certificates'), [], 'no mixed pair, no failed reload');
  assert.equal(await served(), 'swap v1', 'the version the load began with');
  await srv.mgr.reload(); // the swap's own event
  assert.equal(await served(), 'swap v2');
});
