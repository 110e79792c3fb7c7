// Session 28 audit (audit28): a reload that changes who may connect (the client CA bundle,
// `client-auth`) kept the session ticket keys (one set kept across reloads so that resumption
// survives a certificate rotation), so a client whose certificate the new `ca-file` no longer
// accepts resumed its TLS session and was still `authorized`, with its certificate's subject given
// to the agents as `client_cert_subject`: a resumed handshake carries the verification of the
// original one, and TLS 1.3 hands out a new ticket on every resumption, so such a client stays
// in for as long as it comes back within the session timeout. Now a reload whose client
// verification changed makes new ticket keys: old sessions are not resumed.
//
// Session 29 (tls29): the connections already open at such a reload (HTTP/1.1 keep-alive, HTTP/2
// sessions) kept the verification of their handshake and were served, as authorized, for as long
// as the client kept them open. Now the reload re-checks each one and closes those whose client is
// not surely still accepted (idle at once, after the answer in flight, GOAWAY); a request still
// arriving on one is refused (421). A reload that leaves client verification alone leaves them be.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import http2 from 'node:http2';
import type { ServerResponse } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { notHungTurning, until } from '../../helpers/until.ts';
import { Pki } from '../../helpers/pki.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { h2Request } from '../../helpers/http.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';

const kdl = (caFile: string, upstream: string, clientAuth = true, route = 'main') => `
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "https" {
    address "127.0.0.1:0"
    protocol "https"
    tls { cert-file "site.crt"; key-file "site.key"; ca-file "${caFile}"; client-auth ${clientAuth ? '#true' : '#false'} }
  }
}
routes { route "${route}" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${upstream}" } }
`;

interface CaReloadFixture {
  pki: Pki;
  up: TestUpstream;
  gw: Gateway;
  serverCa: string;
  alice: { cert: string; key: string };
  /** answers of the upstream to `/hold` requests, kept until the test ends them */
  held: ServerResponse[];
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
    const fresh = await f.pki.ca('new-clients');
    // both CAs: a reload to it adds a CA and drops none
    await writeFile(f.pki.path('both-clients.crt'), (await readFile(old.cert, 'utf8')) + (await readFile(fresh.cert, 'utf8')));
    f.serverCa = await readFile(ca.cert, 'utf8');
    f.alice = { cert: await readFile(issued.cert, 'utf8'), key: await readFile(issued.key, 'utf8') };
    f.held = [];
    f.up = await startUpstream((req, res) => {
      if (req.url === '/hold') return void f.held.push(res);
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
      res.end('ok');
    });
    f.gw = await startGateway({ configText: kdl('old-clients.crt', f.up.address), baseDir: f.pki.dir, logLevel: 'silent' });
  });
  after(async () => {
    for (const res of f.held) res.destroy();
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


interface Answer {
  /** the status line, '' when the connection closed before a whole answer */
  status: string;
  /** the header block, lower-cased */
  head: string;
}

/** One raw HTTP/1.1 keep-alive connection over TLS: requests written by hand, answers read by Content-Length. */
class KeepAlive {
  private buf = '';
  private wake: () => void = () => undefined;
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(readonly socket: tls.TLSSocket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((r) =>
      socket.on('close', () => {
        this.isClosed = true;
        this.wake();
        r();
      }),
    );
  }

  static async open(f: CaReloadFixture, client: { cert?: string; key?: string }): Promise<KeepAlive> {
    const s = tls.connect({ host: '127.0.0.1', port: f.gw.address('https').port, servername: 'site.test', ca: f.serverCa, ...client, ALPNProtocols: ['http/1.1'] });
    const c = new KeepAlive(s);
    await notHungTurning('the TLS handshake', new Promise<void>((resolve, reject) => (s.once('secureConnect', () => resolve()), s.once('close', () => reject(new Error('closed during the handshake'))))));
    return c;
  }

  send(path: string): void {
    this.socket.write(`GET ${path} HTTP/1.1\r\nHost: site.test\r\n\r\n`);
  }

  /** The next whole answer on the connection. */
  async answer(): Promise<Answer> {
    return notHungTurning(
      'an answer or the close',
      new Promise<Answer>((resolve) => {
        const look = () => {
          const end = this.buf.indexOf('\r\n\r\n');
          if (end >= 0) {
            const head = this.buf.slice(0, end).toLowerCase();
            const length = Number(/\r\ncontent-length: *(\d+)/.exec(head)?.[1] ?? 0);
            if (this.buf.length >= end + 4 + length) {
              this.buf = this.buf.slice(end + 4 + length);
              return resolve({ status: head.split('\r\n')[0]!.toUpperCase().replace('HTTP/1.1', 'HTTP/1.1'), head });
            }
          }
          if (this.isClosed) resolve({ status: '', head: '' });
          else this.wake = look;
        };
        look();
      }),
    );
  }

  async get(path: string): Promise<Answer> {
    if (this.isClosed) return { status: '', head: '' };
    this.send(path);
    return this.answer();
  }
}

/** One HTTP/2 session over TLS. */
async function h2Session(f: CaReloadFixture, client: { cert?: string; key?: string }): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(`https://127.0.0.1:${f.gw.address('https').port}`, { servername: 'site.test', ca: f.serverCa, ...client });
  s.on('error', () => undefined);
  await notHungTurning('the HTTP/2 session', new Promise<void>((resolve, reject) => (s.once('connect', () => resolve()), s.once('close', () => reject(new Error('closed before connecting'))))));
  return s;
}

/** One GET on a session: its status, or the error's code when the stream could not be made or was refused. */
function h2Status(s: http2.ClientHttp2Session, path: string): Promise<number | string> {
  return notHungTurning(
    `GET ${path} over HTTP/2`,
    h2Request(s, { ':path': path, ':authority': 'site.test' }).then(
      (r) => r.status ?? `reset ${r.rstCode}`,
      (err: NodeJS.ErrnoException) => err.code ?? 'error', // the session could not make the stream
    ),
  );
}

/** Requests refused on a connection whose client verification a reload replaced. */
async function staleRefusals(f: CaReloadFixture): Promise<number> {
  return (await f.gw.metrics.clientErrors.get()).values.find((v) => v.labels.kind === 'stale_client_verification')?.value ?? 0;
}

const closedOf = (s: http2.ClientHttp2Session) => (s.closed || s.destroyed ? Promise.resolve() : new Promise<void>((r) => s.once('close', () => r())));

describe('connections open at a reload that changes client verification', () => {
  const f = caReloadFixture();
  const baseline = (clientAuth = true) => f.gw.reload(kdl('old-clients.crt', f.up.address, clientAuth));

  it('an idle HTTP/1.1 keep-alive connection of a dropped CA is closed, not served', async () => {
    await baseline();
    const c = await KeepAlive.open(f, f.alice);
    assert.equal((await c.get('/x')).status, 'HTTP/1.1 200 OK');
    await f.gw.reload(kdl('new-clients.crt', f.up.address));
    const seen = f.up.seen.length;
    const after = await c.get('/x');
    assert.notEqual(after.status, 'HTTP/1.1 200 OK', 'the connection verified under the old ca-file is still served');
    await notHungTurning('the close', c.closed);
    assert.equal(f.up.seen.length, seen, 'nothing reached the upstream');
  });

  it('a busy HTTP/1.1 connection gets its answer with Connection: close; a request after the reload is not forwarded', async () => {
    await baseline();
    const c = await KeepAlive.open(f, f.alice);
    const held = f.held.length;
    c.send('/hold');
    await until('the upstream holds the request', () => f.held.length > held);
    await f.gw.reload(kdl('new-clients.crt', f.up.address));
    // written after the reload, behind the answer in flight: node hands it to the gateway at once
    // (pipelining); it must be refused (421, queued behind the answer), never forwarded
    const refused = await staleRefusals(f);
    c.send('/late');
    await until('the late request is refused or forwarded', async () => (await staleRefusals(f)) > refused || f.up.seen.some((r) => r.url === '/late'));
    f.held[held]!.writeHead(200, { 'content-length': 4 }).end('held');
    const first = await c.answer();
    assert.equal(first.status, 'HTTP/1.1 200 OK', 'the answer in flight is finished');
    assert.match(first.head, /\r\nconnection: close/, 'and says the connection closes');
    const second = await c.answer();
    assert.notEqual(second.status, 'HTTP/1.1 200 OK', 'the request sent after the reload is not served');
    await notHungTurning('the close', c.closed);
    assert.equal(f.up.seen.filter((r) => r.url === '/late').length, 0, 'the late request never reached the upstream');
  });

  it('an HTTP/2 session of a dropped CA gets GOAWAY after its stream in flight, and no new stream is served', async () => {
    await baseline();
    const s = await h2Session(f, f.alice);
    assert.equal(await h2Status(s, '/x'), 200);
    const held = f.held.length;
    const inFlight = h2Status(s, '/hold');
    await until('the upstream holds the request', () => f.held.length > held);
    const goaway = new Promise<void>((r) => s.once('goaway', () => r()));
    await f.gw.reload(kdl('new-clients.crt', f.up.address));
    await notHungTurning('the GOAWAY', goaway);
    const seen = f.up.seen.length;
    assert.notEqual(await h2Status(s, '/x'), 200, 'a new stream on the old session is not served');
    f.held[held]!.writeHead(200, { 'content-length': 4 }).end('held');
    assert.equal(await inFlight, 200, 'the stream in flight is finished');
    await notHungTurning('the session close', closedOf(s));
    assert.equal(f.up.seen.length, seen, 'nothing reached the upstream after the reload');
  });

  it('a reload that leaves client verification alone leaves the connections open and served', async () => {
    await baseline();
    const c = await KeepAlive.open(f, f.alice);
    const s = await h2Session(f, f.alice);
    assert.equal((await c.get('/x')).status, 'HTTP/1.1 200 OK');
    assert.equal(await h2Status(s, '/x'), 200);
    // the routes change, the tls block does not
    await f.gw.reload(kdl('old-clients.crt', f.up.address, true, 'renamed'));
    assert.equal((await c.get('/x')).status, 'HTTP/1.1 200 OK', 'the same HTTP/1.1 connection is served');
    assert.equal(await h2Status(s, '/x'), 200, 'the same HTTP/2 session is served');
    assert.equal(c.isClosed || s.closed, false);
    c.socket.destroy();
    s.destroy();
  });

  it('a reload that adds a CA keeps the connections of the CAs still there (re-verified)', async () => {
    await baseline();
    const c = await KeepAlive.open(f, f.alice);
    const s = await h2Session(f, f.alice);
    assert.equal((await c.get('/x')).status, 'HTTP/1.1 200 OK');
    await f.gw.reload(kdl('both-clients.crt', f.up.address));
    assert.equal((await c.get('/x')).status, 'HTTP/1.1 200 OK', 'the same HTTP/1.1 connection is served');
    assert.equal(await h2Status(s, '/x'), 200, 'the same HTTP/2 session is served');
    assert.equal(c.isClosed || s.closed, false);
    c.socket.destroy();
    s.destroy();
  });

  it('turning client-auth on closes the anonymous connections and keeps the verified ones', async () => {
    await baseline(false);
    const anonymous = await KeepAlive.open(f, {});
    const alice = await KeepAlive.open(f, f.alice);
    const anonymous2 = await h2Session(f, {});
    assert.equal((await anonymous.get('/x')).status, 'HTTP/1.1 200 OK', 'anonymous clients are served while client-auth is off');
    assert.equal(await h2Status(anonymous2, '/x'), 200);
    assert.equal((await alice.get('/x')).status, 'HTTP/1.1 200 OK');
    await f.gw.reload(kdl('old-clients.crt', f.up.address, true));
    const seen = f.up.seen.length;
    assert.notEqual((await anonymous.get('/x')).status, 'HTTP/1.1 200 OK', 'the anonymous HTTP/1.1 connection is not served');
    assert.notEqual(await h2Status(anonymous2, '/x'), 200, 'the anonymous HTTP/2 session is not served');
    await notHungTurning('the closes', Promise.all([anonymous.closed, closedOf(anonymous2)]));
    assert.equal(f.up.seen.length, seen, 'nothing of theirs reached the upstream');
    assert.equal((await alice.get('/x')).status, 'HTTP/1.1 200 OK', "alice's connection, verified by a CA still there, is served");
    alice.socket.destroy();
  });
});
