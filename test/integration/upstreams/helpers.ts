// Shared fixtures for upstream tests: fake generation services and real loopback HTTP servers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../../helpers/upstream.ts';
import pino from 'pino';
import { Metrics } from '../../../src/metrics/registry.ts';
import type { GenerationServices } from '../../../src/pipeline/types.ts';
import type { PickContext } from '../../../src/upstream/types.ts';
import type { UpstreamGroup } from '../../helpers/upstream-group.ts';
import { classifyUpstreamError } from '../../../src/errors/index.ts';

export function fakeServices(): GenerationServices & { events: Record<string, unknown>[] } {
  const events: Record<string, unknown>[] = [];
  return {
    generation: 1,
    log: pino({ level: 'silent' }),
    metrics: new Metrics({ defaultMetrics: false }),
    audit: (e) => events.push(e),
    routeFailureMode: () => 'closed',
    events,
  };
}

export function pickContext(over: Partial<PickContext> & { headers?: Record<string, string>; cookies?: Record<string, string> } = {}): PickContext {
  const headers = over.headers ?? {};
  const cookies = over.cookies ?? {};
  return {
    clientIp: over.clientIp ?? '127.0.0.1',
    path: over.path ?? '/',
    header: (n) => headers[n.toLowerCase()],
    cookie: (n) => cookies[n],
    ...(over.exclude ? { exclude: over.exclude } : {}),
  };
}

/** One attempt through the group (a `body` goes as text/plain), reported to it like the forwarder does. */
export async function attempt(g: UpstreamGroup, method: string, path = '/', body?: string): Promise<{ status: number; text: string }> {
  const p = g.select(pickContext())!;
  try {
    const res = await g.dispatcher(p.target).request({ origin: g.origin(p.target), path, method: method as 'GET', body: body ?? null, headers: body ? { 'content-type': 'text/plain' } : {} });
    const text = await res.body.text();
    g.report(p.target, { kind: 'response', status: res.statusCode, latencyMs: 1 });
    return { status: res.statusCode, text };
  } catch (e) {
    g.report(p.target, { kind: 'error', reason: classifyUpstreamError(e).reason, latencyMs: 1 });
    throw e;
  }
}

export interface TestServer {
  server: Server;
  port: number;
  address: string;
  close(): Promise<void>;
}

export async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1', port = 0): Promise<TestServer> {
  const server = createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const p = (server.address() as AddressInfo).port;
  return {
    server,
    port: p,
    address: host.includes(':') ? `[${host}]:${p}` : `${host}:${p}`,
    close: () => closeServer(server),
  };
}
