// The floor for a Node proxy: node:http in, one undici Pool out, bodies streamed both ways, no
// framework. It strips hop-by-hop headers (RFC 9110 §7.6.1) and nothing else, so it is what any
// Node gateway costs at minimum. Usage: node --import tsx bench/peers/raw-forwarder.ts --port P --upstream URL
import { createServer, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import { pipeline } from 'node:stream';
import { Pool } from 'undici';
import { exitOnSignals, peerArgs } from './args.ts';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Copies headers minus hop-by-hop ones and any named in Connection. */
function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const connection = headers.connection;
  const named = typeof connection === 'string' ? connection.toLowerCase().split(',').map((s) => s.trim()) : [];
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || named.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

const { port, upstream } = peerArgs();
const pool = new Pool(upstream.origin, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 });

const server = createServer((req, res) => {
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool
    .request({
      method: req.method as 'GET',
      path: req.url ?? '/',
      headers: endToEnd(req.headers) as Record<string, string | string[]>,
      body: hasBody ? req : null,
    })
    .then((up) => {
      res.writeHead(up.statusCode, endToEnd(up.headers));
      pipeline(up.body, res, () => {
        // a client that went away mid-body: nothing else to clean up
      });
    })
    .catch(() => {
      if (res.headersSent) res.destroy();
      else res.writeHead(502, { 'content-type': 'text/plain' }).end('bad gateway\n');
    });
});
server.keepAliveTimeout = 75_000;
server.listen(port, '127.0.0.1');
exitOnSignals(() => Promise.all([new Promise((r) => server.close(r)), pool.close()]));
