// Exact bytes over a raw TCP (or TLS) socket: for requests no well-behaved client would send
// (OPTIONS *, Expect without waiting, slowloris, smuggling shapes) and for watching when the
// gateway closes a connection.
import net from 'node:net';
import tls from 'node:tls';
import { turningTimeout, UNTIL_MS } from './until.ts';

export interface RawReply {
  /** everything the server sent, latin1 */
  text: string;
  /** status codes of every response (interim ones included), in order */
  statuses: number[];
  /** true when the server closed the connection before `waitMs` ran out */
  closed: boolean;
}

export interface RawOptions {
  /** connect with TLS (certificate checks off: tests use throw-away CAs) */
  tls?: boolean;
  /** ALPN to offer over TLS (default http/1.1) */
  alpn?: string[];
  /** resolve once this many final (>= 200) responses arrived, or on close / timeout (default 1) */
  responses?: number;
  /**
   * upper bound on the wait (default UNTIL_MS), in event-loop time (`turningTimeout`: a loaded
   * machine or a gateway in this process blocking the loop cannot make it run out first): most
   * exchanges end at a close or a complete answer and never reach it; pass a short one only as a
   * negative window (nothing more may come in it), and then prove the window by a later answer
   */
  waitMs?: number;
}

/** Status lines anywhere in the stream (a pipelined answer follows the previous body directly). */
function statusesOf(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
}

/** Sends `bytes` and collects the answer (bodies are not parsed: the status lines are what tests read). */
export function rawExchange(port: number, bytes: string | Buffer, opts: RawOptions = {}): Promise<RawReply> {
  const want = opts.responses ?? 1;
  return new Promise((resolve, reject) => {
    const socket = opts.tls
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: opts.alpn ?? ['http/1.1'] })
      : net.connect(port, '127.0.0.1');
    let text = '';
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      cancel();
      socket.destroy();
      resolve({ text, statuses: statusesOf(text), closed });
    };
    const cancel = turningTimeout(opts.waitMs ?? UNTIL_MS, () => finish(false));
    socket.once(opts.tls ? 'secureConnect' : 'connect', () => socket.write(bytes));
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      // a final response is complete once its declared body is in (enough for the small local answers tests read)
      if (completeFinals(text) >= want) finish(false);
    });
    socket.on('close', () => finish(true));
    socket.on('error', (err) => {
      if (!done && text === '') {
        done = true;
        cancel();
        reject(err);
      }
    });
  });
}

/** How many final responses in `text` are complete (headers plus Content-Length bytes, or a 0-chunk). */
function completeFinals(text: string): number {
  let n = 0;
  let at = 0;
  for (;;) {
    const start = text.indexOf('HTTP/1.', at);
    if (start < 0) return n;
    const headEnd = text.indexOf('\r\n\r\n', start);
    if (headEnd < 0) return n;
    const head = text.slice(start, headEnd);
    const status = Number(head.slice(9, 12));
    let end = headEnd + 4;
    if (status >= 200) {
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (cl) {
        end += Number(cl[1]);
        if (text.length < end) return n;
      } else if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
        const z = text.indexOf('\r\n0\r\n\r\n', headEnd);
        if (z < 0) return n;
        end = z + 7;
      }
      n++;
    }
    at = end;
  }
}

/** Opens a connection and keeps it open; `closedAfterMs` resolves with how long the server let it live. */
export function holdOpen(port: number, opts: { tls?: boolean; alpn?: string[]; send?: string | Buffer; dripMs?: number; maxWaitMs: number }): Promise<{ closedAfterMs: number | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = opts.tls
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: opts.alpn ?? ['http/1.1'] })
      : net.connect(port, '127.0.0.1');
    let text = '';
    let t0 = 0;
    let drip: NodeJS.Timeout | undefined;
    const finish = (closed: boolean) => {
      cancel();
      clearInterval(drip);
      socket.destroy();
      resolve({ closedAfterMs: closed ? performance.now() - t0 : undefined, text });
    };
    // event-loop time, as rawExchange's waitMs
    const cancel = turningTimeout(opts.maxWaitMs, () => finish(false));
    socket.once(opts.tls ? 'secureConnect' : 'connect', () => {
      t0 = performance.now();
      if (opts.send !== undefined) socket.write(opts.send);
      // slowloris: one more header byte every dripMs, never the blank line
      if (opts.dripMs) drip = setInterval(() => socket.write('x'), opts.dripMs);
    });
    socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', (err) => {
      if (t0 === 0) {
        cancel();
        reject(err);
      }
    });
  });
}

/** A parsed response (rawRequest): status, headers and body of the first response. */
export interface ParsedReply {
  status: number;
  /** lower-cased names; repeated headers joined with ', ' */
  headers: Record<string, string>;
  body: string;
  /** everything the server sent */
  raw: string;
}

/**
 * Writes `bytes` to 127.0.0.1:port and parses the first response (Content-Length, chunked or
 * read-to-close). Rejects when the server closes without a response or after `timeoutMs`.
 */
export function rawRequest(port: number, bytes: string | Buffer, opts: { timeoutMs?: number } = {}): Promise<ParsedReply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes));
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      cancel();
      sock.destroy();
      if (err) return reject(err);
      const reply = parse(buf, true);
      if (reply) resolve(reply);
      else reject(new Error(`no complete response; got ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`));
    };
    const timeoutMs = opts.timeoutMs ?? UNTIL_MS;
    // event-loop time (rawExchange's waitMs); NO_WALL_BOUND where the caller bounds the wait itself
    const cancel = turningTimeout(timeoutMs, () => finish(new Error(`no response within ${timeoutMs} ms of event-loop time; got ${JSON.stringify(buf.toString('latin1').slice(0, 200))}`)));
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (parse(buf, false)) finish();
    });
    sock.on('error', () => finish());
    sock.on('close', () => finish());
  });
}

/** Builds a request: `rawRequest(port, http1('GET', '/x', ['Host: a']))`. */
export function http1(method: string, target: string, headers: string[] = ['Host: localhost'], body = ''): string {
  return `${method} ${target} HTTP/1.1\r\n${headers.map((h) => h + '\r\n').join('')}\r\n${body}`;
}

function parse(buf: Buffer, closed: boolean): ParsedReply | undefined {
  const text = buf.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = text.slice(0, end).split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    const name = l.slice(0, i).trim().toLowerCase();
    const value = l.slice(i + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const rest = buf.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1'));
  if (status === 204 || status === 304 || (status >= 100 && status < 200)) return { status, headers, body: '', raw: text };
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (rest.length < n) return undefined;
    return { status, headers, body: rest.subarray(0, n).toString('utf8'), raw: text };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const nl = rest.indexOf('\r\n', at);
      if (nl < 0) return undefined;
      const size = parseInt(rest.subarray(at, nl).toString('latin1'), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(chunks).toString('utf8'), raw: text };
      if (rest.length < nl + 2 + size + 2) return undefined;
      chunks.push(rest.subarray(nl + 2, nl + 2 + size));
      at = nl + 2 + size + 2;
    }
  }
  return closed ? { status, headers, body: rest.toString('utf8'), raw: text } : undefined;
}

/**
 * A strict `Expect: 100-continue` client (stricter than curl, which sends the body after 1 s
 * anyway): sends `head` (a request head with Expect, ending in the blank line), sends `body` only
 * after a `100 Continue`, never after a final answer. Resolves when the server closes or `waitMs`
 * of event-loop time ran out (send Connection: close).
 */
export function expectContinueExchange(port: number, head: string, body: string | Buffer, waitMs = UNTIL_MS): Promise<RawReply & { bodySent: boolean }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let text = '';
    let bodySent = false;
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      cancel();
      s.destroy();
      resolve({ text, statuses: statusesOf(text), closed, bodySent });
    };
    const cancel = turningTimeout(waitMs, () => finish(false));
    s.on('connect', () => s.write(head));
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (!bodySent && /^HTTP\/1\.1 100 [^\r\n]*\r\n\r\n/.test(text)) {
        bodySent = true;
        s.write(body);
      }
    });
    s.on('close', () => finish(true));
    s.on('error', (err) => {
      if (!done && text === '') {
        done = true;
        cancel();
        reject(err);
      } else finish(true);
    });
  });
}

/** A raw connection for a test that writes the request bytes itself: `answer` collects what comes back (latin1). */
export interface RawConnection {
  socket: net.Socket;
  answer: string;
  /** Settles when the connection closes (either side). */
  closed: Promise<void>;
}

/** Connects to 127.0.0.1:`port` and resolves once connected; errors are left to `closed`. */
export async function rawConnection(port: number): Promise<RawConnection> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.setEncoding('latin1');
  const conn: RawConnection = { socket, answer: '', closed: new Promise<void>((r) => socket.once('close', () => r())) };
  socket.on('data', (c: string) => (conn.answer += c));
  await new Promise<void>((r) => socket.once('connect', () => r()));
  return conn;
}
