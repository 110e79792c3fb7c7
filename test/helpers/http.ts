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

/** What one HTTP/2 stream came to: the response (status, headers, body as text) or, when it was
 * reset before any response, `rstCode`. */
export interface H2Reply {
  status?: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  rstCode?: number;
}

/** One request on an open session (a body ends the stream after it). Never rejects: a stream that is
 * reset or fails resolves with what it got, so tests can assert on resets as on statuses. */
export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Reply> {
  return new Promise((resolve) => {
    const req = session.request(headers, { endStream: body === undefined });
    let response: http2.IncomingHttpHeaders | undefined;
    let text = '';
    req.on('response', (h) => (response = h));
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('error', () => undefined);
    req.on('close', () =>
      resolve(response ? { status: Number(response[':status']), headers: response, body: text } : { headers: {}, body: text, rstCode: req.rstCode }),
    );
    if (body !== undefined) req.end(body);
  });
}

/** One request over a new h2c session (prior knowledge) to 127.0.0.1:`port`, closed after it;
 * rejects only when the session itself fails. */
export async function h2Once(port: number, headers: http2.OutgoingHttpHeaders, body?: string | Buffer): Promise<H2Reply> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  const failed = new Promise<never>((_, reject) => session.on('error', reject));
  try {
    return await Promise.race([h2Request(session, headers, body), failed]);
  } finally {
    session.close();
  }
}

/** One GET over a new h2c session: status, headers and body (a reset before the response rejects). */
export async function h2Get(port: number, path: string, authority = 'a.test'): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  const r = await h2Once(port, { ':path': path, ':authority': authority });
  if (r.status === undefined) throw new Error(`h2 GET ${path}: stream reset (code ${r.rstCode}) before a response`);
  return { status: r.status, headers: r.headers, body: r.body };
}
