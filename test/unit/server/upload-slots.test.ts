// UploadSlots / UploadGate (src/server/upload-slots.ts): counts per client key, the cap, release
// exactly once, exemptions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { UploadGate, UploadSlots } from '../../../src/server/upload-slots.ts';

test('acquire up to the cap per key; release frees one slot, twice is a no-op', () => {
  const s = new UploadSlots();
  const a1 = s.acquire('a', 2);
  const a2 = s.acquire('a', 2);
  assert.ok(a1 && a2);
  assert.equal(s.acquire('a', 2), undefined);
  assert.ok(s.acquire('b', 2), 'another key has its own slots');
  assert.equal(s.held('a'), 2);
  a1();
  a1();
  assert.equal(s.held('a'), 1);
  assert.ok(s.acquire('a', 2));
  assert.equal(s.clients, 2);
});

test('keys without slots are dropped', () => {
  const s = new UploadSlots();
  const r = s.acquire('x', 1)!;
  r();
  assert.equal(s.clients, 0);
  assert.equal(s.held('x'), 0);
});

/** an HTTP/1.1-shaped request whose body has (not) arrived */
const h1 = (complete: boolean) => Object.assign(new PassThrough(), { complete }) as unknown as IncomingMessage;

test('gate: no cap, exempt client, arrived body: no slot; otherwise a slot or null at the cap', () => {
  const slots = new UploadSlots();
  const table: { cap: number; ip: string; complete: boolean; want: 'none' | 'slot' | 'refused' }[] = [
    { cap: 0, ip: '192.0.2.1', complete: false, want: 'none' },
    { cap: 1, ip: '10.0.0.9', complete: false, want: 'none' },
    { cap: 1, ip: '192.0.2.1', complete: true, want: 'none' },
    { cap: 1, ip: '192.0.2.1', complete: false, want: 'slot' },
    { cap: 1, ip: '192.0.2.1', complete: false, want: 'refused' },
    { cap: 1, ip: '192.0.2.2', complete: false, want: 'slot' },
  ];
  for (const row of table) {
    const gate = new UploadGate(slots, row.cap, (ip) => ip.startsWith('10.'));
    const got = gate.take(row.ip, h1(row.complete));
    assert.equal(got === undefined ? 'none' : got === null ? 'refused' : 'slot', row.want, JSON.stringify(row));
  }
});

test('gate: IPv6 clients are counted per /64, IPv4-mapped ones as their IPv4 address', () => {
  const gate = new UploadGate(new UploadSlots(), 1, () => false);
  assert.ok(gate.take('2001:db8:0:1::a', h1(false)));
  assert.equal(gate.take('2001:db8:0:1::b', h1(false)), null, 'same /64');
  assert.ok(gate.take('2001:db8:0:2::a', h1(false)), 'another /64');
  assert.ok(gate.take('192.0.2.1', h1(false)));
  assert.equal(gate.take('::ffff:192.0.2.1', h1(false)), null);
});
