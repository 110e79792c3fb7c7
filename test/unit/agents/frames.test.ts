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

/** The frames of `bytes`, decoded as the agent would: [type, JSON payload]. */
function framesOf(bytes: Buffer): [number, unknown][] {
  return new FrameDecoder().push(bytes).map((f) => [f.type, parseJsonPayload(f.payload)]);
}

test('FrameWriter: frames written in one event-loop turn leave in one write, in order; a dead socket gets nothing', async () => {
  const writes: Buffer[] = [];
  const calls: string[] = [];
  const sink = {
    destroyed: false,
    write: (b: Buffer) => {
      writes.push(b);
      calls.push('write');
    },
    cork: () => calls.push('cork'),
    uncork: () => calls.push('uncork'),
  };
  const w = new FrameWriter(sink);
  w.write(encodeFrame(MessageType.RequestHeaders, { a: 1 }));
  w.writeMessage(MessageType.Cancel, { b: 'é→' }, 'json');
  w.write(encodeFrame(MessageType.Ping, { c: 3 }));
  w.writeMessage(MessageType.Pong, null, 'json');
  assert.equal(w.pending, true);
  assert.deepEqual(calls, [], 'nothing is written synchronously');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['write'], 'one write for the turn, no cork needed');
  assert.deepEqual(framesOf(writes[0]!), [
    [0x10, { a: 1 }],
    [0x40, { b: 'é→' }],
    [0x41, { c: 3 }],
    [0x42, null],
  ]);
  assert.equal(w.pending, false);

  calls.length = 0;
  writes.length = 0;
  w.writeMessage(MessageType.Pong, { s: 1 }, 'json');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['write'], 'a lone frame is a plain write');
  assert.deepEqual(writes[0], encodeFrame(MessageType.Pong, { s: 1 }), 'the same bytes as encodeFrame');

  calls.length = 0;
  w.write(encodeFrame(MessageType.Pong, {}));
  w.flush();
  assert.deepEqual(calls, ['write'], 'flush() writes at once');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['write'], 'and the scheduled flush finds nothing left');

  calls.length = 0;
  w.write(encodeFrame(MessageType.Pong, {}));
  sink.destroyed = true;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, []);
});

test('FrameWriter.hold/release: frames queued while held are written at release, in one write, without waiting for the turn', async () => {
  const writes: Buffer[] = [];
  const sink = { destroyed: false, write: (b: Buffer) => writes.push(b), cork: () => undefined, uncork: () => undefined };
  const w = new FrameWriter(sink);
  // a frame queued before the hold (e.g. an asynchronous handler's reply) goes with the held ones, first
  w.writeMessage(MessageType.Pong, { s: 0 }, 'json');
  w.hold();
  w.writeMessage(MessageType.AgentResponse, { n: 1 }, 'json');
  w.writeOneByteJson(MessageType.AgentResponse, '{"n":2}');
  assert.equal(writes.length, 0, 'nothing is written while held');
  w.release();
  assert.equal(writes.length, 1, 'one write at release');
  assert.deepEqual(framesOf(writes[0]!), [
    [0x42, { s: 0 }],
    [0x20, { n: 1 }],
    [0x20, { n: 2 }],
  ]);
  await new Promise((r) => setImmediate(r));
  assert.equal(writes.length, 1, 'the turn has nothing left to write');

  // held with nothing queued: release writes nothing, and later frames take the per-turn write again
  w.hold();
  w.release();
  assert.equal(writes.length, 1);
  w.writeMessage(MessageType.Ping, { s: 3 }, 'json');
  assert.equal(w.pending, true);
  assert.equal(writes.length, 1, 'after release the writer batches per turn again');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(framesOf(writes[1]!), [[0x41, { s: 3 }]]);

  // a held writer whose socket died drops its frames, as a scheduled write would
  w.hold();
  w.writeMessage(MessageType.Ping, { s: 4 }, 'json');
  sink.destroyed = true;
  w.release();
  assert.equal(writes.length, 2);
});

test('FrameWriter: a turn of more than 64 KiB is corked frame by frame instead of copied into one buffer', async () => {
  const writes: Buffer[] = [];
  const calls: string[] = [];
  const sink = { destroyed: false, write: (b: Buffer) => (writes.push(b), calls.push('write')), cork: () => calls.push('cork'), uncork: () => calls.push('uncork') };
  const w = new FrameWriter(sink);
  const big = 'x'.repeat(40 * 1024);
  w.writeMessage(MessageType.RequestBodyChunk, { data: big }, 'json');
  w.write(encodeFrame(MessageType.RequestBodyChunk, { data: big }));
  w.writeMessage(MessageType.Cancel, { n: 1 }, 'json');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['cork', 'write', 'write', 'write', 'uncork']);
  assert.deepEqual(framesOf(Buffer.concat(writes)), [
    [0x11, { data: big }],
    [0x11, { data: big }],
    [0x40, { n: 1 }],
  ]);
});

test('FrameWriter.writeMessage: a payload that cannot be serialised throws and queues nothing', async () => {
  const writes: Buffer[] = [];
  const w = new FrameWriter({ destroyed: false, write: (b: Buffer) => writes.push(b), cork: () => undefined, uncork: () => undefined });
  assert.throws(() => w.writeMessage(MessageType.RequestHeaders, { n: 1n }, 'json'), TypeError);
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  assert.throws(() => w.writeMessage(MessageType.RequestHeaders, cycle, 'json'), TypeError);
  assert.equal(w.pending, false);
  w.writeMessage(MessageType.Ping, { ok: true }, 'json');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(framesOf(Buffer.concat(writes)), [[0x41, { ok: true }]]);
});

test('FrameDecoder.feed: each frame as a view of the chunk, frames before a broken one are visited, a large frame is joined once', () => {
  const a = encodeFrame(MessageType.AgentResponse, { x: 1 });
  const b = encodeFrame(MessageType.Pong, { y: 2 });
  const seen: [number, string][] = [];
  const visit = (type: number, buf: Buffer, start: number, end: number) => seen.push([type, buf.toString('utf8', start, end)]);
  const d = new FrameDecoder(1024);
  const broken = Buffer.alloc(5);
  broken.writeUInt32BE(1025, 0);
  assert.throws(() => d.feed(Buffer.concat([a, b, broken]), visit), (e: unknown) => e instanceof FrameError && e.kind === 'oversized');
  assert.deepEqual(seen, [
    [0x20, '{"x":1}'],
    [0x42, '{"y":2}'],
  ]);

  // A frame in many chunks: nothing visited until its last byte, then exactly that frame.
  seen.length = 0;
  const large = encodeFrame(MessageType.RequestBodyChunk, { data: 'z'.repeat(5000) });
  const d2 = new FrameDecoder();
  const wire = Buffer.concat([large, a]);
  for (let i = 0; i < wire.length; i += 997) d2.feed(wire.subarray(i, i + 997), visit);
  assert.deepEqual(
    seen.map(([t, s]) => [t, s.length]),
    [
      [0x11, large.length - 5],
      [0x20, a.length - 5],
    ],
  );
  assert.equal(d2.bufferedBytes, 0);
});

test('FrameWriter: frames written from text carry the bytes encodeFrame writes, at every header size; one-byte JSON as latin1', async () => {
  const writes: Buffer[] = [];
  const sink = { destroyed: false, write: (b: Buffer) => void writes.push(b), cork: () => {}, uncork: () => {} };
  const w = new FrameWriter(sink);
  // payload lengths whose u32 header uses one, two, three bytes (0x01_00_00 and up), UTF-8 and one-byte text
  for (const n of [3, 300, 70_000, 0x012345]) {
    for (const text of ['x'.repeat(n), 'é'.repeat(n)]) {
      writes.length = 0;
      w.writeMessage(MessageType.Cancel, { t: text }, 'json');
      w.writeMessage(MessageType.Pong, { n }, 'json');
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(Buffer.concat(writes), Buffer.concat([encodeFrame(MessageType.Cancel, { t: text }), encodeFrame(MessageType.Pong, { n })]), `${n} ${text[0]}`);
    }
  }
  writes.length = 0;
  const json = JSON.stringify({ decision: 'allow', id: ' !#~' });
  w.writeOneByteJson(MessageType.AgentResponse, json);
  w.writeOneByteJson(MessageType.AgentResponse, json);
  await new Promise((r) => setImmediate(r));
  const one = encodeFrame(MessageType.AgentResponse, JSON.parse(json));
  assert.deepEqual(writes, [Buffer.concat([one, one])]);
});

/** Feeds `wire` to `d` as a socket read through one reused buffer of `size` bytes would: each read overwrites the buffer (the rest filled with junk). */
function feedThroughReusedBuffer(d: FrameDecoder, wire: Buffer, size: number, cuts: number[]): [number, string][] {
  const got: [number, string][] = [];
  const buf = Buffer.alloc(size);
  const visit = (type: number, b: Buffer, start: number, end: number) => got.push([type, b.toString('utf8', start, end)]);
  let at = 0;
  for (const cut of [...cuts, wire.length]) {
    while (at < cut) {
      const n = Math.min(size, cut - at);
      buf.fill(0x7e);
      wire.copy(buf, 0, at, at + n);
      d.feed(buf, visit, n, true);
      at += n;
    }
  }
  return got;
}

test('FrameDecoder.feed, transient reads (a reused read buffer): split frames, several frames per read, a frame larger than the buffer', () => {
  const payloads = ['{"a":1}', '{"b":"' + 'x'.repeat(300) + '"}', '{"c":3}', '{"big":"' + 'y'.repeat(5000) + '"}', '{"d":4}'];
  const wire = Buffer.concat(payloads.map((p, i) => encodeFrame(MessageType.AgentResponse + (i % 2), JSON.parse(p))));
  const want = payloads.map((p, i) => [MessageType.AgentResponse + (i % 2), p]);
  // a 64-byte buffer: most frames span reads, the 5 KiB one spans ~80 of them
  for (const cuts of [[], [3], [4], [5], [6], [12, 13], [20, 400, 401]]) {
    const d = new FrameDecoder();
    assert.deepEqual(feedThroughReusedBuffer(d, wire, 64, cuts), want, `64-byte reads, cuts ${cuts}`);
    assert.equal(d.bufferedBytes, 0);
  }
  // a buffer larger than the wire: several frames in one read, and a frame cut at every offset
  for (let cut = 1; cut < wire.length; cut += 7) {
    const d = new FrameDecoder();
    assert.deepEqual(feedThroughReusedBuffer(d, wire, 64 * 1024, [cut]), want, `one cut at ${cut}`);
  }
  // bytes past `length` in the buffer are not read
  const d = new FrameDecoder();
  const one = encodeFrame(MessageType.Pong, { s: 1 });
  const buf = Buffer.concat([one, Buffer.from([0, 0, 0, 0, 0])]);
  const seen: number[] = [];
  d.feed(buf, (type) => seen.push(type), one.length, true);
  assert.deepEqual(seen, [MessageType.Pong]);
  assert.equal(d.bufferedBytes, 0);
});
