// Exact bytes over a raw TCP (or TLS) socket: for requests no well-behaved client would send
// (OPTIONS *, Expect without waiting, slowloris, smuggling shapes) and for watching when the
// gateway closes a connection.
import net from 'node:net';
import tls from 'node:tls';

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
  /** upper bound on the wait (default 5 s) */
  waitMs?: number;
}

function statusesOf(text: string): number[] {
  return [...text.matchAll(/(?:^|\r\n)HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
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
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, statuses: statusesOf(text), closed });
    };
    const timer = setTimeout(() => finish(false), opts.waitMs ?? 5000);
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
        clearTimeout(timer);
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
      clearTimeout(timer);
      clearInterval(drip);
      socket.destroy();
      resolve({ closedAfterMs: closed ? performance.now() - t0 : undefined, text });
    };
    const timer = setTimeout(() => finish(false), opts.maxWaitMs);
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
        clearTimeout(timer);
        reject(err);
      }
    });
  });
}
