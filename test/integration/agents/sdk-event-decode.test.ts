// The SDK reads request_headers events in the gateway's layout by hand (event-decoder.ts) and any
// other JSON with JSON.parse: a handler sees the same event either way, and a payload that is not
// JSON is still ignored (no reply) without hurting the connection.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import { RequestHeadersMessage, encodeRequestHeadersJson, plainAllowCorrelationId } from '../../../src/agent-protocol/messages.ts';
import { allow, runAgent } from '../../../src/agent-sdk/index.ts';
import { tempDir } from './harness.ts';
import { sampleMetadata } from '../../helpers/agent-events.ts';
import { frame } from '../../helpers/agent-frames.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

/** Reads reply frames off `sock` and hands out their correlation ids in arrival order. */
function replies(sock: Socket): () => Promise<string> {
  let buf = Buffer.alloc(0);
  const ids: string[] = [];
  const waiting: ((id: string) => void)[] = [];
  sock.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const len = buf.readUInt32BE(0);
      const type = buf[4];
      const payload = buf.subarray(5, 4 + len);
      buf = buf.subarray(4 + len);
      if (type !== MessageType.AgentResponse) continue;
      const id = plainAllowCorrelationId(payload) ?? (JSON.parse(payload.toString()) as { audit: { custom: { correlation_id: string } } }).audit.custom.correlation_id;
      const w = waiting.shift();
      if (w) w(id);
      else ids.push(id);
    }
  });
  return () => (ids.length ? Promise.resolve(ids.shift()!) : new Promise((ok) => waiting.push(ok)));
}

test('a handler sees the JSON.parse event for the gateway layout and for any other; non-JSON is ignored', async () => {
  const seen: string[] = [];
  const agent = await runAgent({
    socketPath: join(tmp.dir, 'decode.sock'),
    name: 'decode',
    log: () => undefined,
    onRequestHeaders(event) {
      seen.push(JSON.stringify(event));
      // the event is an ordinary object: spread, keys, mutation
      assert.deepEqual(Object.keys({ ...event }), Object.keys(event));
      event.headers['x-added'] = ['1'];
      return allow();
    },
  });
  const sock = connect(agent.socketPath);
  await new Promise<void>((ok) => sock.once('connect', () => ok()));
  const next = replies(sock);
  sock.write(frame(MessageType.HandshakeRequest, JSON.stringify({ supported_versions: [2], proxy_id: 't', proxy_version: '0', config: null, supported_encodings: ['json'] })));
  // the handshake reply is not an AgentResponse; wait until the agent answers the first event
  const metadata = sampleMetadata({ correlation_id: 'g1', request_id: 'g1', client_port: 40001, timestamp: '2026-12-06T07:00:00.000Z' });
  const gateway = encodeRequestHeadersJson(new RequestHeadersMessage('g1', metadata, 'GET', '/a', { host: 'h', 'set-cookie': ['a', 'b'] }));
  const other = JSON.stringify({ metadata: { ...metadata, correlation_id: 'o1', request_id: 'o1' }, method: 'POST', uri: '/b', headers: { host: ['h'] }, correlation_id: 'o1' }, null, 1);
  const escaped = gateway.replaceAll('g1', 'e1').replace('"h"', '"h\\u00e9"');
  const nonAscii = gateway.replaceAll('g1', 'n1').replace('"h"', '"日本"');
  sock.write(
    Buffer.concat([
      frame(MessageType.RequestHeaders, gateway),
      frame(MessageType.RequestHeaders, gateway.slice(0, -1)), // not JSON: ignored
      frame(MessageType.RequestHeaders, other),
      frame(MessageType.RequestHeaders, escaped),
      frame(MessageType.RequestHeaders, nonAscii),
    ]),
  );
  assert.deepEqual([await next(), await next(), await next(), await next()], ['g1', 'o1', 'e1', 'n1']);
  assert.deepEqual(
    seen,
    [gateway, other, escaped, nonAscii].map((s) => JSON.stringify(JSON.parse(s))),
  );
  sock.destroy();
  await agent.close();
});

test('the plain allow for an event read by hand and for one read by JSON.parse: JSON.stringify(allow().toWire(id)) byte for byte', async () => {
  // The hand reader takes only printable ASCII without quotes or backslashes, so the SDK writes the
  // template for its ids unchecked; ids from JSON.parse (escapes, non-ASCII) are checked as before.
  const agent = await runAgent({ socketPath: join(tmp.dir, 'reply-bytes.sock'), name: 'reply-bytes', log: () => undefined, onRequestHeaders: () => allow() });
  const sock = connect(agent.socketPath);
  await new Promise<void>((ok) => sock.once('connect', () => ok()));
  const payloads: Buffer[] = [];
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  sock.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const len = buf.readUInt32BE(0);
      if (buf[4] === MessageType.AgentResponse) payloads.push(Buffer.from(buf.subarray(5, 4 + len)));
      buf = buf.subarray(4 + len);
    }
    wake?.();
  });
  sock.write(frame(MessageType.HandshakeRequest, JSON.stringify({ supported_versions: [2], proxy_id: 't', proxy_version: '0', config: null, supported_encodings: ['json'] })));
  const event = (id: string): string => encodeRequestHeadersJson(new RequestHeadersMessage(id, sampleMetadata({ correlation_id: id, request_id: id }), 'GET', '/', { host: 'h' }));
  // the gateway's layout (by hand), then ids only JSON.parse reads (an escaped quote, a backslash,
  // non-ASCII) between hand-read ones, so a hand-read event's id never leaks into the next reply
  const ids = ['g-1', 'q"1', 'g-2', 'b\\1', 'ü-1', 'g-3'];
  const frames = ids.map((id) => {
    const text = event(id);
    assert.equal(text.includes(JSON.stringify(id)), true);
    return frame(MessageType.RequestHeaders, text);
  });
  sock.write(Buffer.concat(frames));
  while (payloads.length < ids.length) await new Promise<void>((ok) => (wake = ok));
  assert.deepEqual(
    payloads.map((p) => p.toString('utf8')),
    ids.map((id) => JSON.stringify(allow().toWire(id))),
  );
  sock.destroy();
  await agent.close();
});
