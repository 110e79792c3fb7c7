// The address classes a discovered target must not be in, and the own-listener match
// (src/upstream/discovery/address-policy.ts; docs/security.md "Session 30 (disc30)").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canonicalIp,
  checkedLookup,
  droppedReason,
  isOwnListener,
  ownListenerTargetErrors,
  TARGET_ADDRESS_REFUSED,
  type AddressPolicy,
  type ListenAddress,
  type RefusedAddress,
} from '../../../src/upstream/discovery/address-policy.ts';
import { compileNetworks, inNetworks, parseNetwork } from '../../../src/upstream/discovery/networks.ts';
import dns from 'node:dns';
import { loadConfigText } from '../../../src/config/load.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import type { LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';

const NONE: AddressPolicy = { allowLinkLocal: false };
const LINK_LOCAL: AddressPolicy = { allowLinkLocal: true };

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
  for (const [host, port, want] of table) assert.equal(droppedReason(host, port, [], NONE, LOCAL), want, host);
  assert.equal(droppedReason('169.254.169.254', 80, [], LINK_LOCAL, LOCAL), undefined, 'allow-link-local');
  assert.equal(droppedReason('fe80::1', 80, [], LINK_LOCAL, LOCAL), undefined, 'allow-link-local');
  assert.equal(droppedReason('0.0.0.0', 80, [], LINK_LOCAL, LOCAL), 'unspecified', 'allow-link-local allows link-local only');
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
  assert.equal(droppedReason('127.0.0.1', 9090, OWN, NONE, LOCAL), 'own_listener');
  assert.equal(droppedReason('127.0.0.1', 9091, OWN, NONE, LOCAL), undefined, 'loopback is allowed');
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

test('allow networks: parseNetwork accepts CIDRs and single addresses, refuses the rest with a message', () => {
  const ok: [string, string, number][] = [
    ['10.0.0.0/8', '10.0.0.0', 8],
    ['192.168.1.0/24', '192.168.1.0', 24],
    ['10.1.2.3', '10.1.2.3', 32],
    ['0.0.0.0/0', '0.0.0.0', 0],
    ['fd00::/8', 'fd00::', 8],
    ['2001:db8::/32', '2001:db8::', 32],
    ['::1', '::1', 128],
    ['::/0', '::', 0],
    ['::ffff:10.0.0.0/104', '::ffff:10.0.0.0', 104],
  ];
  for (const [entry, address, prefix] of ok) {
    const n = parseNetwork(entry);
    assert.ok(typeof n !== 'string', `${entry}: ${String(n)}`);
    assert.deepEqual([n.address, n.prefix], [address, prefix], entry);
  }
  const bad: [string, RegExp][] = [
    ['10.0.0.0/33', /prefix length must be 0-32/],
    ['fd00::/129', /prefix length must be 0-128/],
    ['10.0.0.0/', /prefix length/],
    ['10.0.0.0/8/8', /prefix length/],
    ['10.0.0.0/-1', /prefix length/],
    ['10.0.0.0/0x8', /prefix length/],
    ['10.0.0.1/8', /host bits set past \/8/],
    ['fd00::1/8', /host bits set past \/8/],
    ['10.1/16', /not a network/], // inet_aton spellings are refused: the list reads as written
    ['0x0a.0.0.0/8', /not a network/],
    ['fe80::1%eth0', /not a network/],
    ['example.com', /not a network/],
    ['', /not a network/],
  ];
  for (const [entry, re] of bad) {
    const n = parseNetwork(entry);
    assert.equal(typeof n, 'string', entry);
    assert.match(n as string, re, entry);
  }
  assert.throws(() => compileNetworks(['10.0.0.0/8', 'nope']), /allow "nope" is not a network/);
});

test('allow networks: inNetworks matches canonical IPv4 and IPv6 addresses, the mapped spelling as its IPv4', () => {
  const n = compileNetworks(['10.0.0.0/8', '192.168.1.0/24', '172.16.5.4', 'fd00::/8']);
  const table: [string, boolean][] = [
    ['10.0.0.1', true],
    ['10.255.255.255', true],
    ['11.0.0.1', false],
    ['9.255.255.255', false],
    ['192.168.1.77', true],
    ['192.168.2.1', false],
    ['172.16.5.4', true],
    ['172.16.5.5', false],
    ['fd12::1', true],
    ['fe00::1', false],
    ['127.0.0.1', false],
    ['::1', false],
  ];
  for (const [ip, want] of table) assert.equal(inNetworks(n, ip), want, ip);
  // droppedReason reads a target's host as the connect does before matching
  const policy: AddressPolicy = { allowLinkLocal: false, allow: n };
  const reasons: [string, string | undefined][] = [
    ['10.1.2.3', undefined],
    ['10.1', undefined], // 10.0.0.1 as inet_aton reads it
    ['::ffff:10.1.2.3', undefined],
    ['[::ffff:a01:203]', undefined],
    ['[fd00::5]', undefined],
    ['127.0.0.1', 'not_allowed'],
    ['localhost', 'not_allowed'],
    ['api.localhost', 'not_allowed'],
    ['192.168.2.1', 'not_allowed'],
    ['2001:db8::1', 'not_allowed'],
    ['169.254.169.254', 'link_local'], // the class comes first
    ['api.internal', undefined], // a name: checked at connect (checkedLookup)
  ];
  for (const [host, want] of reasons) assert.equal(droppedReason(host, 80, [], policy, LOCAL), want, host);
  assert.equal(droppedReason('10.0.0.9', 9090, [{ host: '0.0.0.0', port: 9090 }], { allowLinkLocal: false, allow: n }, () => new Set(['10.0.0.9'])), 'own_listener', 'allowed network, own listener');
  assert.equal(droppedReason('169.254.169.254', 80, [], { allowLinkLocal: true, allow: compileNetworks(['169.254.0.0/16']) }, LOCAL), undefined);
  assert.equal(droppedReason('169.254.169.254', 80, [], { allowLinkLocal: true, allow: n }, LOCAL), 'not_allowed');
});

/** Runs checkedLookup over a fake system resolver answering `answers` for every name. */
async function lookupWith(answers: LookupAddress[], check: (ip: string) => ReturnType<typeof droppedReason>, all: boolean) {
  const original = dns.lookup;
  const refusedSeen: RefusedAddress[][] = [];
  (dns as { lookup: unknown }).lookup = (_h: string, _o: unknown, cb: (e: Error | null, a: LookupAddress[]) => void) => cb(null, answers);
  try {
    const lookup: LookupFunction = checkedLookup(check, (_h, r) => refusedSeen.push(r));
    return await new Promise<{ err: (Error & { code?: string }) | null; address: unknown; family?: number; refusedSeen: RefusedAddress[][] }>((resolve) =>
      lookup('svc.test', { all }, (err, address, family) => resolve({ err, address, ...(family !== undefined ? { family } : {}), refusedSeen })),
    );
  } finally {
    (dns as { lookup: unknown }).lookup = original;
  }
}

test('checkedLookup: refused resolved addresses are dropped; none left fails the connect with TARGET_ADDRESS_REFUSED', async () => {
  const check = (ip: string) => droppedReason(ip, 9090, OWN, { allowLinkLocal: false, allow: compileNetworks(['10.0.0.0/8', '127.0.0.0/8']) }, LOCAL);
  const mixed = await lookupWith(
    [
      { address: '169.254.169.254', family: 4 },
      { address: '10.0.0.7', family: 4 },
      { address: '192.168.0.1', family: 4 },
    ],
    check,
    true,
  );
  assert.equal(mixed.err, null);
  assert.deepEqual(mixed.address, [{ address: '10.0.0.7', family: 4 }]);
  assert.deepEqual(mixed.refusedSeen, [[{ address: '169.254.169.254', reason: 'link_local' }, { address: '192.168.0.1', reason: 'not_allowed' }]]);
  const one = await lookupWith([{ address: '::ffff:169.254.169.254', family: 6 }, { address: '10.0.0.8', family: 4 }], check, false);
  assert.deepEqual([one.err, one.address, one.family], [null, '10.0.0.8', 4]);
  const none = await lookupWith([{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }, { address: '0.0.0.0', family: 4 }], check, true);
  assert.equal(none.err?.code, TARGET_ADDRESS_REFUSED);
  assert.match(none.err!.message, /"svc\.test" resolves only to addresses a target may not name: 127\.0\.0\.1 \(own_listener\), ::1 \(not_allowed\), 0\.0\.0\.0 \(unspecified\)/);
  const clean = await lookupWith([{ address: '10.0.0.9', family: 4 }], check, true);
  assert.deepEqual([clean.err, clean.address, clean.refusedSeen], [null, [{ address: '10.0.0.9', family: 4 }], [[]]], 'told: nothing refused');
});

test('a discovery block\'s allow entries are checked when the config loads: bad ones are errors naming the block', () => {
  const cfg = (allow: string) => `
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u" } }
upstreams { upstream "u" { discovery "file" { path "t.txt"; ${allow} } } }`;
  assert.doesNotThrow(() => loadConfigText(cfg('allow "10.0.0.0/8"; allow "fd00::/8" "10.1.2.3"'), { name: 'ok.kdl', baseDir: '/tmp', validators: pluginValidators }));
  assert.throws(() => loadConfigText(cfg('allow "10.0.0.1/8"'), { name: 'bad.kdl', baseDir: '/tmp', validators: pluginValidators }), /discovery "file" > allow: "10\.0\.0\.1\/8" has host bits set/);
  assert.throws(() => loadConfigText(cfg('allow "10.0.0.0/40"'), { name: 'bad.kdl', baseDir: '/tmp', validators: pluginValidators }), /discovery "file" > allow: "10\.0\.0\.0\/40": the prefix length must be 0-32/);
  assert.throws(() => loadConfigText(cfg('allow "db.internal"'), { name: 'bad.kdl', baseDir: '/tmp', validators: pluginValidators }), /"db\.internal" is not a network/);
});
