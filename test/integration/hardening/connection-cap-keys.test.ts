// Session 28 audit (audit28): `limits { max-connections-per-client }` counted connections per
// TCP peer address as written, while rate limits, streaming uploads and the per-client budgets
// count a client as clientPrefixKey does (IPv6 per /64, IPv4-mapped IPv6 as the IPv4 address).
// An IPv6 client holds a whole /64 (SLAAC, any VPS): probed with four addresses of one /64 on lo
// at a cap of 2, six connections from three of them were all served. And one IPv4 client reaching
// a dual-stack listener (seen as ::ffff:a.b.c.d) and an IPv4 one (a.b.c.d) had two caps. Now the
// cap counts the client's key. This test takes the IPv4-mapped half, which loopback allows without
// privileges; the /64 half is in test/unit/server/listener-limits.test.ts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';

let up: TestUpstream;
let gw: Gateway;
const held: net.Socket[] = [];

before(async () => {
  up = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "v4" { address "127.0.0.1:0" }
  listener "mapped" { address "[::ffff:127.0.0.1]:0" }
}
routes { route "main" { matches { path-prefix "/" }; upstream "app" } }
upstreams { upstream "app" { target "${up.address}" } }
limits { max-connections-per-client 2 }
`)
  ).gw;
});

after(async () => {
  for (const s of held) s.destroy();
  await gw.close();
  await up.close();
});

/** Opens a connection to `port` on 127.0.0.1 and asks for one answer on it; true when answered (the socket is kept open). */
function served(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    held.push(s);
    let got = '';
    s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes('\r\n\r\n')) resolve(true);
    });
    s.on('close', () => resolve(false));
    s.on('error', () => undefined);
  });
}

test('one IPv4 client is one client on an IPv4 and a dual-stack (IPv4-mapped) listener', async () => {
  assert.equal(await served(gw.address('v4').port), true);
  assert.equal(await served(gw.address('v4').port), true);
  assert.equal(await served(gw.address('mapped').port), false, 'the third connection of 127.0.0.1, seen as ::ffff:127.0.0.1');
});
