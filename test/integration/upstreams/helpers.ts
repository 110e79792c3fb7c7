// Shared fixtures for upstream tests: fake generation services and real loopback HTTP servers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../../helpers/upstream.ts';
import pino from 'pino';
import { Metrics } from '../../../src/metrics/registry.ts';
import type { GenerationServices } from '../../../src/pipeline/types.ts';
import type { PickContext } from '../../../src/upstream/types.ts';

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
