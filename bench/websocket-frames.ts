// RFC 6455 frame codec micro-bench: src/websocket/frames.ts next to `ws` (its Receiver and
// Sender.frame, the pieces a proxy would use), same process, interleaved rounds; not a test.
//   node --import tsx bench/websocket-frames.ts [--rounds 5] [--frames 20000]
// parse: a buffer of masked client binary frames fed in 64 KiB socket-sized chunks (ours:
// FrameParser.push, frames out with unmasked payload and raw bytes; ws: Receiver in server mode,
// whole messages out). serialise: one masked frame per call (ours: encodeFrame; ws: Sender.frame).
// `ws` is not a dependency of the gateway; it is in the tree through @kubernetes/client-node.
import { parseArgs } from 'node:util';
import { createRequire } from 'node:module';
import { FrameParser, Opcode, encodeFrame } from '../src/websocket/frames.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, frames: { type: 'string', default: '20000' } } });
const rounds = Number(values.rounds);
const frames = Number(values.frames);

interface WsReceiver {
  on(event: 'message', fn: (data: Buffer, isBinary: boolean) => void): void;
  write(chunk: Buffer): boolean;
}
interface WsModule {
  Receiver: new (o: { isServer: boolean; maxPayload: number; allowSynchronousEvents?: boolean }) => WsReceiver;
  Sender: { frame(data: Buffer, o: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean; maskBuffer?: Buffer }): Buffer[] };
}
const ws = createRequire(import.meta.url)('ws') as WsModule;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const size of [125, 16 * 1024]) {
  const n = size > 1000 ? Math.max(100, Math.floor(frames / 20)) : frames;
  const payload = Buffer.alloc(size, 0x61);
  const wire = Buffer.concat(Array.from({ length: n }, () => encodeFrame({ opcode: Opcode.Binary, payload, mask: true })));
  const chunks: Buffer[] = [];
  for (let i = 0; i < wire.length; i += 65536) chunks.push(wire.subarray(i, i + 65536));

  const parseOurs = () => {
    const p = new FrameParser({ maxFrameBytes: 1 << 20, requireMask: true });
    let got = 0;
    for (const c of chunks) got += p.push(c).length;
    if (got !== n) throw new Error(`ours parsed ${got} of ${n}`);
  };
  const parseWs = () => {
    const r = new ws.Receiver({ isServer: true, maxPayload: 1 << 20, allowSynchronousEvents: true });
    let got = 0;
    r.on('message', () => got++);
    for (const c of chunks) r.write(c);
    if (got !== n) throw new Error(`ws parsed ${got} of ${n}`);
  };
  const encOurs = () => {
    for (let i = 0; i < n; i++) encodeFrame({ opcode: Opcode.Binary, payload, mask: true });
  };
  const encWs = () => {
    // readOnly false: ws masks the caller's buffer in place; ours copies into the frame. Give ws a copy each time to compare like with like.
    for (let i = 0; i < n; i++) ws.Sender.frame(Buffer.from(payload), { fin: true, opcode: 2, mask: true, readOnly: false, rsv1: false });
  };
  const time = (fn: () => void) => {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / n;
  };
  parseOurs();
  parseWs();
  const pr: number[] = [];
  const er: number[] = [];
  const rows: string[] = [];
  for (let r = 0; r < rounds; r++) {
    const first = r % 2 === 0;
    const po1 = first ? time(parseOurs) : 0;
    const pw = time(parseWs);
    const po = first ? po1 : time(parseOurs);
    const eo1 = first ? time(encOurs) : 0;
    const ew = time(encWs);
    const eo = first ? eo1 : time(encOurs);
    pr.push(pw / po);
    er.push(ew / eo);
    rows.push(`round ${r + 1}: parse ours ${po.toFixed(0)} ns/frame, ws ${pw.toFixed(0)}; serialise ours ${eo.toFixed(0)}, ws ${ew.toFixed(0)}`);
  }
  console.log(`${size} B masked binary frames (${n} per run):`);
  for (const row of rows) console.log(`  ${row}`);
  const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`;
  console.log(`  ws/ours time, median (range): parse ×${median(pr).toFixed(2)} (${range(pr)}), serialise ×${median(er).toFixed(2)} (${range(er)}) (above 1: ours is faster)`);
}
