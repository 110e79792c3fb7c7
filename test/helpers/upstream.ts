// Test upstreams: real node:http servers on 127.0.0.1 with an ephemeral port.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';

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
