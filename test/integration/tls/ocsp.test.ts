// OCSP stapling against a real `openssl ocsp` responder started on a free loopback port with
// a test CA: request bytes identical to openssl's, staple present, delegated signer, revoked
// certificate not stapled, responder down -> handshake still succeeds without a staple.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../../helpers/ports.ts';
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import pino from 'pino';
import { Pki, openssl, type Issued, type TestCa } from '../../helpers/pki.ts';
import { requireCli, sClient, startTlsServer, eventually, type TestServer } from './harness.ts';
import { buildCertId, buildOcspRequest, parseOcspResponse, checkOcspResponse, fetchOcsp, OcspStapler } from '../../../plugins/tls/ocsp.ts';
import { UNTIL_MS } from '../../helpers/until.ts';


interface Responder {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** `openssl ocsp` as a responder for `ca`, signing with `signer` (the CA itself by default). */
async function startResponder(ca: TestCa, port: number, signer: { cert: string; key: string } = ca): Promise<Responder> {
  // openssl 3.0's -port takes only a number (it cannot bind to loopback only); we only ever
  // connect to it through 127.0.0.1
  const child: ChildProcess = spawn('openssl', ['ocsp', '-index', ca.indexFile, '-port', String(port), '-rsigner', signer.cert, '-rkey', signer.key, '-CA', ca.cert, '-nmin', '10', '-ignore_err'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`openssl ocsp exited: ${stderr}`);
      return (await fetch(url).then(() => true).catch(() => false)) || undefined;
    },
    UNTIL_MS,
    'the OCSP responder to listen',
  );
  return {
    port,
    url,
    stop: () =>
      new Promise((r) => {
        if (child.exitCode !== null || child.signalCode !== null) return r();
        child.once('exit', () => r());
        child.kill('SIGTERM');
      }),
  };
}

describe('OCSP stapling with an openssl ocsp responder', () => {
  let pki: Pki;
  let ca: TestCa;
  let responder: Responder;
  let port: number;
  let leaf: Issued;
  let revoked: Issued;
  let srv: TestServer;
  const servers: TestServer[] = [];

  before(async () => {
    requireCli('openssl', 'apt-get install -y openssl');
    pki = await Pki.create();
    ca = await pki.ca('ca');
    port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    leaf = await ca.issue('leaf', { cn: 'ocsp.test', dns: ['ocsp.test'], ocspUrl: url });
    revoked = await ca.issue('revoked', { cn: 'revoked.test', dns: ['revoked.test'], ocspUrl: url });
    await ca.revoke(revoked.serialHex);
    responder = await startResponder(ca, port);
    srv = await startTlsServer({ 'cert-file': leaf.chain, 'key-file': leaf.key, sni: [{ 'cert-file': revoked.chain, 'key-file': revoked.key }] }, pki.dir);
    servers.push(srv);
    await srv.mgr.ocspSettled();
  });

  after(async () => {
    for (const s of servers) await s.close();
    await responder?.stop();
    await pki?.close();
  });

  it('builds the same DER OCSPRequest as `openssl ocsp -no_nonce -reqout`', async () => {
    const reqFile = pki.path('req.der');
    await openssl(['ocsp', '-issuer', ca.cert, '-cert', leaf.cert, '-no_nonce', '-reqout', reqFile]);
    const expected = await readFile(reqFile);
    const mine = buildOcspRequest(buildCertId(new X509Certificate(await readFile(leaf.cert)), new X509Certificate(await readFile(ca.cert))));
    assert.deepEqual(mine, expected);
  });

  it('parses and verifies the responder answer (good / revoked)', async () => {
    const issuer = new X509Certificate(await readFile(ca.cert));
    for (const [c, status] of [[leaf, 'good'], [revoked, 'revoked']] as const) {
      const certId = buildCertId(new X509Certificate(await readFile(c.cert)), issuer);
      const der = await fetchOcsp(responder.url, buildOcspRequest(certId), 5000);
      const parsed = parseOcspResponse(der, certId);
      assert.equal(parsed.certStatus, status);
      assert.ok(parsed.nextUpdate && parsed.thisUpdate && parsed.nextUpdate > parsed.thisUpdate);
      assert.equal(checkOcspResponse(parsed, issuer, Date.now()), status === 'good' ? undefined : 'certificate status is revoked');
      // the same response judged after nextUpdate is refused
      assert.match(checkOcspResponse(parsed, issuer, parsed.nextUpdate!.getTime() + 1)!, /expired/);
      // and a response that does not cover the certificate is refused
      const otherId = buildCertId(new X509Certificate(await readFile(c === leaf ? revoked.cert : leaf.cert)), issuer);
      assert.throws(() => parseOcspResponse(der, otherId), /does not cover/);
    }
  });

  it('staples a good response: s_client -status sees it', async () => {
    const r = await sClient(srv.port, { servername: 'ocsp.test', status: true });
    assert.match(r.stdout, /OCSP Response Status: successful/, r.stdout);
    assert.match(r.stdout, /Cert Status: good/);
  });

  it('does not staple a revoked certificate (and logs why)', async () => {
    const r = await sClient(srv.port, { servername: 'revoked.test', status: true });
    assert.match(r.stdout, /OCSP response: no response sent/);
    assert.ok(srv.logs.some((l) => /OCSP fetch failed/.test(l.msg) && /revoked/.test(String(l.err))), JSON.stringify(srv.logs));
  });

  it('ocsp-stapling #false sends no staple', async () => {
    const off = await startTlsServer({ 'cert-file': leaf.chain, 'key-file': leaf.key, 'ocsp-stapling': false }, pki.dir);
    servers.push(off);
    const r = await sClient(off.port, { servername: 'ocsp.test', status: true });
    assert.match(r.stdout, /OCSP response: no response sent/);
  });

  it('a delegated OCSP signer issued by the CA is accepted', async () => {
    const port2 = await freePort();
    const url2 = `http://127.0.0.1:${port2}`;
    const signer = await ca.issue('ocsp-signer', { cn: 'OCSP signer', usage: 'ocsp' });
    const delegated = await ca.issue('delegated', { cn: 'delegated.test', dns: ['delegated.test'], ocspUrl: url2 });
    const r2 = await startResponder(ca, port2, signer);
    try {
      const s = await startTlsServer({ 'cert-file': delegated.chain, 'key-file': delegated.key }, pki.dir);
      servers.push(s);
      await s.mgr.ocspSettled();
      const r = await sClient(s.port, { servername: 'delegated.test', status: true });
      assert.match(r.stdout, /Cert Status: good/, r.stdout);
    } finally {
      await r2.stop();
    }
  });

  it('keeps serving (with the cached staple) when the responder goes down', async () => {
    await responder.stop();
    const r = await sClient(srv.port, { servername: 'ocsp.test', status: true });
    assert.match(r.stdout, /Cert Status: good/);
  });

  it('serves without a staple when the responder is down from the start', async () => {
    const down = await startTlsServer({ 'cert-file': leaf.chain, 'key-file': leaf.key }, pki.dir);
    servers.push(down);
    await down.mgr.ocspSettled();
    const r = await sClient(down.port, { servername: 'ocsp.test', status: true, args: ['-ign_eof'], input: 'GET / HTTP/1.0\r\nHost: ocsp.test\r\n\r\n' });
    assert.match(r.stdout, /OCSP response: no response sent/);
    assert.match(r.stdout, /HTTP\/1\.[01] 200/);
    assert.match(await down.metrics.render(), /sentinel_tls_ocsp_fetches_total\{result="failure"\} [1-9]/);
  });

  it('OcspStapler refetches before nextUpdate with an injected clock', async () => {
    // a stapler whose clock jumps past nextUpdate drops the staple instead of serving it stale
    let now = Date.now();
    const issuer = new X509Certificate(await readFile(ca.cert));
    const leafX = new X509Certificate(await readFile(leaf.cert));
    const certId = buildCertId(leafX, issuer);
    const r3 = await startResponder(ca, responder.port);
    try {
      const der = await fetchOcsp(r3.url, buildOcspRequest(certId), 5000);
      const next = parseOcspResponse(der, certId).nextUpdate!.getTime();
      const stapler = new OcspStapler({ log: pino({ level: 'silent' }), fetch: async () => der, now: () => now });
      stapler.track([{ label: 'leaf', leaf: leafX, issuer, url: r3.url }]);
      await stapler.settled();
      assert.deepEqual(stapler.staple(leafX.raw), der);
      now = next + 1;
      assert.equal(stapler.staple(leafX.raw), null);
      stapler.close();
    } finally {
      await r3.stop();
    }
  });
});
