// RFC 6455 codec: byte-level fixtures (the §5.7 examples and hand-built frames), split at every
// byte, fragmentation with interleaved control frames, the three length encodings, limits and
// protocol errors, close payloads, and the boundary tracker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BoundaryTracker,
  CloseCode,
  FrameParser,
  FrameProtocolError,
  Opcode,
  closePayload,
  encodeFrame,
  parseClosePayload,
  readHeader,
  type Frame,
} from '../../../src/websocket/frames.ts';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const any = () => new FrameParser({ maxFrameBytes: 1 << 20 });

// RFC 6455 §5.7 examples
const FIXTURES: { name: string; bytes: Buffer; fin: boolean; opcode: number; masked: boolean; payload: Buffer }[] = [
  { name: 'unmasked text "Hello"', bytes: hex('81 05 48656c6c6f'), fin: true, opcode: Opcode.Text, masked: false, payload: Buffer.from('Hello') },
  { name: 'masked text "Hello"', bytes: hex('81 85 37fa213d 7f9f4d5158'), fin: true, opcode: Opcode.Text, masked: true, payload: Buffer.from('Hello') },
  { name: 'first fragment "Hel"', bytes: hex('01 03 48656c'), fin: false, opcode: Opcode.Text, masked: false, payload: Buffer.from('Hel') },
  { name: 'unmasked ping "Hello"', bytes: hex('89 05 48656c6c6f'), fin: true, opcode: Opcode.Ping, masked: false, payload: Buffer.from('Hello') },
  { name: 'masked pong "Hello"', bytes: hex('8a 85 37fa213d 7f9f4d5158'), fin: true, opcode: Opcode.Pong, masked: true, payload: Buffer.from('Hello') },
  { name: '256-byte binary (16-bit length)', bytes: Buffer.concat([hex('82 7e 0100'), Buffer.alloc(256, 7)]), fin: true, opcode: Opcode.Binary, masked: false, payload: Buffer.alloc(256, 7) },
  { name: '64 KiB binary (64-bit length)', bytes: Buffer.concat([hex('82 7f 0000000000010000'), Buffer.alloc(65536, 9)]), fin: true, opcode: Opcode.Binary, masked: false, payload: Buffer.alloc(65536, 9) },
  { name: 'empty close', bytes: hex('88 00'), fin: true, opcode: Opcode.Close, masked: false, payload: Buffer.alloc(0) },
  { name: 'close 1000 "bye" masked', bytes: hex('88 85 00000000 03e8627965'), fin: true, opcode: Opcode.Close, masked: true, payload: hex('03e8627965') },
];

for (const f of FIXTURES) {
  test(`parses ${f.name}`, () => {
    const frames = any().push(f.bytes);
    assert.equal(frames.length, 1);
    const fr = frames[0]!;
    assert.equal(fr.fin, f.fin);
    assert.equal(fr.opcode, f.opcode);
    assert.equal(fr.masked, f.masked);
    assert.deepEqual(fr.payload, f.payload);
    assert.deepEqual(fr.raw, f.bytes, 'raw bytes kept exactly');
  });
}

test('every fixture survives being split at every byte, and all of them back to back', () => {
  const all = Buffer.concat(FIXTURES.filter((f) => f.fin || f.opcode !== Opcode.Text).map((f) => f.bytes));
  const expected = any().push(all);
  assert.equal(expected.length, FIXTURES.length - 1);
  const small = FIXTURES.filter((f) => f.bytes.length < 300 && f.fin);
  for (const f of small) {
    for (let cut = 0; cut <= f.bytes.length; cut++) {
      const p = any();
      const got = [...p.push(f.bytes.subarray(0, cut)), ...p.push(f.bytes.subarray(cut))];
      assert.equal(got.length, 1, `${f.name} cut at ${cut}`);
      assert.deepEqual(got[0]!.raw, f.bytes);
      assert.equal(p.buffered, 0);
    }
  }
  // one byte at a time across the whole stream
  const p = any();
  const got: Frame[] = [];
  for (let i = 0; i < all.length; i++) got.push(...p.push(all.subarray(i, i + 1)));
  assert.deepEqual(
    got.map((g) => g.raw),
    expected.map((e) => e.raw),
  );
});

test('readHeader: 7-, 16- and 64-bit lengths and when more bytes are needed', () => {
  assert.equal(readHeader(hex('81')), undefined);
  assert.equal(readHeader(hex('82 7e 01')), undefined);
  assert.equal(readHeader(hex('82 7f 00000000')), undefined);
  assert.equal(readHeader(hex('81 85 37fa')), undefined, 'mask key incomplete');
  assert.deepEqual(readHeader(hex('81 7d')), { fin: true, rsv: 0, opcode: 1, masked: false, headerLength: 2, payloadLength: 125 });
  assert.deepEqual(readHeader(hex('02 fe ffff 01020304')), { fin: false, rsv: 0, opcode: 2, masked: true, headerLength: 8, payloadLength: 65535 });
  assert.deepEqual(readHeader(hex('82 7f 0000000100000000')), { fin: true, rsv: 0, opcode: 2, masked: false, headerLength: 10, payloadLength: 2 ** 32 });
  assert.throws(() => readHeader(hex('82 7f 8000000000000000')), (e: unknown) => e instanceof FrameProtocolError && e.closeCode === CloseCode.ProtocolError);
});

test('encodeFrame picks the shortest length form and round-trips through the parser', () => {
  for (const [len, headerLen] of [
    [0, 2],
    [125, 2],
    [126, 4],
    [65535, 4],
    [65536, 10],
    [1 << 20, 10],
  ] as const) {
    const payload = Buffer.alloc(len, 0x61);
    for (const mask of [false, true]) {
      const bytes = encodeFrame({ opcode: Opcode.Binary, payload, mask });
      assert.equal(bytes.length, headerLen + (mask ? 4 : 0) + len, `len ${len} mask ${mask}`);
      const [f] = any().push(bytes);
      assert.equal(f!.payload.length, len);
      assert.ok(f!.payload.equals(payload));
      assert.equal(f!.masked, mask);
    }
  }
  // the RFC example, byte for byte, with its mask key
  assert.deepEqual(encodeFrame({ opcode: Opcode.Text, payload: 'Hello', mask: hex('37fa213d') }), hex('81 85 37fa213d 7f9f4d5158'));
  assert.deepEqual(encodeFrame({ opcode: Opcode.Text, payload: 'Hel', fin: false }), hex('01 03 48656c'));
});

test('fragmented message with a ping in the middle', () => {
  const stream = Buffer.concat([
    encodeFrame({ opcode: Opcode.Text, payload: 'Hel', fin: false, mask: true }),
    encodeFrame({ opcode: Opcode.Ping, payload: 'p', mask: true }),
    encodeFrame({ opcode: Opcode.Continuation, payload: 'lo', fin: false, mask: true }),
    encodeFrame({ opcode: Opcode.Continuation, payload: ' world', mask: true }),
    encodeFrame({ opcode: Opcode.Text, payload: 'next', mask: true }),
  ]);
  const frames = new FrameParser({ maxFrameBytes: 100, requireMask: true }).push(stream);
  assert.deepEqual(
    frames.map((f) => [f.opcode, f.fin, f.payload.toString()]),
    [
      [Opcode.Text, false, 'Hel'],
      [Opcode.Ping, true, 'p'],
      [Opcode.Continuation, false, 'lo'],
      [Opcode.Continuation, true, ' world'],
      [Opcode.Text, true, 'next'],
    ],
  );
});

const ERRORS: { name: string; bytes: Buffer; opts?: Partial<ConstructorParameters<typeof FrameParser>[0]>; code: number }[] = [
  { name: 'reserved opcode 0x3', bytes: hex('83 00'), code: CloseCode.ProtocolError },
  { name: 'reserved control opcode 0xb', bytes: hex('8b 00'), code: CloseCode.ProtocolError },
  { name: 'RSV1 without an extension', bytes: hex('c1 00'), code: CloseCode.ProtocolError },
  { name: 'RSV2', bytes: hex('a1 00'), opts: { allowRsv1: true }, code: CloseCode.ProtocolError },
  { name: 'fragmented ping', bytes: hex('09 00'), code: CloseCode.ProtocolError },
  { name: 'ping with 126 bytes', bytes: Buffer.concat([hex('89 7e 007e'), Buffer.alloc(126)]), code: CloseCode.ProtocolError },
  { name: 'continuation without a message', bytes: hex('80 00'), code: CloseCode.ProtocolError },
  { name: 'text while a message is open', bytes: hex('01 00 81 00'), code: CloseCode.ProtocolError },
  { name: 'unmasked client frame', bytes: hex('81 00'), opts: { requireMask: true }, code: CloseCode.ProtocolError },
  { name: 'masked server frame', bytes: hex('81 80 00000000'), opts: { requireMask: false }, code: CloseCode.ProtocolError },
  { name: 'frame over the size bound (known from the header alone)', bytes: hex('82 7f 0000000000100001'), opts: { maxFrameBytes: 1 << 20 }, code: CloseCode.TooBig },
];

for (const e of ERRORS) {
  test(`rejects ${e.name}`, () => {
    const p = new FrameParser({ maxFrameBytes: 1 << 20, ...e.opts });
    assert.throws(
      () => p.push(e.bytes),
      (err: unknown) => err instanceof FrameProtocolError && err.closeCode === e.code,
    );
    // a failed parser stays failed
    assert.throws(() => p.push(hex('81 00')), FrameProtocolError);
  });
}

test('RSV1 is accepted on a first data frame when permessage-deflate was negotiated', () => {
  const [f] = new FrameParser({ maxFrameBytes: 100, allowRsv1: true }).push(hex('c1 01 00'));
  assert.equal(f!.rsv, 4);
});

test('close payloads: code + reason, empty, and long reasons cut to 125 bytes on a character boundary', () => {
  assert.deepEqual(closePayload(1000, 'bye'), hex('03e8 627965'));
  assert.deepEqual(parseClosePayload(hex('03f3 6f6f7073')), { code: 1011, reason: 'oops' });
  assert.deepEqual(parseClosePayload(Buffer.alloc(0)), { code: 1005, reason: '' });
  const long = closePayload(1008, 'é'.repeat(100));
  assert.ok(long.length <= 125);
  assert.equal(parseClosePayload(long).reason, 'é'.repeat(61));
  const frame = encodeFrame({ opcode: Opcode.Close, payload: long });
  assert.equal(any().push(frame).length, 1, 'fits a control frame');
});

test('boundary tracker follows frames split anywhere and notices garbage', () => {
  const frames = [encodeFrame({ opcode: Opcode.Text, payload: 'a'.repeat(300), mask: true }), encodeFrame({ opcode: Opcode.Binary, payload: Buffer.alloc(70000) }), encodeFrame({ opcode: Opcode.Ping })];
  const stream = Buffer.concat(frames);
  for (const step of [1, 3, 7, 1000, stream.length]) {
    const t = new BoundaryTracker();
    const boundaries: number[] = [];
    for (let i = 0; i < stream.length; i += step) {
      t.push(stream.subarray(i, i + step));
      if (t.atBoundary) boundaries.push(Math.min(i + step, stream.length));
    }
    assert.ok(t.atBoundary, `step ${step}: ends on a boundary`);
    if (step === 1) assert.deepEqual(boundaries, [frames[0]!.length, frames[0]!.length + frames[1]!.length, stream.length]);
  }
  const t = new BoundaryTracker();
  t.push(hex('81 05 4865'));
  assert.equal(t.atBoundary, false);
  t.push(hex('6c6c6f'));
  assert.equal(t.atBoundary, true);
  t.push(hex('82 7f 8000000000000000'));
  assert.equal(t.lost, true);
  assert.equal(t.atBoundary, false);
});
