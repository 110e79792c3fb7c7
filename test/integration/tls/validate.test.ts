// validateTlsConfig (startup and `sentinel test`): every broken tls block fails with a message
// that names the key and the file; and the KDL tls block is strict (unknown nodes are errors).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, copyFile, readFile } from 'node:fs/promises';
import { Pki, openssl, type Issued, type TestCa } from '../../helpers/pki.ts';
import { validateTlsConfig, type ListenerTlsConfig } from '../../../plugins/tls/index.ts';
import { loadConfigText } from '../../../src/config/load.ts';

describe('validateTlsConfig', () => {
  let pki: Pki;
  let ca: TestCa;
  let a: Issued;

  before(async () => {
    pki = await Pki.create();
    ca = await pki.ca('ca');
    a = await ca.issue('a', { cn: 'a.test', dns: ['a.test'] });
    await ca.issue('b', { cn: 'b.test', dns: ['b.test'] });
    await writeFile(pki.path('garbage.pem'), 'hello\n');
    await mkdir(pki.path('adir'));
    await openssl(['pkey', '-in', a.key, '-out', pki.path('a-enc.key'), '-aes256', '-passout', 'pass:secret']);
    // chain in the wrong order: CA first, then the leaf
    await writeFile(pki.path('wrong-order.crt'), (await readFile(ca.cert, 'utf8')) + (await readFile(a.cert, 'utf8')));
    await mkdir(pki.path('orphans'));
    await copyFile(a.cert, pki.path('orphans/lonely.crt'));
  });
  after(async () => pki?.close());

  it('a good block passes (relative paths against baseDir)', async () => {
    await validateTlsConfig({ 'cert-file': 'a.crt', 'key-file': 'a.key', 'ca-file': 'ca.crt', 'client-auth': true, sni: [{ 'cert-file': 'b.crt', 'key-file': 'b.key' }] }, pki.dir);
    await validateTlsConfig({ 'cert-file': 'a-chain.crt', 'key-file': 'a.key' }, pki.dir);
  });

  const cases: [string, ListenerTlsConfig, RegExp][] = [
    ['missing cert-file', { 'cert-file': 'nope.crt', 'key-file': 'a.key' }, /^tls cert-file "\/.*\/nope\.crt": file not found$/],
    ['missing key-file', { 'cert-file': 'a.crt', 'key-file': 'nope.key' }, /^tls key-file ".*nope\.key": file not found$/],
    ['a directory', { 'cert-file': 'adir', 'key-file': 'a.key' }, /cert-file ".*adir": is a directory/],
    ['not PEM', { 'cert-file': 'garbage.pem', 'key-file': 'a.key' }, /cert-file ".*garbage\.pem": not a PEM certificate/],
    ['key is not PEM', { 'cert-file': 'a.crt', 'key-file': 'garbage.pem' }, /key-file ".*garbage\.pem": not a PEM private key/],
    ['swapped files', { 'cert-file': 'a.key', 'key-file': 'a.crt' }, /not a PEM certificate .*are cert-file and key-file swapped\?/],
    ['key of another certificate', { 'cert-file': 'a.crt', 'key-file': 'b.key' }, /tls key-file ".*b\.key" does not match the certificate in cert-file ".*a\.crt" \(subject CN=a\.test\)/],
    ['encrypted key', { 'cert-file': 'a.crt', 'key-file': 'a-enc.key' }, /encrypted/],
    ['chain out of order', { 'cert-file': 'wrong-order.crt', 'key-file': 'a.key' }, /does not match|did not issue/],
    ['cert without key', { 'cert-file': 'a.crt' }, /key-file is missing/],
    ['no certificate at all', {}, /cert-file and key-file are required/],
    ['client-auth without ca-file', { 'cert-file': 'a.crt', 'key-file': 'a.key', 'client-auth': true }, /client-auth #true needs ca-file/],
    ['ca-file that is not a CA', { 'cert-file': 'a.crt', 'key-file': 'a.key', 'ca-file': 'b.crt' }, /ca-file ".*b\.crt": certificate CN=b\.test is not a CA/],
    ['bad min-version', { 'cert-file': 'a.crt', 'key-file': 'a.key', 'min-version': '1.1' }, /min-version "1\.1": expected "1\.2" or "1\.3"/],
    ['bad cipher', { 'cert-file': 'a.crt', 'key-file': 'a.key', 'cipher-suite': ['TLS_RSA_WITH_RC4_128_SHA'] }, /cipher-suite "TLS_RSA_WITH_RC4_128_SHA": unknown or not allowed/],
    ['hostnames and priority-hostnames', { 'cert-file': 'a.crt', 'key-file': 'a.key', sni: [{ hostnames: ['b.test'], 'priority-hostnames': ['b.test'], 'cert-file': 'b.crt', 'key-file': 'b.key' }] }, /sni\[1\]: hostnames and priority-hostnames are mutually exclusive/],
    ['sni without key', { 'cert-file': 'a.crt', 'key-file': 'a.key', sni: [{ 'cert-file': 'b.crt' }] }, /sni\[1\]: cert-file and key-file are required/],
    ['sni broken key', { 'cert-file': 'a.crt', 'key-file': 'a.key', sni: [{ 'cert-file': 'b.crt', 'key-file': 'a.key' }] }, /tls sni\[1\] key-file ".*a\.key" does not match/],
    ['invalid SNI name', { 'cert-file': 'a.crt', 'key-file': 'a.key', sni: [{ hostnames: ['a.*.test'], 'cert-file': 'b.crt', 'key-file': 'b.key' }] }, /invalid SNI host name "a\.\*\.test"/],
    [
      'overlapping SNI names',
      { 'cert-file': 'a.crt', 'key-file': 'a.key', sni: [{ 'cert-file': 'b.crt', 'key-file': 'b.key' }, { hostnames: ['b.test'], 'cert-file': 'a.crt', 'key-file': 'a.key' }] },
      /overlapping SNI host names: "b\.test" is claimed by sni\[1\] .* and sni\[2\] .*allow-sni-overlaps #true/,
    ],
    ['missing sni-certs folder', { 'cert-file': 'a.crt', 'key-file': 'a.key', 'sni-certs': [{ 'cert-folder': 'nofolder' }] }, /cert-folder ".*nofolder": folder not found/],
    ['sni-certs cert without key', { 'cert-file': 'a.crt', 'key-file': 'a.key', 'sni-certs': [{ 'cert-folder': 'orphans' }] }, /no key file for lonely\.crt/],
    ['acme', { acme: { email: 'x@y' } }, /tls acme is not supported/],
  ];
  for (const [what, config, message] of cases) {
    it(`rejects: ${what}`, async () => {
      await assert.rejects(validateTlsConfig(config, pki.dir), (err: Error) => {
        assert.match(err.message, message);
        return true;
      });
    });
  }

  it('allow-sni-overlaps #true accepts the same overlap', async () => {
    await validateTlsConfig({ 'cert-file': 'a.crt', 'key-file': 'a.key', 'allow-sni-overlaps': true, sni: [{ 'cert-file': 'b.crt', 'key-file': 'b.key' }, { hostnames: ['b.test'], 'cert-file': 'a.crt', 'key-file': 'a.key' }] }, pki.dir);
  });
});

describe('KDL tls block decoding', () => {
  const cfg = (tls: string) => `system { }
listeners { listener "https" { address "127.0.0.1:0"; protocol "https"; tls { ${tls} } } }
routes { route "h" { matches { path-prefix "/" }; builtin-handler "health" } }`;

  it('decodes every key of §1.4 (ACME excluded)', () => {
    const c = loadConfigText(
      cfg(`cert-file "/c.pem"; key-file "/k.pem"; ca-file "/ca.pem"; client-auth #true; min-version "1.3"; max-version "1.3"
      cipher-suite "TLS13_AES_128_GCM_SHA256"; cipher-suite "TLS13_AES_256_GCM_SHA384"; ocsp-stapling #false; session-resumption #false
      sni { hostnames "a.test" "b.test"; cert-file "/a.pem"; key-file "/a.key" }
      sni { priority-hostnames "p.test"; cert-file "/p.pem"; key-file "/p.key" }
      sni-certs { cert-folder "/certs"; reload-mode "interval"; reload-interval "30s" }
      allow-sni-overlaps #true`),
    );
    assert.deepEqual(c.listeners[0]!.tls, {
      'cert-file': '/c.pem',
      'key-file': '/k.pem',
      'ca-file': '/ca.pem',
      'client-auth': true,
      'min-version': '1.3',
      'max-version': '1.3',
      'cipher-suite': ['TLS13_AES_128_GCM_SHA256', 'TLS13_AES_256_GCM_SHA384'],
      'ocsp-stapling': false,
      'session-resumption': false,
      sni: [
        { hostnames: ['a.test', 'b.test'], 'cert-file': '/a.pem', 'key-file': '/a.key' },
        { 'priority-hostnames': ['p.test'], 'cert-file': '/p.pem', 'key-file': '/p.key' },
      ],
      'sni-certs': [{ 'cert-folder': '/certs', 'reload-mode': 'interval', 'reload-interval': '30s' }],
      'allow-sni-overlaps': true,
    });
  });

  for (const [what, tls, message] of [
    ['unknown key in tls', 'cert-file "/c"; key-file "/k"; cert-flie "/x"', /tls.*unknown key "cert-flie".*did you mean "cert-file"/s],
    ['cipher-suites block (Sentinel hint)', 'cert-file "/c"; key-file "/k"; cipher-suites { x }', /unknown key "cipher-suites".*cipher-suite/s],
    ['unknown key in sni', 'cert-file "/c"; key-file "/k"; sni { hostname "a"; cert-file "/a"; key-file "/a" }', /sni.*unknown key "hostname"/s],
    ['unknown key in sni-certs', 'cert-file "/c"; key-file "/k"; sni-certs { cert-folder "/d"; reload "watch" }', /sni-certs.*unknown key "reload"/s],
    ['string "true" is not a boolean', 'cert-file "/c"; key-file "/k"; client-auth "true"', /client-auth.*expected a boolean/s],
    ['bad reload-mode', 'cert-file "/c"; key-file "/k"; sni-certs { cert-folder "/d"; reload-mode "inotify" }', /reload-mode.*expected one of off, interval, watch/s],
  ] as const) {
    it(`rejects: ${what}`, () => {
      assert.throws(() => loadConfigText(cfg(tls)), (err: Error) => {
        assert.match(err.message, message);
        return true;
      });
    });
  }
});
