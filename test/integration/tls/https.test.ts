// HTTPS listener end to end with real clients (openssl s_client, curl, nghttp) and a test PKI:
// SNI (exact, wildcard, priority, cert-derived names, sni-certs folder), default certificate,
// mTLS (good / missing / wrong CA), versions, ciphers, session resumption, ALPN h2/http1.1, metrics.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, copyFile } from 'node:fs/promises';
import http2 from 'node:http2';
import { Pki, type Issued, type TestCa } from '../../helpers/pki.ts';
import { curl, exec, requireCli, sClient, servedCn, startTlsServer, type TestServer } from './harness.ts';
import { h2Request } from '../../helpers/http.ts';

describe('https listener: SNI, default certificate, ALPN, versions', () => {
  let pki: Pki;
  let ca: TestCa;
  let srv: TestServer;
  const certs: Record<string, Issued> = {};

  before(async () => {
    requireCli('openssl', 'apt-get install -y openssl');
    requireCli('curl', 'apt-get install -y curl');
    requireCli('nghttp', 'apt-get install -y nghttp2-client');
    pki = await Pki.create();
    ca = await pki.ca('ca');
    certs.def = await ca.issue('default', { cn: 'default.test', dns: ['default.test'] });
    certs.api = await ca.issue('api', { cn: 'api.test', dns: ['api.test', 'www.api.test'] });
    certs.wild = await ca.issue('wild', { cn: 'wildcard', dns: ['*.apps.test'] });
    certs.special = await ca.issue('special', { cn: 'special', dns: ['special.apps.test', 'api.test'] });
    // sni-certs folder: names come from the certificates
    await mkdir(pki.path('folder'));
    certs.folder = await ca.issue('folder-one', { cn: 'folder.test', dns: ['folder.test'] });
    await copyFile(certs.folder.cert, pki.path('folder/one.crt'));
    await copyFile(certs.folder.key, pki.path('folder/one.key'));
    srv = await startTlsServer(
      {
        'cert-file': 'default.crt',
        'key-file': 'default.key',
        sni: [
          { hostnames: ['api.test', 'www.api.test'], 'cert-file': 'api.crt', 'key-file': 'api.key' },
          { 'cert-file': 'wild.crt', 'key-file': 'wild.key' }, // names from SAN: *.apps.test
          { 'priority-hostnames': ['special.apps.test', 'api.test'], 'cert-file': 'special.crt', 'key-file': 'special.key' },
        ],
        'sni-certs': [{ 'cert-folder': 'folder' }],
      },
      pki.dir, // relative paths resolve against the config's dir
      { maxConcurrentStreams: 64 },
    );
  });

  after(async () => {
    await srv?.close();
    await pki?.close();
  });

  const cases: [servername: string | undefined, expectedCn: string][] = [
    ['www.api.test', 'api.test'],
    ['WWW.API.TEST', 'api.test'], // case-insensitive
    ['x.apps.test', 'wildcard'], // wildcard matches one label
    ['a.b.apps.test', 'default.test'], // ... not two
    ['apps.test', 'default.test'], // ... nor the bare domain
    ['special.apps.test', 'special'], // exact beats wildcard
    ['api.test', 'special'], // priority-hostnames wins the overlap
    ['folder.test', 'folder.test'], // from the sni-certs folder
    ['unknown.test', 'default.test'], // unknown SNI -> default
    [undefined, 'default.test'], // no SNI -> default
  ];
  for (const [name, cn] of cases) {
    it(`s_client with SNI ${name ?? '(none)'} gets ${cn}`, async () => {
      const r = await sClient(srv.port, name ? { servername: name } : { noSni: true });
      assert.equal(servedCn(r.stdout), cn, r.stdout + r.stderr);
    });
  }

  it('curl verifies the SNI certificate against the test CA (h2 via ALPN)', async () => {
    const r = await curl(srv.port, 'www.api.test', ca.cert, ['--http2', '-w', '\n%{http_version}']);
    assert.equal(r.code, 0, r.stderr);
    const [body, version] = r.stdout.split('\n');
    assert.equal(version, '2');
    const json = JSON.parse(body!) as { httpVersion: string; tls: { serverName: string; version: string; clientSubject?: string } };
    assert.equal(json.httpVersion, '2.0');
    assert.equal(json.tls.serverName, 'www.api.test');
    assert.equal(json.tls.clientSubject, undefined);
  });

  it('curl --http1.1 gets HTTP/1.1 over the same listener', async () => {
    const r = await curl(srv.port, 'x.apps.test', ca.cert, ['--http1.1', '-w', '\n%{http_version}']);
    assert.equal(r.code, 0, r.stderr);
    const [body, version] = r.stdout.split('\n');
    assert.equal(version, '1.1');
    assert.equal((JSON.parse(body!) as { httpVersion: string }).httpVersion, '1.1');
  });

  it('nghttp speaks h2 and sees max-concurrent-streams (64) in the server SETTINGS', async () => {
    // nghttp has no --resolve: by IP it sends no SNI and gets the default certificate
    const r = await exec('nghttp', ['-nv', `https://127.0.0.1:${srv.port}/h2`]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    // the first SETTINGS frame received is the server's
    assert.match(r.stdout, /recv SETTINGS frame <[^>]*stream_id=0>\s*\(niv=\d+\)\s*\[SETTINGS_MAX_CONCURRENT_STREAMS\(0x03\):64\]/);
    assert.match(r.stdout, /:status: 200/);
  });

  it('ALPN negotiation: h2 preferred, http/1.1 offered', async () => {
    const h2 = await sClient(srv.port, { servername: 'api.test', args: ['-alpn', 'h2,http/1.1'] });
    assert.match(h2.stdout, /ALPN protocol: h2/);
    const h1 = await sClient(srv.port, { servername: 'x.apps.test', args: ['-alpn', 'http/1.1'] });
    assert.match(h1.stdout, /ALPN protocol: http\/1.1/);
  });

  it('node http2 client gets the same answer as curl (proxy path identical over both)', async () => {
    const session = http2.connect(`https://127.0.0.1:${srv.port}`, { ca: await (await import('node:fs/promises')).readFile(ca.cert), servername: 'api.test' });
    try {
      const r = await h2Request(session, { ':path': '/x' });
      assert.equal(r.status, 200);
      const json = JSON.parse(r.body) as { path: string; tls: { serverName: string } };
      assert.equal(json.path, '/x');
      assert.equal(json.tls.serverName, 'api.test');
    } finally {
      session.close();
    }
  });

  it('TLS 1.0/1.1 are refused, 1.2 and 1.3 accepted by default', async () => {
    const t11 = await sClient(srv.port, { servername: 'api.test', args: ['-tls1_1'] });
    assert.notEqual(t11.code, 0);
    const t12 = await sClient(srv.port, { servername: 'api.test', args: ['-tls1_2'] });
    assert.match(t12.stdout, /(Protocol\s*: |New, )TLSv1\.2/);
    const t13 = await sClient(srv.port, { servername: 'api.test', args: ['-tls1_3'] });
    assert.match(t13.stdout, /(Protocol\s*: |New, )TLSv1\.3/);
  });

  it('session resumption works (TLS 1.2 ticket) across SNI certificates', async () => {
    const sess = pki.path('sess.pem');
    const first = await sClient(srv.port, { servername: 'api.test', args: ['-tls1_2', '-sess_out', sess] });
    assert.match(first.stdout, /^New, /m);
    const second = await sClient(srv.port, { servername: 'api.test', args: ['-tls1_2', '-sess_in', sess] });
    assert.match(second.stdout, /^Reused, /m, second.stdout);
  });

  it('ticket key rotation ends resumption of older sessions (forward secrecy)', async () => {
    const sess = pki.path('sess-rot.pem');
    await sClient(srv.port, { servername: 'api.test', args: ['-tls1_2', '-sess_out', sess] });
    assert.match((await sClient(srv.port, { servername: 'api.test', args: ['-tls1_2', '-sess_in', sess] })).stdout, /^Reused, /m);
    await srv.mgr.rotateTicketKeys();
    const after = await sClient(srv.port, { servername: 'api.test', args: ['-tls1_2', '-sess_in', sess] });
    assert.match(after.stdout, /^New, /m);
    assert.equal(servedCn(after.stdout), 'special');
  });

  it('exports handshake duration and certificate expiry metrics', async () => {
    const text = await srv.metrics.render();
    assert.match(text, /sentinel_tls_handshake_duration_seconds_count\{version="TLSv1.3"\} [1-9]/);
    assert.match(text, /sentinel_tls_handshake_duration_seconds_count\{version="TLSv1.2"\} [1-9]/);
    const m = new RegExp(`sentinel_tls_certificate_expiry_seconds\\{listener="https",cert="${pki.path('api.crt').replace(/[/.]/g, '\\$&')}",subject="CN=api.test"\\} (\\d+)`).exec(text);
    assert.ok(m, text);
    const secs = Number(m[1]);
    assert.ok(secs > 29 * 86400 && secs <= 30 * 86400, `expiry ${secs}s should be ~30 days`);
    assert.match(text, /sentinel_tls_handshake_failures_total\{reason="protocol_version"\} [1-9]/);
  });
});

describe('https listener: versions, ciphers, session-resumption off', () => {
  let pki: Pki;
  let srv: TestServer;

  before(async () => {
    pki = await Pki.create();
    const ca = await pki.ca('ca');
    const c = await ca.issue('srv', { cn: 'srv.test', dns: ['srv.test'] });
    srv = await startTlsServer(
      { 'cert-file': c.cert, 'key-file': c.key, 'min-version': '1.2', 'max-version': '1.2', 'cipher-suite': ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'], 'session-resumption': false },
      pki.dir,
    );
  });
  after(async () => {
    await srv?.close();
    await pki?.close();
  });

  it('max-version 1.2 refuses a TLS 1.3-only client', async () => {
    const r = await sClient(srv.port, { servername: 'srv.test', args: ['-tls1_3'] });
    assert.notEqual(r.code, 0);
  });

  it('only the configured cipher suite is negotiated', async () => {
    const ok = await sClient(srv.port, { servername: 'srv.test' });
    assert.match(ok.stdout, /Cipher\s*: ECDHE-ECDSA-AES256-GCM-SHA384/);
    const other = await sClient(srv.port, { servername: 'srv.test', args: ['-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'] });
    assert.notEqual(other.code, 0);
  });

  it('session-resumption #false: no ticket, no resumption', async () => {
    const sess = pki.path('sess.pem');
    await sClient(srv.port, { servername: 'srv.test', args: ['-sess_out', sess] });
    const second = await sClient(srv.port, { servername: 'srv.test', args: ['-sess_in', sess] });
    assert.match(second.stdout, /^New, /m);
    assert.doesNotMatch(second.stdout, /TLS session ticket:/);
  });
});

describe('mTLS: ca-file + client-auth', () => {
  let pki: Pki;
  let ca: TestCa;
  let srv: TestServer;
  let good: Issued;
  let wrong: Issued;

  before(async () => {
    pki = await Pki.create();
    ca = await pki.ca('ca');
    const clients = await pki.ca('clients');
    const other = await pki.ca('other');
    const s = await ca.issue('srv', { cn: 'srv.test', dns: ['srv.test'] });
    good = await clients.issue('alice', { cn: 'alice', usage: 'client', dns: ['alice.internal'], email: ['alice@example.test'] });
    wrong = await other.issue('mallory', { cn: 'mallory', usage: 'client' });
    srv = await startTlsServer({ 'cert-file': s.cert, 'key-file': s.key, 'ca-file': clients.cert, 'client-auth': true }, pki.dir);
  });
  after(async () => {
    await srv?.close();
    await pki?.close();
  });

  it('a client certificate from the CA is accepted and its identity reaches the request', async () => {
    const r = await curl(srv.port, 'srv.test', ca.cert, ['--cert', good.cert, '--key', good.key]);
    assert.equal(r.code, 0, r.stderr);
    const tls = (JSON.parse(r.stdout) as { tls: { clientSubject: string; clientSans: string[]; clientFingerprint256: string } }).tls;
    assert.equal(tls.clientSubject, 'CN=alice');
    assert.deepEqual(tls.clientSans, ['DNS:alice.internal', 'email:alice@example.test']);
    const { X509Certificate } = await import('node:crypto');
    const { readFile } = await import('node:fs/promises');
    assert.equal(tls.clientFingerprint256, new X509Certificate(await readFile(good.cert)).fingerprint256);
  });

  it('a client without a certificate is rejected', async () => {
    const r = await curl(srv.port, 'srv.test', ca.cert, ['--http1.1']);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
  });

  it('a client certificate from another CA is rejected', async () => {
    const r = await curl(srv.port, 'srv.test', ca.cert, ['--cert', wrong.cert, '--key', wrong.key]);
    assert.notEqual(r.code, 0);
    assert.equal(r.stdout, '');
    const req = 'GET / HTTP/1.0\r\nHost: srv.test\r\n\r\n';
    const s = await sClient(srv.port, { servername: 'srv.test', cert: wrong.cert, key: wrong.key, args: ['-ign_eof'], input: req });
    assert.doesNotMatch(s.stdout, /HTTP\/1\.[01] 200/);
    // the same request with the good certificate is answered (the check above is not vacuous)
    const g = await sClient(srv.port, { servername: 'srv.test', cert: good.cert, key: good.key, args: ['-ign_eof'], input: req });
    assert.match(g.stdout, /HTTP\/1\.[01] 200/);
  });

  it('counts rejected handshakes by reason', async () => {
    const text = await srv.metrics.render();
    assert.match(text, /sentinel_tls_handshake_failures_total\{reason="client_cert_missing"\} [1-9]/);
    assert.match(text, /sentinel_tls_handshake_failures_total\{reason="client_cert_untrusted"\} [1-9]/);
  });
});

describe('mTLS optional: ca-file without client-auth', () => {
  let pki: Pki;
  let ca: TestCa;
  let srv: TestServer;
  let good: Issued;
  let wrong: Issued;

  before(async () => {
    pki = await Pki.create();
    ca = await pki.ca('ca');
    const clients = await pki.ca('clients');
    const other = await pki.ca('other');
    const s = await ca.issue('srv', { cn: 'srv.test', dns: ['srv.test'] });
    good = await clients.issue('bob', { cn: 'bob', usage: 'client' });
    wrong = await other.issue('eve', { cn: 'eve', usage: 'client' });
    srv = await startTlsServer({ 'cert-file': s.cert, 'key-file': s.key, 'ca-file': clients.cert }, pki.dir);
  });
  after(async () => {
    await srv?.close();
    await pki?.close();
  });

  it('anonymous clients are served without an identity', async () => {
    const r = await curl(srv.port, 'srv.test', ca.cert);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { tls: { clientSubject?: string } }).tls.clientSubject, undefined);
  });

  it('a verified client gets an identity, an unverified one does not', async () => {
    const ok = await curl(srv.port, 'srv.test', ca.cert, ['--cert', good.cert, '--key', good.key]);
    assert.equal((JSON.parse(ok.stdout) as { tls: { clientSubject?: string } }).tls.clientSubject, 'CN=bob');
    const bad = await curl(srv.port, 'srv.test', ca.cert, ['--cert', wrong.cert, '--key', wrong.key]);
    assert.equal(bad.code, 0, bad.stderr);
    assert.equal((JSON.parse(bad.stdout) as { tls: { clientSubject?: string } }).tls.clientSubject, undefined);
  });
});
