// Session 28 audit (audit28): a reload that changes who may connect (the client CA bundle,
// `client-auth`) kept the session ticket keys (one set kept across reloads so that resumption
// survives a certificate rotation), so a client whose certificate the new `ca-file` no longer
// accepts resumed its TLS session and was still `authorized`, with its certificate's subject given
// to the agents as `client_cert_subject`: a resumed handshake carries the verification of the
// original one, and TLS 1.3 hands out a new ticket on every resumption, so such a client stays
// in for as long as it comes back within the session timeout. Now a reload whose client
// verification changed makes new ticket keys: old sessions are not resumed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { Pki } from '../../helpers/pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';

const kdl = (caFile: string, upstream: string) => `
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "https" {
    address "127.0.0.1:0"
    protocol "https"
    tls { cert-file "site.crt"; key-file "site.key"; ca-file "${caFile}"; client-auth #true }
  }
}
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${upstream}" } }
`;

interface CaReloadFixture {
  pki: Pki;
  up: TestUpstream;
  gw: Gateway;
  serverCa: string;
  alice: { cert: string; key: string };
}

/**
 * Per describe: a site CA and its server certificate, alice's client certificate from
 * `old-clients` (a `new-clients` CA made beside it), an upstream, and a gateway accepting
 * `old-clients`. Fields are set in before().
 */
function caReloadFixture(): CaReloadFixture {
  const f = {} as CaReloadFixture;
  before(async () => {
    f.pki = await Pki.create();
    const ca = await f.pki.ca('ca');
    await ca.issue('site', { cn: 'site', dns: ['site.test'] });
    const old = await f.pki.ca('old-clients');
    const issued = await old.issue('alice', { cn: 'alice', usage: 'client' });
    await f.pki.ca('new-clients');
    f.serverCa = await readFile(ca.cert, 'utf8');
    f.alice = { cert: await readFile(issued.cert, 'utf8'), key: await readFile(issued.key, 'utf8') };
    f.up = await startUpstream();
    f.gw = await startGateway({ configText: kdl('old-clients.crt', f.up.address), baseDir: f.pki.dir, logLevel: 'silent' });
  });
  after(async () => {
    await f.gw?.close();
    await f.up?.close();
    await f.pki?.close();
  });
  return f;
}

interface Attempt {
  /** the gateway's answer's status line, or undefined when the handshake or the connection failed */
  status: string | undefined;
  resumed: boolean;
  /** the last session ticket the server sent */
  session: Buffer | undefined;
}

describe('a client CA removed by a reload', () => {
  const f = caReloadFixture();

  /** One GET over a new TLS connection as alice, resuming `session` when given. */
  function attempt(session?: Buffer): Promise<Attempt> {
    return new Promise((resolve) => {
      let latest: Buffer | undefined;
      let got = '';
      let done = false;
      let resumed = false;
      const s = tls.connect({ host: '127.0.0.1', port: f.gw.address('https').port, servername: 'site.test', ca: f.serverCa, ...f.alice, ALPNProtocols: ['http/1.1'], ...(session ? { session } : {}) });
      const finish = () => {
        if (done) return;
        done = true;
        s.destroy();
        const line = got.split('\r\n')[0];
        resolve({ status: line?.startsWith('HTTP/1.1') ? line : undefined, resumed, session: latest });
      };
      s.on('session', (t: Buffer) => (latest = t));
      s.on('secureConnect', () => {
        resumed = s.isSessionReused();
        s.write('GET /x HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n');
      });
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('error', finish);
      s.on('close', finish);
    });
  }

  it('a session from before the reload is not resumed past the new ca-file', async () => {
    const first = await attempt();
    assert.equal(first.status, 'HTTP/1.1 200 OK', 'alice is accepted by the old CA');
    assert.ok(first.session, 'the server sent a session ticket');
    const again = await attempt(first.session);
    assert.equal(again.resumed, true, 'resumption works while nothing changed');

    await f.gw.reload(kdl('new-clients.crt', f.up.address));
    const fresh = await attempt();
    assert.equal(fresh.status, undefined, 'a full handshake with alice is refused by the new CA');
    const seen = f.up.seen.length;
    const resumed = await attempt(again.session ?? first.session);
    assert.equal(resumed.status, undefined, `alice's old session must not get her in (resumed: ${resumed.resumed})`);
    assert.equal(f.up.seen.length, seen, 'nothing reached the upstream');
  });
});

describe('a connection made before a reload that dropped its client CA', () => {
  const f = caReloadFixture();

  // Open (docs/security.md, "Session 28 audit"): connections outlive a reload with the verification
  // of their handshake. Kept as a todo that turns green with a fix.
  it('is not served past the reload (HTTP/1.1 keep-alive)', { todo: 'open since the session 28 audit: established connections keep their old client verification' }, async () => {
    const s = tls.connect({ host: '127.0.0.1', port: f.gw.address('https').port, servername: 'site.test', ca: f.serverCa, ...f.alice, ALPNProtocols: ['http/1.1'] });
    let got = '';
    s.on('data', (d: Buffer) => (got += d.toString('latin1')));
    s.on('error', () => undefined);
    const closed = new Promise<void>((r) => s.on('close', () => r()));
    await new Promise<void>((r) => s.on('secureConnect', () => r()));
    const answer = async (): Promise<string> => {
      const from = got.length;
      s.write('GET /x HTTP/1.1\r\nHost: site.test\r\n\r\n');
      for (let i = 0; i < 500 && !/\r\n\r\n/.test(got.slice(from)) && !s.destroyed; i++) await new Promise((r) => setTimeout(r, 10));
      return got.slice(from).split('\r\n')[0] ?? '';
    };
    assert.equal(await answer(), 'HTTP/1.1 200 OK');
    await f.gw.reload(kdl('new-clients.crt', f.up.address));
    const seen = f.up.seen.length;
    const after = s.destroyed ? '' : await answer();
    assert.notEqual(after, 'HTTP/1.1 200 OK', 'the connection verified under the old ca-file is still served');
    assert.equal(f.up.seen.length, seen, 'nothing reached the upstream');
    s.destroy();
    await closed;
  });
});
