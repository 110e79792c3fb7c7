// A raw agent-protocol client for the instruction benches (bench/agent-sdk-instr.ts,
// bench/waf-bridge-instr.ts): writes pre-encoded frames to an agent's Unix socket, one write per
// batch as the gateway's FrameWriter sends a turn's events, and waits until as many reply frames
// came back. It counts frames only: the benches measure the agent's side, not reply handling.
import { connect } from 'node:net';
import { frame } from '../../test/helpers/agent-frames.ts';

export { frame };

export interface FrameClient {
  /** Writes `buf` (holding `frames` request frames) and resolves once `frames` replies were read. */
  roundTrip(buf: Buffer, frames: number): Promise<void>;
  destroy(): void;
}

/** Connects and sends the bench's handshake (JSON encoding, protocol v2). */
export async function connectFrameClient(socketPath: string): Promise<FrameClient> {
  const sock = connect(socketPath);
  await new Promise<void>((ok) => sock.once('connect', () => ok()));
  let pending = 0;
  let buffered: Buffer = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  sock.on('data', (chunk: Buffer) => {
    buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
    let at = 0;
    while (buffered.length - at >= 4) {
      const len = buffered.readUInt32BE(at);
      if (buffered.length - at < 4 + len) break;
      at += 4 + len;
      pending--;
    }
    buffered = buffered.subarray(at);
    if (pending <= 0 && wake) {
      const w = wake;
      wake = undefined;
      w();
    }
  });
  const roundTrip = (buf: Buffer, frames: number): Promise<void> =>
    new Promise<void>((ok) => {
      pending = frames;
      wake = ok;
      sock.write(buf);
    });
  const hello = { supported_versions: [2], proxy_id: 'bench', proxy_version: '0', config: null, supported_encodings: ['json'] };
  await roundTrip(frame(0x01, JSON.stringify(hello)), 1);
  return { roundTrip, destroy: () => sock.destroy() };
}
