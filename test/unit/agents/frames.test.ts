import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, FrameError, FrameWriter, MessageType, encodeFrame, parseJsonPayload } from '../../../src/agent-protocol/frames.ts';

test('encodeFrame writes u32 BE length (payload + 1), the type byte, then JSON', () => {
  const f = encodeFrame(MessageType.Ping, { sequence: 7 });
  const json = Buffer.from('{"sequence":7}');
  assert.equal(f.readUInt32BE(0), json.length + 1);
  assert.equal(f[4], 0x41);
  assert.deepEqual(f.subarray(5), json);
});

test('decoder returns whole frames whatever the chunking', () => {
  const a = encodeFrame(MessageType.AgentResponse, { decision: 'allow', audit: { custom: { correlation_id: 'a' } } });
  const b = encodeFrame(MessageType.Pong, { sequence: 1 });
  const wire = Buffer.concat([a, b]);
  for (const size of [1, 2, 3, 5, 7, wire.length]) {
    const d = new FrameDecoder();
    const frames = [];
    for (let i = 0; i < wire.length; i += size) frames.push(...d.push(wire.subarray(i, i + size)));
    assert.deepEqual(
      frames.map((f) => [f.type, parseJsonPayload(f.payload)]),
      [
        [0x20, { decision: 'allow', audit: { custom: { correlation_id: 'a' } } }],
        [0x42, { sequence: 1 }],
      ],
      `chunk size ${size}`,
    );
    assert.equal(d.bufferedBytes, 0);
  }
});

test('a half-written frame stays buffered until the rest arrives', () => {
  const f = encodeFrame(MessageType.Ping, { sequence: 1 });
  const d = new FrameDecoder();
  assert.deepEqual(d.push(f.subarray(0, 8)), []);
  assert.equal(d.bufferedBytes, 8);
  assert.equal(d.push(f.subarray(8)).length, 1);
});

test('zero length and oversized frames are fatal FrameErrors', () => {
  const zero = Buffer.from([0, 0, 0, 0, 0x20]);
  assert.throws(() => new FrameDecoder().push(zero), (e: unknown) => e instanceof FrameError && e.kind === 'zero_length');
  const big = Buffer.alloc(5);
  big.writeUInt32BE(1025, 0);
  assert.throws(() => new FrameDecoder(1024).push(big), (e: unknown) => e instanceof FrameError && e.kind === 'oversized');
  // the protocol maximum is 16 MiB
  const huge = Buffer.alloc(4);
  huge.writeUInt32BE(16 * 1024 * 1024 + 1, 0);
  assert.throws(() => new FrameDecoder().push(huge), FrameError);
});

test('a payload that is not JSON parses to undefined', () => {
  assert.equal(parseJsonPayload(Buffer.from('{nope')), undefined);
  assert.deepEqual(parseJsonPayload(Buffer.from('{"a":1}')), { a: 1 });
});

test('FrameWriter: frames written in one event-loop turn leave together, in order, corked; a dead socket gets nothing', async () => {
  const calls: string[] = [];
  const sink = { destroyed: false, write: (b: Buffer) => calls.push(`write ${b.readUInt8(4).toString(16)}`), cork: () => calls.push('cork'), uncork: () => calls.push('uncork') };
  const w = new FrameWriter(sink);
  w.write(encodeFrame(MessageType.RequestHeaders, { a: 1 }));
  w.write(encodeFrame(MessageType.Cancel, { b: 2 }));
  w.write(encodeFrame(MessageType.Ping, { c: 3 }));
  assert.deepEqual(calls, [], 'nothing is written synchronously');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['cork', 'write 10', 'write 40', 'write 41', 'uncork']);

  calls.length = 0;
  w.write(encodeFrame(MessageType.Pong, {}));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['write 42'], 'a lone frame is a plain write');

  calls.length = 0;
  w.write(encodeFrame(MessageType.Pong, {}));
  w.flush();
  assert.deepEqual(calls, ['write 42'], 'flush() writes at once');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['write 42'], 'and the scheduled flush finds nothing left');

  calls.length = 0;
  w.write(encodeFrame(MessageType.Pong, {}));
  sink.destroyed = true;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, []);
});
