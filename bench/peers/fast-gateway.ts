// fast-gateway 3.4.7 (restana + fast-proxy-lite over http.Agent keep-alive), installed into
// bench/peers/node_modules by the runner (bench/peers/package.json). Loaded with require so the
// project type-checks without it. Usage: node --import tsx bench/peers/fast-gateway.ts --port P --upstream URL
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { exitOnSignals, peerArgs } from './args.ts';

interface FastGatewayServer {
  start(port: number, host?: string): Promise<Server>;
  close(): Promise<unknown>;
}
type FastGateway = (opts: { routes: Array<{ prefix: string; target: string }> }) => FastGatewayServer;

const require = createRequire(import.meta.url);
const gateway = require('fast-gateway') as FastGateway;

const { port, upstream } = peerArgs();
// prefix '' + the default pathRegex '/*' = every path, forwarded unchanged.
const server = gateway({ routes: [{ prefix: '', target: upstream.origin }] });
await server.start(port, '127.0.0.1');
exitOnSignals(() => server.close());
