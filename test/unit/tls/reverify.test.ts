// stillAccepted (plugins/tls/reverify.ts): the sure yes that keeps a connection open across a
// reload that changed the client CA bundle, and the noes that close it (docs/security.md,
// "Session 29 (tls29)"). Certificates made with the openssl CLI (test/helpers/pki.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { openssl, Pki, TestCa } from '../../helpers/pki.ts';
import { stillAccepted, trustView, type TrustView } from '../../../plugins/tls/reverify.ts';

const read = async (path: string) => new X509Certificate(await readFile(path));
const view = (...certs: X509Certificate[]): TrustView => ({ certs, complete: true });

describe('stillAccepted', () => {
  let pki: Pki;
  let root: X509Certificate;
  let other: X509Certificate;
  let rekeyed: X509Certificate;
  let inter: X509Certificate;
  let alice: X509Certificate;
  let bob: X509Certificate;
  before(async () => {
    pki = await Pki.create();
    const rootCa = await pki.ca('root', 'Clients');
    alice = await read((await rootCa.issue('alice', { cn: 'alice', usage: 'client' })).cert);
    root = await read(rootCa.cert);
    other = await read((await pki.ca('other', 'Other clients')).cert);
    // the same name with a new key: a CA re-made, not the one that signed alice
    rekeyed = await read((await pki.ca('rekeyed', 'Clients')).cert);
    // an intermediate CA under root, and bob under it
    const mid = new TestCa(pki, 'mid');
    await writeFile(pki.path('mid.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
    await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', mid.key, '-out', pki.path('mid.csr'), '-subj', '/CN=Clients Mid']);
    await openssl(['x509', '-req', '-in', pki.path('mid.csr'), '-CA', rootCa.cert, '-CAkey', rootCa.key, '-set_serial', '0x42', '-days', '30', '-extfile', pki.path('mid.ext'), '-out', mid.cert]);
    inter = await read(mid.cert);
    bob = await read((await mid.issue('bob', { cn: 'bob', usage: 'client' })).cert);
  });
  after(() => pki?.close());

  it('yes: the self-signed CA that issued the leaf is in both bundles, alone under its name', () => {
    assert.equal(stillAccepted(alice, view(root), view(root)), true);
    assert.equal(stillAccepted(alice, view(root), view(other, root)), true, 'a CA added');
    assert.equal(stillAccepted(alice, view(root, other), view(root)), true, 'another CA dropped');
    assert.equal(stillAccepted(alice, view(root), view(root, root)), true, 'the same certificate twice');
  });

  it('no: the issuing CA dropped, re-made under the same name, or not alone under its name', () => {
    assert.equal(stillAccepted(alice, view(root), view(other)), false);
    assert.equal(stillAccepted(alice, view(root), view(rekeyed)), false, 'same name, other key');
    assert.equal(stillAccepted(alice, view(root), view(root, rekeyed)), false, 'two candidates: OpenSSL may pick either');
    assert.equal(stillAccepted(alice, view(root, rekeyed), view(root)), false, 'two candidates before: which one verified it is not known');
    assert.equal(stillAccepted(alice, view(root), { certs: [root], complete: false }), false, 'a bundle with blocks not read here');
  });

  it('no: a leaf under an intermediate (chains are not re-checked), an expired leaf', () => {
    assert.equal(stillAccepted(bob, view(root, inter), view(root, inter)), false);
    assert.equal(stillAccepted(alice, view(root), view(root), Date.parse(alice.validTo) + 1000), false);
  });

  it('trustView: TRUSTED CERTIFICATE and X509 CERTIFICATE blocks make a bundle incomplete', () => {
    assert.equal(trustView({ pem: '-----BEGIN CERTIFICATE-----\n...', certs: [root] }).complete, true);
    assert.equal(trustView({ pem: '-----BEGIN TRUSTED CERTIFICATE-----\n...', certs: [root] }).complete, false);
    assert.equal(trustView({ pem: '-----BEGIN X509 CERTIFICATE-----\n...', certs: [root] }).complete, false);
    assert.deepEqual(trustView(undefined), { certs: [], complete: true });
  });
});
