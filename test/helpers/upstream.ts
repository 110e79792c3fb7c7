// Test upstreams on 127.0.0.1 with an ephemeral port: real node:http servers, and a raw one with canned answers.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Server } from 'node:net';

export interface TestUpstream {
  port: number;
  address: string;
  /** requests seen, in order */
  seen: { method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;

/** An upstream that buffers each request body, records it, then calls `handler` (default: 200 echo JSON). */
export async function startUpstream(handler?: Handler, opts: { bufferBody?: boolean } = {}): Promise<TestUpstream> {
  const seen: TestUpstream['seen'] = [];
  const server = http.createServer((req, res) => {
    if (opts.bufferBody === false) {
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.alloc(0) });
      (handler ?? defaultHandler)(req, res, Buffer.alloc(0));
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      (handler ?? defaultHandler)(req, res, body);
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    seen,
    close: () => closeServer(server),
  };
}

/**
 * Closes a server a test started; resolves once it stopped listening. close() waits for open
 * connections, so an http(s) server's are closed first (idle keep-alive sockets would hold it for
 * seconds) and `open` (raw sockets, h2 sessions the test tracked) are destroyed. Undefined (never
 * started) and a server already closed resolve too.
 */
export function closeServer(server: Server | undefined, open: Iterable<{ destroy(): void }> = []): Promise<void> {
  if (!server) return Promise.resolve();
  for (const s of open) s.destroy();
  (server as Partial<Pick<http.Server, 'closeAllConnections'>>).closeAllConnections?.();
  return new Promise((r) => server.close(() => r()));
}

function defaultHandler(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const payload = JSON.stringify({ method: req.method, url: req.url, bytes: body.length });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-upstream': 'yes' });
  res.end(payload);
}

/** A port with nothing listening (bound then released). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await closeServer(s);
  return port;
}

/** A canned answer: its bytes (written as latin1), and whether the connection ends after them (a cut body). */
export interface CannedAnswer {
  bytes: string;
  close?: boolean;
}

/**
 * The answers: by the request's path as written, or a function of the request head (request line
 * and headers) and the request's place on its connection (0 for the first); none: a 404.
 */
export type CannedAnswers = Readonly<Record<string, string | CannedAnswer>> | ((head: string, index: number) => string | CannedAnswer | undefined);

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';

/**
 * An HTTP/1.1 upstream on 127.0.0.1 that writes canned bytes: for each request head it reads, the
 * answer `answers` gives (else a 404), so a test can send what node:http would refuse to write
 * (repeated single-value headers, a 205 with a body, a cut body, a 101 outside a handshake, ...).
 */
export async function startCannedUpstream(answers: CannedAnswers): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    let index = 0;
    s.on('error', () => undefined);
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const a = (typeof answers === 'function' ? answers(head, index++) : answers[head.split(' ')[1]!]) ?? NOT_FOUND;
        const { bytes, close } = typeof a === 'string' ? { bytes: a, close: false } : a;
        s.write(bytes, 'latin1');
        if (close) {
          s.end();
          break;
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => closeServer(server, sockets) };
}
