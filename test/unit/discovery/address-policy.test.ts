// The address classes a discovered target must not be in, and the own-listener match
// (src/upstream/discovery/address-policy.ts; docs/security.md "Session 30 (disc30)").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, droppedReason, isOwnListener, ownListenerTargetErrors, type ListenAddress } from '../../../src/upstream/discovery/address-policy.ts';

const OWN: ListenAddress[] = [
  { host: '127.0.0.1', port: 9090 }, // admin
  { host: '0.0.0.0', port: 8080 }, // public, every interface
  { host: '::1', port: 9100 }, // metrics
];
const LOCAL = () => new Set(['127.0.0.1', '::1', '10.1.2.3', 'fe80::abcd']);

test('address classes: link-local, unspecified, multicast, broadcast dropped; loopback and ordinary addresses kept', () => {
  const table: [string, number, string | undefined][] = [
    ['169.254.169.254', 80, 'link_local'],
    ['169.254.0.1', 80, 'link_local'],
    ['fe80::1', 80, 'link_local'],
    ['FE80::1%eth0', 80, 'link_local'],
    ['febf::1', 80, 'link_local'],
    ['::ffff:169.254.169.254', 80, 'link_local'],
    ['0xa9.0xfe.0xa9.0xfe', 80, 'link_local'],
    ['2852039166', 80, 'link_local'], // 169.254.169.254 as one number
    ['0.0.0.0', 80, 'unspecified'],
    ['0.1.2.3', 80, 'unspecified'],
    ['::', 80, 'unspecified'],
    ['[::]', 80, 'unspecified'],
    ['224.0.0.1', 80, 'multicast'],
    ['239.255.255.250', 80, 'multicast'],
    ['ff02::1', 80, 'multicast'],
    ['255.255.255.255', 80, 'broadcast'],
    ['127.0.0.1', 80, undefined],
    ['127.0.0.53', 53, undefined],
    ['::1', 80, undefined],
    ['10.0.0.1', 80, undefined],
    ['192.168.1.1', 80, undefined],
    ['fec0::1', 80, undefined],
    ['fd00:ec2::254', 80, undefined],
    ['2001:db8::1', 80, undefined],
    ['api.internal', 80, undefined],
    ['169.254.169.254.nip.io', 80, undefined], // a name: resolved at connect, not checked here
  ];
  for (const [host, port, want] of table) assert.equal(droppedReason(host, port, [], false, LOCAL), want, host);
  assert.equal(droppedReason('169.254.169.254', 80, [], true, LOCAL), undefined, 'allow-link-local');
  assert.equal(droppedReason('fe80::1', 80, [], true, LOCAL), undefined, 'allow-link-local');
  assert.equal(droppedReason('0.0.0.0', 80, [], true, LOCAL), 'unspecified', 'allow-link-local allows link-local only');
});

test('own listeners: the same address and port, every spelling; a wildcard listener matches loopback and local interfaces on its port', () => {
  const table: [string, number, boolean][] = [
    ['127.0.0.1', 9090, true],
    ['127.1', 9090, true],
    ['2130706433', 9090, true],
    ['::ffff:127.0.0.1', 9090, true],
    ['[::ffff:7f00:1]', 9090, true],
    ['localhost', 9090, true],
    ['LOCALHOST.', 9090, true],
    ['admin.localhost', 9090, true],
    ['127.0.0.2', 9090, false], // another loopback address: not where the listener is bound
    ['127.0.0.1', 9091, false],
    ['::1', 9090, false],
    ['::1', 9100, true],
    ['[0:0:0:0:0:0:0:1]', 9100, true],
    ['localhost', 9100, true],
    ['127.0.0.1', 8080, true], // the wildcard listener
    ['127.0.0.9', 8080, true],
    ['::1', 8080, true],
    ['10.1.2.3', 8080, true],
    ['::ffff:10.1.2.3', 8080, true],
    ['fe80::abcd', 8080, true],
    ['10.1.2.4', 8080, false],
    ['10.1.2.3', 8081, false],
    ['api.internal', 8080, false],
  ];
  for (const [host, port, want] of table) assert.equal(isOwnListener(host, port, OWN, LOCAL), want, `${host}:${port}`);
  assert.equal(droppedReason('127.0.0.1', 9090, OWN, false, LOCAL), 'own_listener');
  assert.equal(droppedReason('127.0.0.1', 9091, OWN, false, LOCAL), undefined, 'loopback is allowed');
  assert.equal(isOwnListener('127.0.0.1', 8080, [{ host: '::', port: 8080 }], LOCAL), true, ':: listens on IPv4 too');
});

test('canonicalIp: what the connect reaches, or undefined for a name', () => {
  assert.equal(canonicalIp('127.1'), '127.0.0.1');
  assert.equal(canonicalIp('::FFFF:127.0.0.1'), '127.0.0.1');
  assert.equal(canonicalIp('[FE80:0:0::1]'), 'fe80::1');
  assert.equal(canonicalIp('example.com'), undefined);
  assert.equal(canonicalIp('1.2.3.4.5'), undefined);
});

test('static targets naming an own listener are config errors pointing at builtin-handler', () => {
  const upstreams = new Map([
    ['ok', { target: [{ address: '127.0.0.1:3000' }] }],
    ['loop', { target: [{ address: '127.0.0.1:3000' }, { address: 'localhost:9090' }] }],
  ]);
  const errors = ownListenerTargetErrors(upstreams, OWN);
  assert.equal(errors.length, 1);
  assert.match(errors[0]!, /upstream "loop": target "localhost:9090" is one of this gateway's own listeners.*builtin-handler/);
  assert.deepEqual(ownListenerTargetErrors(upstreams, []), []);
});
