// wss end to end: a client speaking TLS (ALPN http/1.1) to an https listener, and a TLS upstream
// reached with the upstream's tls block (CA, SNI) over the gateway's own connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { Pki } from '../../helpers/pki.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { Opcode } from '../../../src/websocket/frames.ts';
import { startEchoUpstream, WsClient, type EchoUpstream } from './ws-helpers.ts';

let pki: Pki;
let echo: EchoUpstream;
let gw: Gateway;
let ca: Buffer;
const clients: WsClient[] = [];

before(async () => {
  pki = await Pki.create();
  const root = await pki.ca('ca');
  const up = await root.issue('upstream', { cn: 'echo', dns: ['echo.test'] });
  const site = await root.issue('site', { cn: 'site', dns: ['site.test'] });
  ca = readFileSync(root.cert);
  echo = await startEchoUpstream({ tls: { cert: readFileSync(up.cert), key: readFileSync(up.key) } });
  ({ gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "https" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "${site.cert}"; key-file "${site.key}" } } }
routes { route "ws" { matches { path-prefix "/" }; upstream "echo"; websocket #true } }
upstreams { upstream "echo" { target "${echo.address}"; tls { ca-cert "${root.cert}"; sni "echo.test" } } }
`));
});

after(async () => {
  for (const c of clients) c.destroy();
  await gw?.close();
  await echo?.close();
  await pki?.close();
});

test('wss through an https listener to a TLS upstream (CA and SNI from the upstream tls block)', async () => {
  const c = await WsClient.connect(gw.address('https').port, '/chat', { 'X-Request-Id': 'wss-1' }, { tls: { ca, servername: 'site.test' } });
  clients.push(c);
  assert.equal(c.handshake.status, 101, c.handshake.body);
  assert.equal(echo.servernames.at(-1), 'echo.test');
  assert.equal(echo.upgrades.at(-1)!['x-forwarded-proto'], 'https');
  c.text('over tls');
  assert.deepEqual(await c.message(), { opcode: Opcode.Text, data: Buffer.from('over tls') });
  const big = Buffer.alloc(300_000, 7);
  c.send(Opcode.Binary, big);
  assert.ok((await c.message()).data.equals(big));
  c.close(1000, 'done');
  assert.equal((await c.waitClose())?.code, 1000);
});
