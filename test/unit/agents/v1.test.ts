// Protocol v1 framing and envelopes (sentinel-reference.md §2.3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import { V1Decoder, V1FrameError, encodeV1, v1Request } from '../../../src/agent-protocol/v1.ts';

test('encodeV1: 4-byte big-endian length + UTF-8 JSON', () => {
  const f = encodeV1({ a: 'é' });
  assert.deepEqual([...f.subarray(0, 4)], [0, 0, 0, 10]);
  assert.equal(f.subarray(4).toString('utf8'), '{"a":"é"}');
});

test('V1Decoder: whole, split and coalesced messages; oversized lengths are fatal', () => {
  const a = encodeV1({ n: 1 });
  const b = encodeV1({ n: 2 });
  const d = new V1Decoder();
  assert.deepEqual(d.push(a.subarray(0, 3)), []);
  assert.deepEqual(d.push(a.subarray(3, 7)), []);
  const both = d.push(Buffer.concat([a.subarray(7), b]));
  assert.deepEqual(
    both.map((m) => JSON.parse(m.toString()) as unknown),
    [{ n: 1 }, { n: 2 }],
  );
  assert.equal(d.bufferedBytes, 0);
  const small = new V1Decoder(16);
  assert.throws(() => small.push(Buffer.from([0, 0, 0, 17])), V1FrameError);
});

test('v1Request: event type names, v2-only fields dropped where v1 has none', () => {
  const cases: [number, unknown, unknown][] = [
    [MessageType.RequestHeaders, { correlation_id: 'c', metadata: { correlation_id: 'c' }, method: 'GET', uri: '/', headers: {} }, { version: 1, event_type: 'request_headers', payload: { metadata: { correlation_id: 'c' }, method: 'GET', uri: '/', headers: {} } }],
    [MessageType.Configure, { correlation_id: 'x', agent_id: 'a', config: { k: 1 }, config_version: null }, { version: 1, event_type: 'configure', payload: { agent_id: 'a', config: { k: 1 } } }],
    [MessageType.ResponseBodyChunk, { correlation_id: 'c', data: '', is_last: true }, { version: 1, event_type: 'response_body_chunk', payload: { correlation_id: 'c', data: '', is_last: true } }],
    [MessageType.RequestComplete, { correlation_id: 'c', status: 200 }, { version: 1, event_type: 'request_complete', payload: { correlation_id: 'c', status: 200 } }],
  ];
  for (const [type, payload, want] of cases) assert.deepEqual(v1Request(type, payload), want);
  assert.throws(() => v1Request(MessageType.Ping, {}), /no v1 event/);
});
