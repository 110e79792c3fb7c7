// A small HTTP client for tests (node:http, no pooling surprises).
import http from 'node:http';
import http2 from 'node:http2';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

type RequestOptions = { method?: string; headers?: Record<string, string | string[]>; body?: string | Buffer; agent?: http.Agent | false; timeoutMs?: number };

/** The reply with its body as bytes (compressed or binary bodies). */
export interface BytesReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function requestBytes(url: string, opts: RequestOptions = {}): Promise<BytesReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.timeoutMs) req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')));
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

export async function request(url: string, opts: RequestOptions = {}): Promise<Reply> {
  const r = await requestBytes(url, opts);
  return { status: r.status, headers: r.headers, body: r.body.toString() };
}

/** One GET over a new h2c session (prior knowledge) to 127.0.0.1:`port`: status, headers and body. */
export function h2Get(port: number, path: string, authority = 'a.test'): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const req = session.request({ ':path': path, ':authority': authority });
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    req.on('response', (h) => (headers = h));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      session.close();
      resolve({ status: Number(headers[':status']), headers, body });
    });
    req.on('error', (e) => {
      session.close();
      reject(e);
    });
  });
}
