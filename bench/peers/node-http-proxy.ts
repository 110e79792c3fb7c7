// http-proxy 1.18.1 (node-http-proxy) on node:http with a keep-alive http.Agent, installed into
// bench/peers/node_modules by the runner. Usage: node --import tsx bench/peers/node-http-proxy.ts --port P --upstream URL
import { createRequire } from 'node:module';
import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { exitOnSignals, peerArgs } from './args.ts';

interface HttpProxy {
  web(req: IncomingMessage, res: ServerResponse, opts: object, onError: (err: Error) => void): void;
}
interface HttpProxyModule {
  createProxyServer(opts: { target: string; agent: Agent; xfwd?: boolean }): HttpProxy;
}

const require = createRequire(import.meta.url);
const httpProxy = require('http-proxy') as HttpProxyModule;

const { port, upstream } = peerArgs();
const agent = new Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: upstream.origin, agent });
const server = createServer((req, res) => {
  proxy.web(req, res, {}, () => {
    if (res.headersSent) res.destroy();
    else res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
  });
});
server.listen(port, '127.0.0.1');
exitOnSignals(() => new Promise((r) => server.close(r)));
