// MessagePack encoding end to end: an SDK agent process that prefers msgpack, the real gateway with
// `encoding "msgpack"` on the agent, and a recording relay on the socket in between, so the test
// sees the actual bytes: a JSON handshake offering ["json","msgpack"], the agent choosing
// msgpack, then MessagePack payloads both ways. An agent block without the option is offered JSON
// only and stays on JSON.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { AgentConnection } from '../../../src/agent-protocol/connection.ts';
import { FrameDecoder, MessageType, encodeFrame, type Frame } from '../../../src/agent-protocol/frames.ts';
import { decodeMsgpack } from '../../../src/agent-protocol/msgpack.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { closeServer, startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { send, spawnAgent, tempDir, type AgentProcess } from './harness.ts';

const tmp = tempDir();
let mp: AgentProcess;
let up: TestUpstream;
let gw: Gateway;
let port: number;

/** Relays a unix socket to another, decoding the frames seen in each direction. */
async function recordingRelay(listenPath: string, targetPath: string): Promise<{ server: Server; toAgent: Frame[]; toProxy: Frame[] }> {
  const toAgent: Frame[] = [];
  const toProxy: Frame[] = [];
  const server = createServer((client) => {
    const agentSide = connect(targetPath);
    const down = new FrameDecoder();
    const upDec = new FrameDecoder();
    client.on('data', (c: Buffer) => {
      toAgent.push(...down.push(c));
      agentSide.write(c);
    });
    agentSide.on('data', (c: Buffer) => {
      toProxy.push(...upDec.push(c));
      client.write(c);
    });
    client.on('close', () => agentSide.destroy());
    agentSide.on('close', () => client.destroy());
    client.on('error', () => agentSide.destroy());
    agentSide.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(listenPath, r));
  return { server, toAgent, toProxy };
}

let mpRelay: Awaited<ReturnType<typeof recordingRelay>>;
let jsonRelay: Awaited<ReturnType<typeof recordingRelay>>;

before(async () => {
  mp = await spawnAgent('test/integration/agents/fixtures/response-agent.ts', ['--socket', join(tmp.dir, 'mp.sock'), '--msgpack']);
  mpRelay = await recordingRelay(join(tmp.dir, 'mp-relay.sock'), join(tmp.dir, 'mp.sock'));
  jsonRelay = await recordingRelay(join(tmp.dir, 'js-relay.sock'), join(tmp.dir, 'mp.sock'));
  up = await startUpstream((req, res) => {
    const text = new URL(req.url!, 'http://x').searchParams.get('text') ?? 'hi';
    const body = JSON.stringify({ text });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  });
  gw = await startGateway({
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
agents {
  agent "mp" { unix-socket "${join(tmp.dir, 'mp-relay.sock')}"; encoding "msgpack"; events "request_headers" "response_headers" "response_body"; timeout-ms 3000; pool { connections-per-agent 1 } }
  agent "js" { unix-socket "${join(tmp.dir, 'js-relay.sock')}"; events "request_headers" "response_headers"; timeout-ms 3000; pool { connections-per-agent 1 } }
}
filters {
  filter "mp" { type "agent"; agent "mp"; failure-mode "closed" }
  filter "js" { type "agent"; agent "js"; failure-mode "closed" }
}
routes {
  route "js" { matches { path-prefix "/js/" }; upstream "backend"; filters "js" }
  route "mp" { matches { path-prefix "/" }; upstream "backend"; filters "mp" }
}
upstreams { upstream "backend" { target "127.0.0.1:${up.port}" } }
`,
  });
  port = gw.address('http').port;
});

after(async () => {
  await gw?.close();
  await up?.close();
  mpRelay?.server.close();
  jsonRelay?.server.close();
  await mp?.stop();
  tmp.cleanup();
});

const json = (f: Frame) => JSON.parse(f.payload.toString('utf8')) as Record<string, unknown>;

test('msgpack agent: allow with header ops, body block and body mutation all work', async () => {
  const ok = await send(port, '/a?text=fine');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-agent-status-seen'], '200', 'response_headers reply decoded from msgpack');
  assert.equal(ok.headers['x-agent-saw-bytes'], String(JSON.stringify({ text: 'fine' }).length));
  const blocked = await send(port, '/a?text=forbidden');
  assert.equal(blocked.status, 451);
  assert.equal(blocked.body.toString(), 'response blocked');
  const mutated = await send(port, '/a?text=mutate-me');
  assert.equal(mutated.body.toString(), JSON.stringify({ text: 'MUTATED' }));
});

test('on the wire: JSON handshake offering msgpack, the agent picks it, MessagePack payloads after', () => {
  const hello = mpRelay.toAgent[0]!;
  assert.equal(hello.type, MessageType.HandshakeRequest);
  assert.deepEqual(json(hello).supported_encodings, ['json', 'msgpack']);
  const answer = mpRelay.toProxy[0]!;
  assert.equal(answer.type, MessageType.HandshakeResponse);
  assert.equal(json(answer).encoding, 'msgpack');
  const later = [...mpRelay.toAgent.slice(1), ...mpRelay.toProxy.slice(1)];
  assert.ok(later.length >= 6);
  const types = new Set(mpRelay.toAgent.slice(1).map((f) => f.type));
  for (const t of [MessageType.RequestHeaders, MessageType.ResponseHeaders, MessageType.ResponseBodyChunk]) assert.ok(types.has(t), `saw type 0x${t.toString(16)}`);
  for (const f of later) {
    assert.throws(() => JSON.parse(f.payload.toString('utf8')), SyntaxError, 'not JSON');
    const v = decodeMsgpack(f.payload) as Record<string, unknown>;
    assert.equal(typeof v, 'object');
  }
  const event = decodeMsgpack(mpRelay.toAgent.find((f) => f.type === MessageType.ResponseBodyChunk)!.payload) as Record<string, unknown>;
  assert.equal(typeof event.data, 'string', 'body data stays a base64 string');
  assert.equal(event.is_last, true);
});

test('without the option the proxy offers JSON only and the same agent stays on JSON', async () => {
  const r = await send(port, '/js/x');
  assert.equal(r.status, 200);
  assert.deepEqual(json(jsonRelay.toAgent[0]!).supported_encodings, ['json']);
  assert.equal(json(jsonRelay.toProxy[0]!).encoding, 'json');
  const later = [...jsonRelay.toAgent.slice(1), ...jsonRelay.toProxy.slice(1)];
  assert.ok(later.length >= 2);
  for (const f of later) assert.equal(typeof json(f), 'object');
});

test('a handshake answer naming an encoding that was not offered fails the connection', async () => {
  for (const [offered, answered] of [
    [['json'], 'msgpack'],
    [['json', 'msgpack'], 'cbor'],
  ] as [string[], string][]) {
    const path = join(tmp.dir, `fake-${answered}.sock`);
    const server = createServer((s) => {
      s.once('data', () =>
        s.write(
          encodeFrame(MessageType.HandshakeResponse, {
            protocol_version: 2,
            success: true,
            error: null,
            encoding: answered,
            capabilities: { agent_id: 'fake', name: 'fake', version: '0', supported_events: [1], features: {}, limits: {} },
          }),
        ),
      );
    });
    await new Promise<void>((r) => server.listen(path, r));
    const issues: string[] = [];
    const conn = new AgentConnection({
      socketPath: path,
      connectTimeoutMs: 2000,
      handshake: { supported_versions: [2], proxy_id: 'test', proxy_version: '0', config: null, supported_encodings: offered },
      onProtocolIssue: (i) => issues.push(i),
    });
    await assert.rejects(conn.open(), /chose encoding/);
    assert.deepEqual(issues, ['bad_handshake']);
    await closeServer(server);
  }
});
