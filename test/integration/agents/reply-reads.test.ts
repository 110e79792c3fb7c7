// The gateway reads agent replies into one reused buffer per connection (net's `onread`), so a
// frame that spans reads must be kept as a copy, never as a view of that buffer. An agent on a
// real socket writes its replies cut at awkward places: a reply split across two writes (the
// second written only once the first was read), several replies in one write, and replies larger
// than the read buffer; every call must get its own reply, byte for byte.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { createServer, type Server, type Socket } from 'node:net';
import { AgentConnection, READ_BUFFER_BYTES } from '../../../src/agent-protocol/connection.ts';
import { FrameDecoder, MessageType, encodeFrame, parseJsonPayload } from '../../../src/agent-protocol/frames.ts';
import { allowReplyText } from '../../../src/agent-protocol/messages.ts';
import { tempDir } from './harness.ts';

const tmp = tempDir();
let server: Server;
let agentSide: Socket | undefined;
let conn: AgentConnection;
/** correlation ids of the events the agent has seen, in order */
const events: string[] = [];
let onEvent: (() => void) | undefined;

const plainAllow = (cid: string) => encodeFrame(MessageType.AgentResponse, Buffer.from(allowReplyText(cid)!, 'latin1'));
/** A reply the gateway parses (not the plain allow): a tag of `size` characters. */
const tagged = (cid: string, size: number) => encodeFrame(MessageType.AgentResponse, { version: 1, decision: 'allow', audit: { tags: [`${cid}:${'t'.repeat(size)}`], custom: { correlation_id: cid } } });

before(async () => {
  server = createServer((socket) => {
    const decoder = new FrameDecoder();
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk)) {
        if (frame.type === MessageType.HandshakeRequest) {
          agentSide = socket;
          socket.write(encodeFrame(MessageType.HandshakeResponse, { protocol_version: 2, capabilities: { agent_id: 'cut', name: 'cut', version: '0', supported_events: [0], features: {}, limits: {} }, success: true, error: null, encoding: 'json' }));
          continue;
        }
        events.push(String((parseJsonPayload(frame.payload) as { correlation_id?: unknown }).correlation_id));
        onEvent?.();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(join(tmp.dir, 'cut.sock'), resolve));
  conn = new AgentConnection({
    socketPath: join(tmp.dir, 'cut.sock'),
    connectTimeoutMs: 2000,
    handshake: { supported_versions: [2], proxy_id: 't', proxy_version: '0', config: null, supported_encodings: ['json'] },
  });
  await conn.open();
});

after(async () => {
  conn.close();
  agentSide?.destroy();
  await new Promise((resolve) => server.close(resolve));
  tmp.cleanup();
});

/** Sends events for `cids` and resolves once the agent has seen all of them. */
async function sendEvents(cids: string[]) {
  const seen = new Promise<void>((resolve) => {
    onEvent = () => {
      if (cids.every((c) => events.includes(c))) resolve();
    };
  });
  const replies = cids.map((cid) => conn.request(MessageType.RequestHeaders, cid, { correlation_id: cid }));
  await seen;
  return replies;
}

test('a reply split across reads: its start is kept while later reads overwrite the buffer', async () => {
  const [first, second] = await sendEvents(['s-1', 's-2']);
  const a = plainAllow('s-1');
  const b = tagged('s-2', 100);
  // s-1 whole plus the first half of s-2; the rest of s-2 only after s-1's reply was read
  agentSide!.write(Buffer.concat([a, b.subarray(0, 40)]));
  assert.equal((await first!).correlationId, 's-1');
  // the next read starts at the buffer's offset 0 again, over the bytes of the first
  agentSide!.write(b.subarray(40));
  const r = await second!;
  assert.equal(r.correlationId, 's-2');
  assert.deepEqual(r.tags, [`s-2:${'t'.repeat(100)}`]);
  // a plain allow cut inside its template, then inside its id
  const [third] = await sendEvents(['s-3']);
  const c = plainAllow('s-3');
  agentSide!.write(c.subarray(0, 100));
  await new Promise((resolve) => setImmediate(resolve));
  agentSide!.write(c.subarray(100, c.length - 90));
  await new Promise((resolve) => setImmediate(resolve));
  agentSide!.write(c.subarray(c.length - 90));
  assert.equal((await third!).correlationId, 's-3');
  assert.equal(conn.inFlight, 0);
});

test('several replies in one write, plain and parsed, in any order of ids', async () => {
  const cids = Array.from({ length: 40 }, (_, i) => `m-${i}`);
  const replies = await sendEvents(cids);
  const frames = [...cids].reverse().map((cid, i) => (i % 3 === 0 ? tagged(cid, i) : plainAllow(cid)));
  agentSide!.write(Buffer.concat(frames));
  const got = await Promise.all(replies);
  assert.deepEqual(
    got.map((r) => r.correlationId),
    cids,
  );
  for (const r of got) assert.equal(r.decision.kind, 'allow');
  assert.equal(conn.inFlight, 0);
});

test('replies larger than the read buffer, between small ones in the same writes', async () => {
  const big = READ_BUFFER_BYTES * 2 + 123;
  const replies = await sendEvents(['l-1', 'l-2', 'l-3', 'l-4']);
  const wire = Buffer.concat([plainAllow('l-1'), tagged('l-2', big), plainAllow('l-3'), tagged('l-4', READ_BUFFER_BYTES - 20)]);
  // cut across the big frame's header and body, so reads start in its middle
  agentSide!.write(wire.subarray(0, 300));
  agentSide!.write(wire.subarray(300, READ_BUFFER_BYTES + 7));
  agentSide!.write(wire.subarray(READ_BUFFER_BYTES + 7));
  const got = await Promise.all(replies);
  assert.deepEqual(
    got.map((r) => r.correlationId),
    ['l-1', 'l-2', 'l-3', 'l-4'],
  );
  assert.deepEqual(got[1]!.tags, [`l-2:${'t'.repeat(big)}`]);
  assert.deepEqual(got[3]!.tags, [`l-4:${'t'.repeat(READ_BUFFER_BYTES - 20)}`]);
  assert.equal(conn.inFlight, 0);
  assert.ok(conn.alive);
});
