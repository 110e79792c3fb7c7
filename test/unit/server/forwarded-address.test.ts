import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileTrusted, forwardedAddress, isTrusted } from '../../../src/server/trusted-proxies.ts';

test('forwardedAddress: addresses (with a port or brackets) or nothing', () => {
  const table: [string, string | undefined][] = [
    ['203.0.113.7', '203.0.113.7'],
    ['203.0.113.7:51234', '203.0.113.7'],
    ['2001:db8::1', '2001:db8::1'],
    ['[2001:db8::1]', '2001:db8::1'],
    ['[2001:db8::1]:443', '2001:db8::1'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['[::ffff:203.0.113.7]:80', '203.0.113.7'],
    ['unknown', undefined],
    ['_hidden', undefined],
    ['"quoted"', undefined],
    ['6.6.6.6 - - [x]', undefined],
    ['203.0.113.7:', undefined],
    ['203.0.113.7:123456', undefined],
    ['203.0.113.7:80:80', undefined],
    ['[2001:db8::1', undefined],
    ['[2001:db8::1]x', undefined],
    ['[203.0.113.7]', undefined],
    ['evil.example:80', undefined],
    ['', undefined],
  ];
  for (const [entry, want] of table) assert.equal(forwardedAddress(entry), want, entry);
});

test('isTrusted: an IPv4-mapped address matches IPv4 entries in every spelling (session 20)', () => {
  const m = compileTrusted(['10.0.0.0/8', 'fd00::/8']);
  const table: [string, boolean][] = [
    ['10.0.0.1', true],
    ['::ffff:10.0.0.1', true],
    ['::FFFF:10.0.0.1', true],
    ['::ffff:a00:1', true], // was false: `::ffff:` cut, `a00:1` is no address
    ['0:0:0:0:0:ffff:a00:1', true],
    ['fd00::1%eth0', true],
    ['11.0.0.1', false],
    ['::ffff:b00:1', false],
    ['64:ff9b::a00:1', false], // NAT64 is another address
    ['010.0.0.1', false],
    ['unknown', false],
  ];
  for (const [ip, want] of table) assert.equal(isTrusted(m, ip), want, ip);
});
