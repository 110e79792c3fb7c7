// The agent of bench/hop-floor.ts: answers every frame on its Unix socket at once, the replies to
// one read in one write. A JSON event (bench/peers/hop-floor-proxy.ts /json, /batch) is parsed, as
// Sentinel's SDK parses it, and answered with the SDK's plain-allow bytes around its
// correlation_id; a 4-byte event (/small) is answered with its own 4 bytes. No handshake: the
// floor's proxy does not send one. Transpiled with hop-floor-frames.ts by bench/hop-floor.ts; usage: node hop-floor-agent.js --socket PATH
import { createServer } from 'node:net';
import { rmSync } from 'node:fs';
import { frameSplitter } from './hop-floor-frames.ts';

const i = process.argv.indexOf('--socket');
const socketPath = i >= 0 ? process.argv[i + 1] : undefined;
if (!socketPath) throw new Error('usage: --socket PATH');

const AGENT_RESPONSE = 0x20;
const ALLOW_PREFIX = Buffer.from(
  '{"version":1,"decision":"allow","request_headers":[],"response_headers":[],"routing_metadata":{},"audit":{"tags":[],"rule_ids":[],"confidence":null,"reason_codes":[],"custom":{"correlation_id":"',
);
const ALLOW_SUFFIX = Buffer.from('"}},"needs_more":false,"request_body_mutation":null,"response_body_mutation":null}');

const server = createServer((socket) => {
  let replies: Buffer[] = [];
  const onData = frameSplitter(
    (buf, _type, start, end) => {
      if (end - start === 4) {
        const reply = Buffer.allocUnsafe(9);
        reply.writeUInt32BE(5, 0);
        reply[4] = AGENT_RESPONSE;
        buf.copy(reply, 5, start, end);
        replies.push(reply);
      } else {
        const event = JSON.parse(buf.toString('utf8', start, end)) as { correlation_id: string };
        const id = Buffer.from(event.correlation_id, 'latin1');
        const size = ALLOW_PREFIX.length + id.length + ALLOW_SUFFIX.length;
        const reply = Buffer.allocUnsafe(5 + size);
        reply.writeUInt32BE(size + 1, 0);
        reply[4] = AGENT_RESPONSE;
        ALLOW_PREFIX.copy(reply, 5);
        id.copy(reply, 5 + ALLOW_PREFIX.length);
        ALLOW_SUFFIX.copy(reply, 5 + ALLOW_PREFIX.length + id.length);
        replies.push(reply);
      }
    },
    () => {
      if (replies.length === 0) return;
      socket.write(replies.length === 1 ? replies[0]! : Buffer.concat(replies));
      replies = [];
    },
  );
  socket.on('data', onData);
  socket.on('error', () => socket.destroy());
});
rmSync(socketPath, { force: true });
server.listen(socketPath, () => process.stdout.write('listening\n'));
process.once('SIGTERM', () => process.exit(0));
