// The floor of the agent hop (issue #16 item 3, bench/hop-floor.ts): the smallest Node proxy
// (node:http in, one undici Pool out through a dispatch handler, as Sentinel forwards) that makes
// one request/response over a Unix socket per HTTP request before forwarding it. Paths:
//   /pass        forwarded at once (no hop)
//   /json        a request_headers-like JSON event (Sentinel's fields and size), framed as the
//                agent protocol v2 frames it (u32 length, u8 type, payload), one write(2) per event
//   /batch       the same event, the frames of one event-loop turn in one write (as Sentinel's FrameWriter)
//   /small       the smallest frame: u32 length, u8 type, u32 id; one write per event
//   /small-batch the smallest frame, one write per turn
// The reply is matched by its id: the JSON paths read it at a fixed offset of the SDK's
// plain-allow template (as Sentinel's plainAllowCorrelationId), the small paths as a u32.
// No timeouts, no cancel, no metrics: what is left is what any Node proxy pays for the hop.
// node:, undici and hop-floor-frames.ts only: bench/hop-floor.ts transpiles them without tsx.
// Usage: node hop-floor-proxy.js --port P --upstream http://127.0.0.1:O --agent /path/agent.sock
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { frameSplitter } from './hop-floor-frames.ts';

const arg = (name: string): string => {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? process.argv[i + 1] : undefined;
  if (!v) throw new Error(`usage: --port P --upstream URL --agent SOCKET (missing ${name})`);
  return v;
};
const port = Number(arg('--port'));
const upstream = new URL(arg('--upstream'));
const agentPath = arg('--agent');

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const pool = new Pool(upstream.origin, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 });

/** One upstream exchange written straight into the client response (no body stream). */
class Relay implements Dispatcher.DispatchHandler {
  private done = false;
  constructor(private readonly res: ServerResponse) {}
  onConnect(abort: (err?: Error) => void): void {
    // a client gone mid-exchange frees the upstream connection (else the pool runs dry)
    this.res.once('close', () => {
      if (!this.done) abort();
    });
  }
  onHeaders(statusCode: number, raw: Buffer[]): boolean {
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toString('latin1');
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      headers.push(name, raw[i + 1]!.toString('latin1'));
    }
    this.res.writeHead(statusCode, headers);
    return true;
  }
  onData(chunk: Buffer): boolean {
    // the origin's bodies are a few bytes: no backpressure (false would pause the upstream for good)
    this.res.write(chunk);
    return true;
  }
  onComplete(): void {
    this.done = true;
    this.res.end();
  }
  onError(): void {
    this.done = true;
    if (this.res.headersSent || this.res.destroyed) this.res.destroy();
    else this.res.writeHead(502).end();
  }
}

function forward(req: IncomingMessage, res: ServerResponse): void {
  const headers: Record<string, string | string[]> = {};
  for (const name in req.headers) {
    const v = req.headers[name];
    if (v !== undefined && !HOP_BY_HOP.has(name)) headers[name] = v;
  }
  pool.dispatch({ method: 'GET', path: req.url ?? '/', headers }, new Relay(res));
}

// ---- the agent connection ----------------------------------------------------------------------
const REQUEST_HEADERS = 0x10;
const AGENT_RESPONSE = 0x20;
// The SDK's plain allow (src/agent-protocol/messages.ts ALLOW_PREFIX / ALLOW_SUFFIX): the agent
// process answers with these bytes around the id, as Sentinel's SDK does.
const ALLOW_PREFIX_LENGTH = Buffer.byteLength(
  '{"version":1,"decision":"allow","request_headers":[],"response_headers":[],"routing_metadata":{},"audit":{"tags":[],"rule_ids":[],"confidence":null,"reason_codes":[],"custom":{"correlation_id":"',
);
const ALLOW_SUFFIX_LENGTH = Buffer.byteLength('"}},"needs_more":false,"request_body_mutation":null,"response_body_mutation":null}');

type Waiter = () => void;
const byId = new Map<string, Waiter>();
const bySmallId = new Map<number, Waiter>();

const agent: Socket = connect(agentPath);
agent.setNoDelay?.(true);
agent.on(
  'data',
  frameSplitter((buf, type, start, end) => {
    if (type !== AGENT_RESPONSE) return;
    if (end - start === 4) {
      const id = buf.readUInt32BE(start);
      const w = bySmallId.get(id);
      bySmallId.delete(id);
      w?.();
    } else {
      const id = buf.toString('latin1', start + ALLOW_PREFIX_LENGTH, end - ALLOW_SUFFIX_LENGTH);
      const w = byId.get(id);
      byId.delete(id);
      w?.();
    }
  }),
);
agent.on('error', (err) => {
  console.error(`agent socket: ${err.message}`);
  process.exit(1);
});

/** Frames of this turn, written in one write from a setImmediate (the batch paths). */
let queued: Buffer[] = [];
let queuedBytes = 0;
function flush(): void {
  const parts = queued;
  queued = [];
  const out = parts.length === 1 ? parts[0]! : Buffer.concat(parts, queuedBytes);
  queuedBytes = 0;
  agent.write(out);
}
function enqueue(frame: Buffer): void {
  if (queued.length === 0) setImmediate(flush);
  queued.push(frame);
  queuedBytes += frame.length;
}

// ---- the event ---------------------------------------------------------------------------------
const idPrefix = Math.random().toString(36).slice(2, 8);
let sequence = 0;
let stampMs = 0;
let stamp = '';
function timestamp(): string {
  const now = Date.now();
  if (now !== stampMs) {
    stampMs = now;
    stamp = new Date(now).toISOString();
  }
  return stamp;
}

/** Sentinel's request_headers event for this request (the same fields, so about the same size). */
function jsonFrame(req: IncomingMessage, id: string): Buffer {
  const headers: Record<string, string[]> = {};
  for (const name in req.headers) {
    const v = req.headers[name];
    if (v !== undefined) headers[name] = typeof v === 'string' ? [v] : v;
  }
  const json = JSON.stringify({
    correlation_id: id,
    metadata: {
      correlation_id: id,
      request_id: id,
      client_ip: req.socket.remoteAddress ?? '',
      client_port: req.socket.remotePort ?? 0,
      server_name: req.headers.host ?? null,
      protocol: `HTTP/${req.httpVersion}`,
      tls_version: null,
      tls_cipher: null,
      route_id: 'agent',
      upstream_id: 'origin',
      timestamp: timestamp(),
      traceparent: null,
    },
    method: req.method,
    uri: req.url,
    headers,
  });
  const length = Buffer.byteLength(json);
  const frame = Buffer.allocUnsafe(5 + length);
  frame.writeUInt32BE(length + 1, 0);
  frame[4] = REQUEST_HEADERS;
  frame.write(json, 5, length, 'utf8');
  return frame;
}

function smallFrame(id: number): Buffer {
  const frame = Buffer.allocUnsafe(9);
  frame.writeUInt32BE(5, 0);
  frame[4] = REQUEST_HEADERS;
  frame.writeUInt32BE(id, 5);
  return frame;
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/pass')) return forward(req, res);
  const then = (): void => forward(req, res);
  if (url.startsWith('/small')) {
    const id = (sequence = (sequence + 1) >>> 0);
    bySmallId.set(id, then);
    const frame = smallFrame(id);
    if (url.startsWith('/small-batch')) enqueue(frame);
    else agent.write(frame);
    return;
  }
  const id = `${idPrefix}${(++sequence).toString(36)}`;
  byId.set(id, then);
  const frame = jsonFrame(req, id);
  if (url.startsWith('/batch')) enqueue(frame);
  else agent.write(frame);
});
server.keepAliveTimeout = 75_000;
agent.once('connect', () => {
  server.listen(port, '127.0.0.1');
});
const bye = (): void => {
  server.close();
  agent.destroy();
  void pool.close().finally(() => process.exit(0));
};
process.once('SIGTERM', bye);
process.on('uncaughtException', (err) => {
  console.error(`floor proxy: ${err.stack ?? String(err)}`);
  process.exit(1);
});
process.once('SIGINT', bye);
