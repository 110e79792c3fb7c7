import { test } from 'node:test';
import assert from 'node:assert/strict';
import { namesThisMachine } from '../../../src/builtins/local-host.ts';

test('namesThisMachine: IP literals and localhost names only (DNS rebinding)', () => {
  const table: [string, boolean][] = [
    ['localhost', true],
    ['admin.localhost', true],
    ['127.0.0.1', true],
    ['10.1.2.3', true],
    ['[::1]', true],
    ['[2001:db8::1]', true],
    ['evil.example', false],
    ['localhost.evil.example', false],
    ['127.0.0.1.nip.io', false],
    ['xlocalhost', false],
    ['', false],
    ['[]', false],
    ['[evil.example]', false],
    ['::1', false], // a bare IPv6 in Host is not a valid authority; the front door refuses it anyway
    ['0x7f000001', false],
  ];
  for (const [host, want] of table) assert.equal(namesThisMachine(host), want, host);
});
