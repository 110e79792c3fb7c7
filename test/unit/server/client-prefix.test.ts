// clientPrefixKey (src/server/client-prefix.ts): the per-client key of an address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientPrefixKey } from '../../../src/server/client-prefix.ts';

const rows: [ip: string, v4: number, v6: number, key: string][] = [
  // IPv4 stays per address by default
  ['203.0.113.7', 32, 64, '203.0.113.7'],
  ['203.0.113.7', 24, 64, '203.0.113.0/24'],
  ['203.0.113.7', 16, 64, '203.0.0.0/16'],
  ['203.0.113.7', 0, 64, '0.0.0.0/0'],
  ['255.255.255.255', 31, 64, '255.255.255.254/31'],
  // IPv6 per /64, one spelling whatever the input's
  ['2001:db8:0:1:aaaa:bbbb:cccc:dddd', 32, 64, '2001:db8:0:1::/64'],
  ['2001:db8:0:1::1', 32, 64, '2001:db8:0:1::/64'],
  ['2001:DB8:0:1:0:0:0:2', 32, 64, '2001:db8:0:1::/64'],
  ['2001:0db8:0000:0001::ffff', 32, 64, '2001:db8:0:1::/64'],
  ['[2001:db8:0:1::3]', 32, 64, '2001:db8:0:1::/64'],
  ['fe80::1%eth0', 32, 64, 'fe80::/64'],
  ['2001:db8:0:2::1', 32, 64, '2001:db8:0:2::/64'],
  ['2001:db8:1234:5678:9abc::1', 32, 48, '2001:db8:1234::/48'],
  ['2001:db8:1234:5678:9abc::1', 32, 56, '2001:db8:1234:5600::/56'],
  ['2001:db8::1', 32, 128, '2001:db8::1'],
  ['2001:db8:0:0:1:0:0:1', 32, 128, '2001:db8::1:0:0:1'],
  ['::1', 32, 64, '::/64'],
  ['::1', 32, 128, '::1'],
  ['1:2:3:4:5:6:7:8', 32, 64, '1:2:3:4::/64'],
  // IPv4-mapped IPv6 is the IPv4 client, however spelled
  ['::ffff:203.0.113.7', 32, 64, '203.0.113.7'],
  ['::FFFF:203.0.113.7', 24, 64, '203.0.113.0/24'],
  ['0:0:0:0:0:ffff:cb00:7107', 32, 64, '203.0.113.7'],
  ['::ffff:cb00:7107', 32, 64, '203.0.113.7'],
  // the IPv4-compatible form (deprecated) is IPv6
  ['::203.0.113.7', 32, 128, '::cb00:7107'],
  ['1:2:3:4:5:6:1.2.3.4', 32, 128, '1:2:3:4:5:6:102:304'],
  // not addresses: as they are
  ['unknown', 32, 64, 'unknown'],
  ['1.2.3', 24, 64, '1.2.3'],
  ['1.2.3.999', 24, 64, '1.2.3.999'],
  ['2001:db8::g', 32, 64, '2001:db8::g'],
  ['', 32, 64, ''],
];

for (const [ip, v4, v6, key] of rows) {
  test(`${ip} /${v4} /${v6} -> ${key}`, () => assert.equal(clientPrefixKey(ip, v4, v6), key));
}

test('two addresses of one /64 share a key; of two /64s do not', () => {
  assert.equal(clientPrefixKey('2001:db8:0:1::a'), clientPrefixKey('2001:db8:0:1:ffff:ffff:ffff:ffff'));
  assert.notEqual(clientPrefixKey('2001:db8:0:1::a'), clientPrefixKey('2001:db8:0:2::a'));
});
