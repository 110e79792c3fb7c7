// Session 12 audit finding, closed in session 13 (docs/rate-limit.md, "Client addresses"): an IPv6
// client holds a /64, so per-address `client-ip` keys gave it 2^64 buckets. Keys aggregate IPv6 to
// client-ipv6-prefix (default 64); IPv4-mapped addresses count as IPv4. Real requests to a listener
// on [::1]; loopback has one IPv6 address, so several client addresses come from a trusted proxy
// on ::1 as X-Forwarded-For entries (the address resolution rate limits always use).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startLimitedGateway, type LimitedGateway } from '../../helpers/rate-limit.ts';

let g: LimitedGateway;
/** One request to [::1] as `client` (an X-Forwarded-For entry; none: the ::1 peer itself). */
const status = (path: string, client?: string) => g.status(path, client ? { 'x-forwarded-for': client } : {});

before(async () => {
  g = await startLimitedGateway(
    [
      { prefix: '/exact', key: 'client-ip', extra: 'client-ipv6-prefix 128' },
      { prefix: '/v4', key: 'client-ip', extra: 'client-ipv4-prefix 24' },
      { prefix: '/', key: 'client-ip' },
    ],
    { system: 'trusted-proxies "::1/128"', address: '[::1]:0' },
  );
});

after(() => g.close());

test('the ::1 peer itself is limited per address (one real IPv6 source)', async () => {
  assert.equal(await status('/peer'), 200);
  assert.equal(await status('/peer'), 429);
});

test('two addresses of one /64 share a bucket; another /64 has its own', async () => {
  assert.equal(await status('/a', '2001:db8:0:1::a'), 200);
  assert.equal(await status('/a', '2001:db8:0:1:ffff:ffff:ffff:ffff'), 429, 'same /64');
  assert.equal(await status('/a', '2001:DB8:0:1::B'), 429, 'same /64, another spelling');
  assert.equal(await status('/a', '2001:db8:0:2::a'), 200, 'another /64');
});

test('IPv4-mapped IPv6 counts as the IPv4 address; IPv4 stays per address by default', async () => {
  assert.equal(await status('/b', '192.0.2.10'), 200);
  assert.equal(await status('/b', '::ffff:192.0.2.10'), 429);
  assert.equal(await status('/b', '192.0.2.11'), 200);
});

test('client-ipv6-prefix 128 keys per address; client-ipv4-prefix 24 groups a /24', async () => {
  assert.equal(await status('/exact', '2001:db8:0:3::a'), 200);
  assert.equal(await status('/exact', '2001:db8:0:3::b'), 200);
  assert.equal(await status('/exact', '2001:db8:0:3::a'), 429);
  assert.equal(await status('/v4', '198.51.100.1'), 200);
  assert.equal(await status('/v4', '198.51.100.200'), 429);
  assert.equal(await status('/v4', '198.51.101.1'), 200);
});

test('config: a prefix out of range is an error naming the key and file:line', async () => {
  await assert.rejects(
    gatewayFrom(`
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "main" { matches { path-prefix "/" }; builtin-handler "health"; filters "f" } }
filters {
  filter "f" { type "rate-limit"; client-ipv6-prefix 129 }
}
`),
    /<config>:5:\d+: filters > filter "f" > client-ipv6-prefix: must be <= 128/,
  );
});
