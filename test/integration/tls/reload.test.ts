// Certificate hot reload: explicit reload (what SIGHUP calls), file watching, sni-certs folders
// (watch / interval), config reload, broken certificates kept out — while an established
// keep-alive connection (HTTP/1.1 and HTTP/2) keeps working on the certificate it negotiated.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import https from 'node:https';
import http2 from 'node:http2';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { Pki, type TestCa } from '../../helpers/pki.ts';
import { curl, eventually, sClient, servedCn, startTlsServer, type TestServer } from './harness.ts';
import { UNTIL_MS } from '../../helpers/until.ts';
import { h2Request } from '../../helpers/http.ts';

/** Copies a certificate pair over the live files, replacing them by rename like cert-manager does. */
async function install(src: { cert: string; key: string }, dst: { cert: string; key: string }): Promise<void> {
  await copyFile(src.cert, `${dst.cert}.tmp`);
  await copyFile(src.key, `${dst.key}.tmp`);
  await rename(`${dst.key}.tmp`, dst.key);
  await rename(`${dst.cert}.tmp`, dst.cert);
}

const fingerprintOf = async (file: string) => new X509Certificate(await readFile(file)).fingerprint256;

function get(agent: https.Agent, port: number, ca: Buffer): Promise<{ body: string; socket: TLSSocket; peerFp: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, servername: 'live.test', ca, agent, path: '/' }, (res) => {
      const socket = res.socket as TLSSocket; // released to the agent (null here) after 'end'
      const peerFp = socket.getPeerCertificate()?.fingerprint256;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ body, socket, peerFp }));
    });
    req.on('error', reject);
  });
}

/** A GET / on the session: its status (undefined when the stream was reset). */
const h2get = async (session: http2.ClientHttp2Session): Promise<number | undefined> => (await h2Request(session, { ':path': '/' })).status;

describe('certificate hot reload', () => {
  let pki: Pki;
  let ca: TestCa;
  let caPem: Buffer;
  let srv: TestServer;
  const live = { cert: '', key: '' };

  before(async () => {
    pki = await Pki.create();
    ca = await pki.ca('ca');
    caPem = await readFile(ca.cert);
    const v1 = await ca.issue('v1', { cn: 'live v1', dns: ['live.test'] });
    live.cert = pki.path('live.crt');
    live.key = pki.path('live.key');
    await install(v1, live);
    srv = await startTlsServer({ 'cert-file': 'live.crt', 'key-file': 'live.key' }, pki.dir);
  });
  after(async () => {
    await srv?.close();
    await pki?.close();
  });

  it('reload() (the SIGHUP path) rotates the certificate without dropping keep-alive connections', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const session = http2.connect(`https://127.0.0.1:${srv.port}`, { ca: caPem, servername: 'live.test' });
    try {
      const before = await get(agent, srv.port, caPem);
      const oldFp = before.peerFp;
      assert.ok(oldFp);
      assert.equal(await h2get(session), 200);

      const sess = pki.path('sess.pem');
      await sClient(srv.port, { servername: 'live.test', args: ['-tls1_2', '-sess_out', sess] });

      const v2 = await ca.issue('v2', { cn: 'live v2', dns: ['live.test'] });
      await install(v2, live);
      await srv.mgr.reload();

      // ticket keys survive a certificate reload: a session from before resumes
      assert.match((await sClient(srv.port, { servername: 'live.test', args: ['-tls1_2', '-sess_in', sess] })).stdout, /^Reused, /m);

      // new handshakes get v2
      const r = await sClient(srv.port, { servername: 'live.test' });
      assert.equal(servedCn(r.stdout), 'live v2');
      // the established HTTP/1.1 connection is the same socket, still on v1, and still served
      const again = await get(agent, srv.port, caPem);
      assert.equal(again.socket, before.socket);
      assert.equal(again.peerFp, oldFp);
      assert.match(again.body, /"httpVersion":"1.1"/);
      // the HTTP/2 session too
      assert.equal(await h2get(session), 200);
      assert.ok(srv.logs.some((l) => l.msg === 'tls: certificates reloaded'));
    } finally {
      agent.destroy();
      session.close();
    }
  });

  it('a broken new certificate keeps the old one and logs why', async () => {
    const served = await fingerprintOf(live.cert);
    const v3 = await ca.issue('v3', { cn: 'live v3', dns: ['live.test'] });
    await copyFile(v3.cert, live.cert); // the key still belongs to v2: mismatch
    await srv.mgr.reload();
    const r = await sClient(srv.port, { servername: 'live.test' });
    assert.equal(servedCn(r.stdout), 'live v2');
    const err = srv.logs.find((l) => l.msg.startsWith('tls: reload failed'));
    assert.ok(err, 'reload failure is logged');
    assert.match(String(err.err), /does not match the certificate/);
    assert.match(await srv.metrics.render(), /sentinel_tls_certificate_reloads_total\{listener="https",result="failure"\} 1/);

    await writeFile(live.cert, 'not a certificate');
    await srv.mgr.reload();
    assert.equal(servedCn((await sClient(srv.port, { servername: 'live.test' })).stdout), 'live v2');
    assert.notEqual(served, await fingerprintOf(v3.cert));

    // once the matching key arrives, the next reload applies v3
    await install(v3, live);
    await srv.mgr.reload();
    assert.equal(servedCn((await sClient(srv.port, { servername: 'live.test' })).stdout), 'live v3');
  });

  it('reload(config) applies a new tls block: new SNI entry and client-auth on', async () => {
    const extra = await ca.issue('extra', { cn: 'extra', dns: ['extra.test'] });
    const clients = await pki.ca('clients');
    const alice = await clients.issue('alice', { cn: 'alice', usage: 'client' });
    await srv.mgr.reload({ 'cert-file': 'live.crt', 'key-file': 'live.key', sni: [{ 'cert-file': extra.cert, 'key-file': extra.key }], 'ca-file': clients.cert, 'client-auth': true });
    assert.equal(servedCn((await sClient(srv.port, { servername: 'extra.test' })).stdout), 'extra');
    const anon = await curl(srv.port, 'extra.test', ca.cert);
    assert.notEqual(anon.code, 0, 'client-auth now rejects anonymous clients');
    const ok = await curl(srv.port, 'extra.test', ca.cert, ['--cert', alice.cert, '--key', alice.key]);
    assert.equal(ok.code, 0, ok.stderr);
    // and back: the old config again
    await srv.mgr.reload({ 'cert-file': 'live.crt', 'key-file': 'live.key' });
    assert.equal((await curl(srv.port, 'live.test', ca.cert)).code, 0);
    assert.equal(servedCn((await sClient(srv.port, { servername: 'extra.test' })).stdout), 'live v3');
  });
});

describe('certificate file watching', () => {
  let pki: Pki;
  let ca: TestCa;
  let srv: TestServer;

  before(async () => {
    pki = await Pki.create();
    ca = await pki.ca('ca');
    const v1 = await ca.issue('w1', { cn: 'watched v1', dns: ['watched.test'] });
    await install(v1, { cert: pki.path('watched.crt'), key: pki.path('watched.key') });
    await mkdir(pki.path('watchdir'));
    await mkdir(pki.path('polldir'));
    srv = await startTlsServer(
      {
        'cert-file': 'watched.crt',
        'key-file': 'watched.key',
        'sni-certs': [
          { 'cert-folder': 'watchdir', 'reload-mode': 'watch' },
          { 'cert-folder': 'polldir', 'reload-mode': 'interval', 'reload-interval': '200ms' },
        ],
      },
      pki.dir,
      { watchFiles: true },
    );
  });
  after(async () => {
    await srv?.close();
    await pki?.close();
  });

  const cnFor = async (name: string) => servedCn((await sClient(srv.port, { servername: name })).stdout);

  it('a replaced cert-file/key-file pair is picked up without a reload call', async () => {
    const v2 = await ca.issue('w2', { cn: 'watched v2', dns: ['watched.test'] });
    await install(v2, { cert: pki.path('watched.crt'), key: pki.path('watched.key') });
    await eventually(async () => ((await cnFor('watched.test')) === 'watched v2') || undefined, UNTIL_MS, 'the watched certificate to be served');
  });

  it('sni-certs reload-mode "watch": a certificate dropped into the folder is served', async () => {
    assert.equal(await cnFor('dropped.test'), 'watched v2');
    const d = await ca.issue('dropped', { cn: 'dropped', dns: ['dropped.test'] });
    await copyFile(d.key, pki.path('watchdir/dropped.key'));
    await copyFile(d.cert, pki.path('watchdir/dropped.crt'));
    await eventually(async () => ((await cnFor('dropped.test')) === 'dropped') || undefined, UNTIL_MS, 'the dropped certificate to be served');
  });

  it('sni-certs reload-mode "interval": a certificate added to the folder is served', async () => {
    const p = await ca.issue('polled', { cn: 'polled', dns: ['polled.test'] });
    await copyFile(p.key, pki.path('polldir/polled-key.pem'));
    await copyFile(p.cert, pki.path('polldir/polled.pem'));
    await eventually(async () => ((await cnFor('polled.test')) === 'polled') || undefined, UNTIL_MS, 'the polled certificate to be served');
  });
});
