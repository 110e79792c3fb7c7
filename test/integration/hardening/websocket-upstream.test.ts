// WebSocket smuggling through an upstream's 101 (session 13 audit). The gateway opened the tunnel
// on any 101 the upstream sent: one without a valid Sec-WebSocket-Accept for the client's key, or
// switching to another protocol (`Upgrade: h2c`). An upstream that answers 101 outside a real
// handshake (an endpoint that reflects a status code, a misbehaving application) then keeps
// speaking HTTP on that connection, and every byte the client sends next is a raw request to the
// upstream that no route, filter, agent or WAF ever sees (`GET /admin` through a route that only
// matches `/ws`). Now the 101 must switch to `websocket` and carry the accept value RFC 6455 §4.2.2
// derives from the client's key; anything else is a 502 and the connection is closed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { startCannedUpstream } from '../../helpers/upstream.ts';
import { turningTimeout } from '../../helpers/until.ts';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const ACCEPT = createHash('sha1').update(`${KEY}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');

/** The upstream's 101 per request path. */
const ANSWERS: Record<string, string> = {
  '/ws/bad-accept': `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n`,
  '/ws/no-accept': `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`,
  '/ws/h2c': `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nSec-WebSocket-Accept: ${ACCEPT}\r\n\r\n`,
  '/ws/good': `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${ACCEPT}\r\nAlt-Svc: h3=":9"\r\n\r\n`,
  '/ws/refused': `HTTP/1.1 401 Unauthorized\r\nAlt-Svc: h2="evil.example:443"\r\nContent-Length: 0\r\n\r\n`,
};

let upstream: Awaited<ReturnType<typeof startCannedUpstream>>;
let gw: Gateway;
/** request lines the upstream read, in order */
const seen: string[] = [];

before(async () => {
  // After its 101 this upstream keeps speaking HTTP: any request line it reads is answered.
  upstream = await startCannedUpstream((head, index) => {
    const line = head.split('\r\n')[0]!;
    seen.push(line);
    return index === 0 ? ANSWERS[line.split(' ')[1]!] : 'HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nINTERNAL-ONLY';
  });
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "ws" { matches { path-prefix "/ws" }; upstream "backend"; websocket #true } }
upstreams { upstream "backend" { target "127.0.0.1:${upstream.port}"; circuit-breaker { failure-threshold 1000 } } }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await upstream.close();
});

/** Upgrades, and once any answer arrives sends a raw `GET /admin` on the same connection. */
function upgradeThenSmuggle(path: string, handshake = `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n`): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(gw.address('http').port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n${handshake}\r\n`));
    let text = '';
    let sent = false;
    const finish = (closed: boolean) => {
      cancel();
      s.destroy();
      resolve({ text, closed });
    };
    // the window for a close (or for a smuggled answer) counts event-loop time: a loaded machine
    // stretches it rather than ending it before the gateway's answer
    const cancel = turningTimeout(1500, () => finish(false));
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (!sent && text.includes('\r\n\r\n')) {
        sent = true;
        s.write('GET /admin HTTP/1.1\r\nHost: internal\r\n\r\n');
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => finish(true));
  });
}

test('a 101 that is not a WebSocket handshake answer for this client is a 502: no tunnel, nothing smuggled', async () => {
  for (const path of ['/ws/bad-accept', '/ws/no-accept', '/ws/h2c']) {
    const n = seen.length;
    const r = await upgradeThenSmuggle(path);
    assert.match(r.text, /^HTTP\/1\.1 502 /, `${path}: ${JSON.stringify(r.text.slice(0, 200))}`);
    assert.doesNotMatch(r.text, /INTERNAL-ONLY/, path);
    assert.ok(r.closed, `${path}: connection closed`);
    assert.deepEqual(seen.slice(n), [`GET ${path} HTTP/1.1`], `${path}: the upstream read only the upgrade`);
  }
});

test('a real handshake answer still opens the tunnel', async () => {
  const r = await upgradeThenSmuggle('/ws/good');
  assert.match(r.text, /^HTTP\/1\.1 101 /);
  assert.match(r.text, new RegExp(`sec-websocket-accept: ${ACCEPT.replace(/[+/=]/g, '\\$&')}`, 'i'));
  // session 23: the upstream's Alt-Svc is not relayed, on the 101 nor on a refused upgrade
  assert.doesNotMatch(r.text, /alt-svc/i);
  const refused = await upgradeThenSmuggle('/ws/refused');
  assert.match(refused.text, /^HTTP\/1\.1 401 /);
  assert.doesNotMatch(refused.text, /alt-svc/i);
});

// Session 22: an upgrade without a valid key (none, not 16 bytes of base64, or removed by listing it
// in Connection) was forwarded; the gateway then had no key to check the upstream's 101 against,
// and an upstream that answered 101 anyway was charged a `protocol` failure the client chose.
test('an upgrade without a valid Sec-WebSocket-Key is refused 400 before the upstream', async () => {
  for (const handshake of ['Connection: Upgrade\r\n', 'Connection: Upgrade\r\nSec-WebSocket-Key: abc\r\n', `Connection: Upgrade, Sec-WebSocket-Key\r\nSec-WebSocket-Key: ${KEY}\r\n`]) {
    const n = seen.length;
    const r = await upgradeThenSmuggle('/ws/no-accept', handshake);
    assert.match(r.text, /^HTTP\/1\.1 400 /, `${JSON.stringify(handshake)}: ${JSON.stringify(r.text.slice(0, 200))}`);
    assert.doesNotMatch(r.text, /INTERNAL-ONLY/);
    assert.deepEqual(seen.slice(n), [], `${JSON.stringify(handshake)}: the upstream read nothing`);
  }
});
