// Raw HTTP/2 frames for abuse tests (RFC 9113 §4.1): written straight to a TCP or TLS socket,
// so the tests can send what no well-behaved client library would.
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { orAfterTurning } from '../../helpers/until.ts';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const FrameType = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 } as const;
export const Flag = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK block for GET / without touching the dynamic table (static indexes, literal authority). */
export function getRequestBlock(scheme: 'http' | 'https', authority: string, path = '/'): Buffer {
  const parts = [0x82, scheme === 'http' ? 0x86 : 0x87];
  const head = Buffer.from(parts);
  const pathField = path === '/' ? Buffer.from([0x84]) : Buffer.concat([Buffer.from([0x04, path.length]), Buffer.from(path)]);
  // literal without indexing, name :authority (static index 1)
  const auth = Buffer.concat([Buffer.from([0x01, authority.length]), Buffer.from(authority)]);
  return Buffer.concat([head, pathField, auth]);
}

export function rstStream(streamId: number, code = 0x8 /* CANCEL */): Buffer {
  const p = Buffer.alloc(4);
  p.writeUInt32BE(code);
  return frame(FrameType.RST_STREAM, 0, streamId, p);
}

export function settings(entries: [number, number][] = []): Buffer {
  const p = Buffer.alloc(entries.length * 6);
  entries.forEach(([id, v], i) => {
    p.writeUInt16BE(id, i * 6);
    p.writeUInt32BE(v, i * 6 + 2);
  });
  return frame(FrameType.SETTINGS, 0, 0, p);
}

export function ping(n: number): Buffer {
  const p = Buffer.alloc(8);
  p.writeUInt32BE(n, 4);
  return frame(FrameType.PING, 0, 0, p);
}

export interface RawSession {
  socket: Duplex;
  /** frame types received, in order */
  received: number[];
  /** error codes of the GOAWAY frames received */
  goaways: number[];
  closed: boolean;
  /** resolves when the connection is closed (by either side), or after `ms` of event-loop time with false */
  closedWithin(ms: number): Promise<boolean>;
}

/** Opens a connection (h2c, or TLS with ALPN h2), sends the preface and an empty SETTINGS. */
export async function openRaw(port: number, secure: boolean): Promise<RawSession> {
  const socket: Duplex = secure
    ? tls.connect({ port, host: '127.0.0.1', ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: 'localhost' })
    : net.connect({ port, host: '127.0.0.1' });
  await new Promise<void>((ok, fail) => {
    socket.once(secure ? 'secureConnect' : 'connect', () => ok());
    socket.once('error', fail);
  });
  const s: RawSession = {
    socket,
    received: [],
    goaways: [],
    closed: false,
    closedWithin(ms) {
      if (s.closed) return Promise.resolve(true);
      // event-loop time: the gateway runs in this process, and a loaded machine that does not
      // schedule it must not run the bound out before the gateway's own timers fire
      return orAfterTurning(new Promise<boolean>((resolve) => socket.once('close', () => resolve(true))), ms, false);
    },
  };
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 9) {
      const len = buf.readUIntBE(0, 3);
      if (buf.length < 9 + len) break;
      const type = buf[3]!;
      if (s.received.length < 100_000) s.received.push(type);
      if (type === FrameType.GOAWAY && len >= 8) s.goaways.push(buf.readUInt32BE(9 + 4));
      buf = buf.subarray(9 + len);
    }
  });
  socket.on('error', () => undefined);
  socket.on('close', () => (s.closed = true));
  socket.write(Buffer.concat([PREFACE, settings()]));
  return s;
}
