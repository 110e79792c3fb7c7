import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostHeaderNamesThisMachine, namesThisMachine } from '../../../src/builtins/local-host.ts';

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

test('hostHeaderNamesThisMachine: a raw Host header (port, case, trailing dot) for the standalone metrics listener', () => {
  const table: [string | undefined, boolean][] = [
    [undefined, true],
    ['', true],
    ['127.0.0.1:9091', true],
    ['LOCALHOST:9091', true],
    ['localhost.', true],
    ['[::1]:9091', true],
    ['[::1]', true],
    ['10.0.0.7', true],
    ['evil.example:9091', false],
    ['evil.example.:9091', false],
    ['sentinel.monitoring.svc:9091', false],
    ['[evil]:9091', false],
    ['127.0.0.1.nip.io:9091', false],
  ];
  for (const [header, want] of table) assert.equal(hostHeaderNamesThisMachine(header), want, String(header));
});
