// A small HTTP client for tests (node:http, no pooling surprises).
import http from 'node:http';

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
