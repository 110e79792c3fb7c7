// A real WebSocket echo upstream (node:http 'upgrade' + the gateway's frame codec) and a raw
// socket WebSocket client, for the WebSocket integration tests (no `ws` package needed).
import { createHash, randomBytes } from 'node:crypto';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import tls, { type TLSSocket } from 'node:tls';
import net, { type AddressInfo, type Socket } from 'node:net';
import { closeServer } from '../../helpers/upstream.ts';
import { turningTimeout } from '../../helpers/until.ts';
import { constants as zlib, deflateRawSync, inflateRawSync } from 'node:zlib';
import { FrameParser, Opcode, closePayload, encodeFrame, parseClosePayload, type Frame } from '../../../src/websocket/frames.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
export const acceptKey = (key: string) => createHash('sha1').update(key + GUID).digest('base64');

const DEFLATE_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);
/** One message's payload under permessage-deflate (RFC 7692 §7.2.1), compressed on its own (no context carried over). */
export function deflateMessage(data: Buffer | string): Buffer {
  const out = deflateRawSync(data, { finishFlush: zlib.Z_SYNC_FLUSH });
  return out.subarray(0, out.length - DEFLATE_TAIL.length);
}
/** The inverse of deflateMessage (§7.2.2: the tail is appended back). */
export function inflateMessage(data: Buffer): Buffer {
  return inflateRawSync(Buffer.concat([data, DEFLATE_TAIL]), { finishFlush: zlib.Z_SYNC_FLUSH });
}
/** RSV1: the frame's message is compressed (permessage-deflate) */
export const RSV1 = 4;

export interface EchoUpstream {
  port: number;
  address: string;
  /** upgrade requests seen */
  upgrades: IncomingMessage['headers'][];
  /** urls of upgrade requests */
  urls: string[];
  /** frames received from the gateway, per connection */
  received: Frame[][];
  /** close frames received (code) and sockets closed */
  closes: { code: number; reason: string }[];
  socketsClosed: number;
  open: number;
  /** TLS upstream: the SNI of each upgraded connection */
  servernames: (string | false | null)[];
  close(): Promise<void>;
}

/**
 * Echo server: data frames are echoed with the same opcode/fin, pings answered with pongs,
 * a close answered with a close then the end. Paths: /(suffix) /refuse -> 401 with a body; /deflate ->
 * negotiates permessage-deflate when the request offered it and speaks it (a compressed
 * single-frame message is inflated and echoed compressed), /force-deflate negotiates it even when
 * not offered (frames stay uncompressed: only the header matters to the gateway); text
 * "server-close" -> the server closes with 1000 "bye".
 */
export async function startEchoUpstream(opts: { tls?: { cert: Buffer; key: Buffer } } = {}): Promise<EchoUpstream> {
  const sockets = new Set<Socket>();
  const u: Omit<EchoUpstream, 'port' | 'address' | 'close'> = { upgrades: [], urls: [], received: [], closes: [], socketsClosed: 0, open: 0, servernames: [] };
  const plain = (_req: IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('plain http');
  };
  const server = opts.tls ? https.createServer({ ...opts.tls, ALPNProtocols: ['http/1.1'] }, plain) : http.createServer(plain);
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    // like real WebSocket servers: the peer's FIN ends the connection
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      sockets.delete(socket);
      u.socketsClosed++;
      u.open--;
    });
    u.open++;
    u.upgrades.push(req.headers);
    if (opts.tls) u.servernames.push((socket as TLSSocket).servername);
    u.urls.push(req.url ?? '');
    if (req.url?.endsWith('/refuse')) {
      socket.end('HTTP/1.1 401 Unauthorized\r\ncontent-type: text/plain\r\ncontent-length: 12\r\nx-why: token\r\n\r\nno token, no');
      return;
    }
    // /deflate negotiates compression when it was offered (as real servers do), /force-deflate
    // even when it was not (a misbehaving server)
    const offered = /permessage-deflate/i.test(String(req.headers['sec-websocket-extensions'] ?? ''));
    const deflate = req.url?.endsWith('/deflate') === true && offered;
    const extra = deflate || req.url?.endsWith('/force-deflate') ? 'Sec-WebSocket-Extensions: permessage-deflate\r\n' : '';
    const proto = req.headers['sec-websocket-protocol'] ? `Sec-WebSocket-Protocol: ${String(req.headers['sec-websocket-protocol']).split(',')[0]!.trim()}\r\n` : '';
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(String(req.headers['sec-websocket-key']))}\r\n${extra}${proto}X-Upstream: echo\r\n\r\n`);
    const frames: Frame[] = [];
    u.received.push(frames);
    const parser = new FrameParser({ maxFrameBytes: 64 << 20, requireMask: true, allowRsv1: deflate });
    const onData = (chunk: Buffer) => {
      let got: Frame[];
      try {
        got = parser.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const f of got) {
        frames.push(f);
        if (f.opcode === Opcode.Close) {
          u.closes.push(parseClosePayload(f.payload));
          if (!socket.writableEnded) socket.end(encodeFrame({ opcode: Opcode.Close, payload: f.payload.subarray(0, 2) }));
        } else if (f.opcode === Opcode.Ping) socket.write(encodeFrame({ opcode: Opcode.Pong, payload: f.payload }));
        else if (f.opcode === Opcode.Text && f.payload.toString() === 'server-close') socket.end(encodeFrame({ opcode: Opcode.Close, payload: closePayload(1000, 'bye') }));
        else if (f.opcode !== Opcode.Pong && !socket.writableEnded) {
          // a compressed message: read it, answer it compressed (what a deflate-speaking server does)
          const payload = f.rsv & RSV1 ? deflateMessage(inflateMessage(f.payload)) : f.payload;
          socket.write(encodeFrame({ opcode: f.opcode, payload, fin: f.fin, rsv: f.rsv & RSV1 }));
        }
      }
    };
    socket.on('data', onData);
    if (head.length > 0) onData(head);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(u as EchoUpstream, {
    port,
    address: `127.0.0.1:${port}`,
    close: () => closeServer(server, sockets),
  });
}

export interface Handshake {
  status: number;
  headers: Record<string, string>;
  /** body bytes received with a non-101 answer (until the connection closed) */
  body: string;
}

/** A WebSocket client over a raw socket, frames encoded/decoded with the gateway's codec. */
export class WsClient {
  readonly frames: Frame[] = [];
  private parser!: FrameParser;
  private waiters: (() => void)[] = [];
  closed = false;
  error: Error | undefined;

  private constructor(
    readonly socket: Socket,
    readonly handshake: Handshake,
  ) {}

  /** Connects, sends the upgrade request and reads the answer's head (and body when not 101). */
  static async connect(port: number, path = '/', headers: Record<string, string> = {}, opts: { tls?: { ca: Buffer; servername: string }; host?: string } = {}): Promise<WsClient> {
    const host = opts.host ?? '127.0.0.1';
    const socket = opts.tls
      ? tls.connect({ port, host, ca: opts.tls.ca, servername: opts.tls.servername, ALPNProtocols: ['http/1.1'] })
      : net.connect({ port, host, allowHalfOpen: true });
    await new Promise<void>((ok, fail) => {
      socket.once(opts.tls ? 'secureConnect' : 'connect', ok);
      socket.once('error', fail);
    });
    const key = randomBytes(16).toString('base64');
    const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    let buf = Buffer.alloc(0);
    let client: WsClient | undefined;
    return new Promise<WsClient>((resolve, reject) => {
      // event-loop time: the gateway usually runs in this process (a loaded machine cannot run it out first)
      const cancel = turningTimeout(10_000, () => reject(new Error('no handshake answer within 10 s of event-loop time')));
      const onData = (chunk: Buffer) => {
        if (client) return;
        buf = Buffer.concat([buf, chunk]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const [statusLine, ...rest] = buf.subarray(0, end).toString().split('\r\n');
        const hs: Handshake = { status: Number(statusLine!.split(' ')[1]), headers: {}, body: '' };
        for (const l of rest) {
          const i = l.indexOf(':');
          hs.headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        const after = buf.subarray(end + 4);
        cancel();
        socket.off('data', onData);
        client = new WsClient(socket, hs);
        if (hs.status !== 101) {
          hs.body = after.toString();
          socket.on('data', (c: Buffer) => (hs.body += c.toString()));
          socket.on('end', () => socket.end());
          socket.on('close', () => resolve(client!));
          socket.on('error', () => undefined);
          return;
        }
        if (hs.headers['sec-websocket-accept'] !== acceptKey(key)) {
          reject(new Error(`bad Sec-WebSocket-Accept ${hs.headers['sec-websocket-accept']}`));
          return;
        }
        client.start(after);
        resolve(client);
      };
      socket.on('data', onData);
      socket.once('close', () => {
        if (!client) {
          cancel();
          reject(new Error(`connection closed before a handshake answer: ${buf.toString()}`));
        }
      });
      socket.once('error', (err) => {
        if (!client) {
          cancel();
          reject(err);
        }
      });
    });
  }

  private start(head: Buffer): void {
    // compressed frames (RSV1) are legal once the answer negotiated permessage-deflate
    const deflate = /permessage-deflate/i.test(this.handshake.headers['sec-websocket-extensions'] ?? '');
    this.parser = new FrameParser({ maxFrameBytes: 64 << 20, requireMask: false, allowRsv1: deflate });
    const onData = (c: Buffer) => {
      try {
        this.frames.push(...this.parser.push(c));
      } catch (err) {
        this.error = err as Error;
      }
      this.wake();
    };
    this.socket.on('data', onData);
    this.socket.on('error', (err) => {
      this.error = err;
      this.wake();
    });
    this.socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    // a peer's FIN: answer with ours (a WebSocket client closes its side when the server does)
    this.socket.on('end', () => this.socket.end());
    if (head.length > 0) onData(head);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `check` holds, bounded in event-loop time (turningTimeout: on the monotonic clock, and a loaded machine cannot run it out first). */
  async until(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    let expired = false;
    const cancel = turningTimeout(timeoutMs, () => (expired = true));
    try {
      while (!check()) {
        if (expired) throw new Error(`timed out waiting for ${what}; frames: ${this.frames.map((f) => `${f.opcode}:${f.payload.length}`).join(',')}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, 200);
          this.waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    } finally {
      cancel();
    }
  }

  /** Sends one masked frame (rsv: RSV1 for a compressed message); returns its bytes. */
  send(opcode: number, payload: Buffer | string = Buffer.alloc(0), fin = true, rsv = 0): Buffer {
    const bytes = encodeFrame({ opcode, payload, fin, mask: true, rsv });
    this.socket.write(bytes);
    return bytes;
  }

  text(s: string): Buffer {
    return this.send(Opcode.Text, s);
  }

  /** Next data message (fragments reassembled); its frames are consumed, control frames stay. */
  async message(timeoutMs = 10_000): Promise<{ opcode: number; data: Buffer }> {
    const find = () => {
      const idx: number[] = [];
      for (let i = 0; i < this.frames.length; i++) {
        const f = this.frames[i]!;
        if (idx.length === 0 ? f.opcode === Opcode.Text || f.opcode === Opcode.Binary : f.opcode === Opcode.Continuation) {
          idx.push(i);
          if (f.fin) return idx;
        }
      }
      return undefined;
    };
    await this.until(() => find() !== undefined || this.closed, 'a message', timeoutMs);
    const idx = find();
    if (!idx) throw new Error('connection closed without a message');
    const parts = idx.map((i) => this.frames[i]!);
    for (let k = idx.length - 1; k >= 0; k--) this.frames.splice(idx[k]!, 1);
    return { opcode: parts[0]!.opcode, data: Buffer.concat(parts.map((f) => f.payload)) };
  }

  /** The close frame received, once one arrived. */
  closeFrame(): { code: number; reason: string } | undefined {
    const f = this.frames.find((x) => x.opcode === Opcode.Close);
    return f ? parseClosePayload(f.payload) : undefined;
  }

  async waitClose(timeoutMs = 10_000): Promise<{ code: number; reason: string } | undefined> {
    await this.until(() => this.closed, 'the connection to close', timeoutMs);
    return this.closeFrame();
  }

  /** Sends a close frame (and ends our side once the peer answered). */
  close(code = 1000, reason = ''): void {
    this.send(Opcode.Close, closePayload(code, reason));
  }

  destroy(): void {
    this.socket.destroy();
  }
}
