import { test } from 'node:test';
import assert from 'node:assert/strict';
import { forwardedAddress } from '../../../src/server/trusted-proxies.ts';

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
