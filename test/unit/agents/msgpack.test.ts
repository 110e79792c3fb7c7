// The MessagePack codec against byte sequences from the MessagePack spec
// (https://github.com/msgpack/msgpack/blob/master/spec.md), round trips, and hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MsgpackError, decodeMsgpack, encodeMsgpack } from '../../../src/agent-protocol/msgpack.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// [value, encoding] — both directions.
const CASES: [unknown, string][] = [
  [null, 'c0'],
  [false, 'c2'],
  [true, 'c3'],
  [0, '00'],
  [1, '01'],
  [127, '7f'],
  [128, 'cc 80'],
  [255, 'cc ff'],
  [256, 'cd 0100'],
  [65535, 'cd ffff'],
  [65536, 'ce 00010000'],
  [4294967295, 'ce ffffffff'],
  [4294967296, 'cf 0000000100000000'],
  [Number.MAX_SAFE_INTEGER, 'cf 001fffffffffffff'],
  [-1, 'ff'],
  [-32, 'e0'],
  [-33, 'd0 df'],
  [-128, 'd0 80'],
  [-129, 'd1 ff7f'],
  [-32768, 'd1 8000'],
  [-32769, 'd2 ffff7fff'],
  [-2147483648, 'd2 80000000'],
  [-2147483649, 'd3 ffffffff7fffffff'],
  [Number.MIN_SAFE_INTEGER, 'd3 ffe0000000000001'],
  [1.5, 'cb 3ff8000000000000'],
  [-0.25, 'cb bfd0000000000000'],
  ['', 'a0'],
  ['a', 'a1 61'],
  ['é', 'a2 c3a9'],
  ['x'.repeat(31), `bf ${'78'.repeat(31)}`],
  ['x'.repeat(32), `d9 20 ${'78'.repeat(32)}`],
  ['x'.repeat(256), `da 0100 ${'78'.repeat(256)}`],
  ['x'.repeat(65536), `db 00010000 ${'78'.repeat(65536)}`],
  [[], '90'],
  [[1, 2, 3], '93 01 02 03'],
  [Array.from({ length: 16 }, () => 0), `dc 0010 ${'00'.repeat(16)}`],
  [{}, '80'],
  [{ a: 1 }, '81 a161 01'],
  // the example on msgpack.org
  [{ compact: true, schema: 0 }, '82 a7 636f6d70616374 c3 a6 736368656d61 00'],
  [Object.fromEntries(Array.from({ length: 16 }, (_, i) => [String.fromCharCode(97 + i), null])), `de 0010 ${Array.from({ length: 16 }, (_, i) => `a1${(97 + i).toString(16)}c0`).join('')}`],
  [Buffer.from([1, 2]), 'c4 02 0102'],
  [Buffer.alloc(256, 7), `c5 0100 ${'07'.repeat(256)}`],
  [{ nested: [{ k: 'v' }, [null]] }, '81 a66e6573746564 92 81 a16b a176 91 c0'],
];

test('encode: spec byte sequences', () => {
  for (const [value, bytes] of CASES) assert.deepEqual(encodeMsgpack(value), hex(bytes), JSON.stringify(value)?.slice(0, 40));
});

test('decode: spec byte sequences', () => {
  for (const [value, bytes] of CASES) assert.deepEqual(decodeMsgpack(hex(bytes)), value, bytes.slice(0, 40));
});

test('decode: encodings we never produce but agents may (float32, wider-than-needed ints, str8 for short strings, int keys)', () => {
  const cases: [string, unknown][] = [
    ['ca 3fc00000', 1.5],
    ['cd 0001', 1],
    ['d3 0000000000000005', 5],
    ['d9 01 61', 'a'],
    ['dd 00000001 c3', [true]],
    ['df 00000001 a1 61 c2', { a: false }],
    ['81 01 a1 78', { 1: 'x' }],
  ];
  for (const [bytes, value] of cases) assert.deepEqual(decodeMsgpack(hex(bytes)), value, bytes);
});

test('encode follows JSON.stringify semantics for what JSON cannot carry', () => {
  assert.deepEqual(encodeMsgpack({ a: undefined, b: () => 1, c: 1 }), hex('81 a163 01'));
  assert.deepEqual(encodeMsgpack([undefined, NaN, Infinity]), hex('93 c0 c0 c0'));
  assert.deepEqual(encodeMsgpack({ d: new Date(0) }), encodeMsgpack({ d: '1970-01-01T00:00:00.000Z' }));
});

test('round trip of an agent reply and an event', () => {
  const values = [
    { version: 1, decision: { block: { status: 403, body: 'no', headers: { 'x-a': 'b' } } }, request_headers: [{ set: { name: 'X', value: 'y' } }], audit: { tags: ['t'], rule_ids: [], confidence: 0.75, custom: { correlation_id: 'c-1' } }, needs_more: false },
    { correlation_id: 'c', data: Buffer.from('hello').toString('base64'), is_last: true, total_size: null, chunk_index: 0, bytes_sent: 5, timestamp_ms: Date.UTC(2026, 0, 1) },
  ];
  for (const v of values) assert.deepEqual(decodeMsgpack(encodeMsgpack(v)), v);
});

test('hostile input: truncation, trailing bytes, ext types (timestamp too), lying lengths, deep nesting, __proto__', () => {
  const bad = ['', 'cc', 'cd 01', 'a3 6162', '92 01', 'c0 c0', 'c1', 'c7 01 01 00', 'd4 01 00', 'd6 ff 00000000', 'dd ffffffff', 'df ffffffff', 'db ffffffff', '81 c3 c3'];
  for (const b of bad) assert.throws(() => decodeMsgpack(hex(b)), MsgpackError, b);
  assert.throws(() => decodeMsgpack(Buffer.alloc(100_000, 0x91)), MsgpackError);
  // @msgpack/msgpack refuses a "__proto__" key outright (JSON.parse would keep it as an own key).
  assert.throws(() => decodeMsgpack(hex('81 a9 5f5f70726f746f5f5f 81 a161 01')), MsgpackError);
  assert.equal(({} as Record<string, unknown>).a, undefined, 'prototype untouched');
});

test('64-bit integers beyond ±2^53 decode to the nearest double (the library does not refuse them)', () => {
  assert.equal(decodeMsgpack(hex('cf ffffffffffffffff')), 2 ** 64);
  assert.equal(decodeMsgpack(hex('d3 8000000000000000')), -(2 ** 63));
});

test('bigints and Dates are written the way the JSON encoding carries them', () => {
  assert.deepEqual(encodeMsgpack({ n: 5n }), encodeMsgpack({ n: 5 }));
  assert.throws(() => encodeMsgpack(2n ** 60n), MsgpackError);
  assert.deepEqual(encodeMsgpack([new Date(0), Symbol('s')]), encodeMsgpack(['1970-01-01T00:00:00.000Z', null]));
});
