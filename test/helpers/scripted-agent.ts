// A fake agent for tests that script its replies: agent protocol v2 in JSON on a Unix socket,
// using the gateway's own frame codec (src/agent-protocol/frames.ts). It handshakes (declaring
// `events`), answers pings, and writes whatever the test's `reply` gives for every other frame.
import net from 'node:net';
import { FrameDecoder, MessageType, encodeFrame, parseJsonPayload } from '../../src/agent-protocol/frames.ts';

/** A frame's reply (an AgentResponse body without version and audit), or undefined to send none. */
export type ScriptedReply = (type: number, body: Record<string, unknown>) => Record<string, unknown> | undefined;

/**
 * Listens on `socketPath`; each connection gets its own `reply` from `perConnection` (state kept
 * across a request's frames, e.g. the last request's path). Every reply goes out as an
 * AgentResponse carrying the frame's correlation id.
 */
export async function startScriptedAgent(socketPath: string, perConnection: () => ScriptedReply, events: readonly number[] = [0, 1, 2, 3, 4]): Promise<net.Server> {
  const server = net.createServer((socket) => {
    const decoder = new FrameDecoder();
    const reply = perConnection();
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk) => {
      for (const frame of decoder.push(chunk)) {
        const body = (parseJsonPayload(frame.payload) ?? {}) as Record<string, unknown>;
        if (frame.type === MessageType.HandshakeRequest) {
          socket.write(encodeFrame(MessageType.HandshakeResponse, { protocol_version: 2, capabilities: { agent_id: 'h', name: 'h', version: '0', supported_events: events, features: {}, limits: {} }, success: true, error: null, encoding: 'json' }));
          continue;
        }
        if (frame.type === MessageType.Ping) {
          socket.write(encodeFrame(MessageType.Pong, body));
          continue;
        }
        const answer = reply(frame.type, body);
        if (answer === undefined) continue;
        const cid = String(body.correlation_id ?? '');
        socket.write(encodeFrame(MessageType.AgentResponse, { version: 1, ...answer, audit: { custom: { correlation_id: cid } } }));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}
