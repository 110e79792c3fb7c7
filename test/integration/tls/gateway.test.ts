// TLS through the real gateway (startGateway from KDL): an https listener proxying to a real
// upstream over HTTP/2 and HTTP/1.1 with identical results, SNI from KDL, certificate rotation
// on SIGHUP while a keep-alive connection stays open, config reload, startup errors, metrics.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, rename } from 'node:fs/promises';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { createHash } from 'node:crypto';
import { Pki, type TestCa } from '../../helpers/pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { curl, eventually, requireCli, sClient, servedCn } from './harness.ts';

const kdl = (extraTls = '') => `
system { graceful-shutdown-timeout-secs 2 }
listeners {
  listener "https" {
    address "127.0.0.1:0"
    protocol "https"
    max-concurrent-streams 32
    tls {
      cert-file "site.crt"
      key-file "site.key"
      ca-file "clients.crt"
      sni { hostnames "api.test"; cert-file "api.crt"; key-file "api.key" }
      ${extraTls}
    }
  }
}
routes {
  route "metrics" { priority "high"; matches { path "/metrics" }; builtin-handler "metrics" }
  route "main" { matches { path-prefix "/" }; upstream "backend" }
}
upstreams { upstream "backend" { target "UPSTREAM" } }
`;

describe('gateway https listener', () => {
  let pki: Pki;
  let ca: TestCa;
  let up: TestUpstream;
  let gw: Gateway;
  let port: number;
  let config: string;

  async function install(name: string, to: string) {
    await copyFile(pki.path(`${name}.key`), pki.path(`${to}.key.tmp`));
    await copyFile(pki.path(`${name}.crt`), pki.path(`${to}.crt.tmp`));
    await rename(pki.path(`${to}.key.tmp`), pki.path(`${to}.key`));
    await rename(pki.path(`${to}.crt.tmp`), pki.path(`${to}.crt`));
  }

  before(async () => {
    requireCli('openssl', 'apt-get install -y openssl');
    requireCli('curl', 'apt-get install -y curl');
    pki = await Pki.create();
    ca = await pki.ca('ca');
    const clients = await pki.ca('clients');
    await clients.issue('alice', { cn: 'alice', usage: 'client' });
    await ca.issue('site-v1', { cn: 'site v1', dns: ['site.test'] });
    await ca.issue('api', { cn: 'api', dns: ['api.test'] });
    await install('site-v1', 'site');
    up = await startUpstream((req, res, body) => {
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.alloc(1 << 20, 120));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url, proto: req.headers['x-forwarded-proto'], sha: createHash('sha256').update(body).digest('hex') }));
    });
    config = kdl().replace('UPSTREAM', up.address);
    gw = await startGateway({ configText: config, baseDir: pki.dir, logLevel: 'silent', handleSignals: true });
    port = gw.address('https').port;
  });

  after(async () => {
    await gw?.close();
    await up?.close();
    await pki?.close();
  });

  it('proxies identically over HTTP/2 and HTTP/1.1 (ALPN), with X-Forwarded-Proto https', async () => {
    const body = 'x'.repeat(100_000);
    const results = [];
    for (const v of ['--http2', '--http1.1']) {
      const r = await curl(port, 'api.test', ca.cert, [v, '-X', 'POST', '--data-binary', body, '-w', '\n%{http_version}'], '/echo?a=1');
      assert.equal(r.code, 0, r.stderr);
      const [json, version] = r.stdout.split('\n');
      assert.equal(version, v === '--http2' ? '2' : '1.1');
      results.push(JSON.parse(json!));
    }
    assert.deepEqual(results[0], results[1]);
    assert.deepEqual(results[0], { method: 'POST', url: '/echo?a=1', proto: 'https', sha: createHash('sha256').update('x'.repeat(100_000)).digest('hex') });
  });

  it('streams a 1 MiB response over both protocols', async () => {
    for (const v of ['--http2', '--http1.1']) {
      const r = await curl(port, 'site.test', ca.cert, [v, '-o', '/dev/null', '-w', '%{size_download} %{http_code}'], '/big');
      assert.equal(r.stdout, `${1 << 20} 200`, r.stderr);
    }
  });

  it('SNI and the default certificate come from the KDL tls block', async () => {
    assert.equal(servedCn((await sClient(port, { servername: 'api.test' })).stdout), 'api');
    assert.equal(servedCn((await sClient(port, { noSni: true })).stdout), 'site v1');
  });

  it('SIGHUP rotates the certificate; an open keep-alive connection keeps working', async () => {
    const caPem = await readFile(ca.cert);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const get = () =>
      new Promise<{ status: number; socket: TLSSocket; cn: string }>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, servername: 'site.test', ca: caPem, agent, path: '/ping' }, (res) => {
            const socket = res.socket as TLSSocket;
            const cn = String(socket.getPeerCertificate().subject?.CN);
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode!, socket, cn }));
          })
          .on('error', reject);
      });
    try {
      const first = await get();
      assert.equal(first.cn, 'site v1');
      await ca.issue('site-v2', { cn: 'site v2', dns: ['site.test'] });
      await install('site-v2', 'site');
      process.kill(process.pid, 'SIGHUP');
      await eventually(async () => (servedCn((await sClient(port, { servername: 'site.test' })).stdout) === 'site v2') || undefined, 10_000, 'the rotated certificate after SIGHUP');
      const second = await get();
      assert.equal(second.status, 200);
      assert.equal(second.socket, first.socket, 'same keep-alive connection');
      assert.equal(second.cn, 'site v1', 'the established connection keeps its certificate');
    } finally {
      agent.destroy();
    }
  });

  it('a config reload applies a new tls block (client-auth on)', async () => {
    await gw.reload(kdl('client-auth #true').replace('UPSTREAM', up.address));
    const anon = await curl(port, 'api.test', ca.cert, ['--http2'], '/x');
    assert.notEqual(anon.code, 0);
    const alice = await curl(port, 'api.test', ca.cert, ['--http2', '--cert', pki.path('alice.crt'), '--key', pki.path('alice.key')], '/x');
    assert.equal(alice.code, 0, alice.stderr);
    await gw.reload(config);
    const back = await curl(port, 'api.test', ca.cert, ['--http2', '-o', '/dev/null', '-w', '%{http_version}'], '/x');
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout, '2', 'ALPN still negotiates h2 after reloads');
  });

  it('TLS metrics are on the gateway /metrics', async () => {
    const r = await curl(port, 'site.test', ca.cert, [], '/metrics');
    assert.match(r.stdout, /sentinel_tls_handshake_duration_seconds_count\{version="TLSv1.3"\} [1-9]/);
    assert.match(r.stdout, /sentinel_tls_certificate_expiry_seconds\{listener="https",cert="[^"]*site.crt",subject="CN=site v2"\} \d+/);
    assert.match(r.stdout, /sentinel_tls_handshake_failures_total\{reason="client_cert_missing"\} [1-9]/);
  });
});

describe('gateway startup with a broken tls block', () => {
  let pki: Pki;
  before(async () => {
    pki = await Pki.create();
    const ca = await pki.ca('ca');
    await ca.issue('a', { cn: 'a', dns: ['a.test'] });
    await ca.issue('b', { cn: 'b', dns: ['b.test'] });
  });
  after(async () => pki?.close());

  const listener = (tls: string) => `system { }
listeners { listener "https" { address "127.0.0.1:0"; protocol "https"; tls { ${tls} } } }
routes { route "h" { matches { path-prefix "/" }; builtin-handler "health" } }`;

  for (const [what, tls, message] of [
    ['missing file', 'cert-file "nope.crt"; key-file "a.key"', /cert-file ".*nope\.crt": file not found/],
    ['key of another certificate', 'cert-file "a.crt"; key-file "b.key"', /key-file ".*b\.key" does not match the certificate in cert-file ".*a\.crt"/],
    ['unknown key inside tls', 'cert-file "a.crt"; key-file "a.key"; cert-flie "x"', /cert-flie/],
  ] as const) {
    it(`fails to start: ${what}`, async () => {
      await assert.rejects(startGateway({ configText: listener(tls), baseDir: pki.dir, logLevel: 'silent' }), message);
    });
  }
});
