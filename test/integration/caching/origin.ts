// A scripted origin on 127.0.0.1 that counts its hits per path, and small request helpers, for the cache tests.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

export type Script = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** An origin whose behaviour is chosen per path; counts requests per path. */
export async function scriptedOrigin(scripts: Record<string, Script>) {
  const hits = new Map<string, number>();
  const up = await startUpstream((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const n = (hits.get(path) ?? 0) + 1;
    hits.set(path, n);
    const s = scripts[path];
    if (s) return s(req, res, n);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('no script');
  });
  return { up, hits: (path: string) => hits.get(path) ?? 0 };
}

export function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string) {
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

export async function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  const r = await request(url, { method: method as 'GET', headers });
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body };
}

/** A gateway config with the cache on, the cache builtins and one caching catch-all route to `upstream`. */
export function cacheConfig(upstream: TestUpstream, opts: { route?: string; top?: string } = {}) {
  return `
system { graceful-shutdown-timeout-secs 1 }
limits { max-connections-per-client 1000 }  // the coalescing test opens 100 at once
cache { status-header #true; lock-timeout 5; ${opts.top ?? ''} }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "purge" { matches { path-prefix "/admin/cache/purge" }; builtin-handler "cache-purge" }
  route "stats" { matches { path "/admin/cache/stats" }; builtin-handler "cache-stats" }
  route "metrics" { matches { path "/metrics" }; builtin-handler "metrics" }
  route "main" {
    matches { path-prefix "/" }
    upstream "origin"
    cache { enabled #true; ${opts.route ?? ''} }
  }
}
upstreams { upstream "origin" { target "${upstream.address}"; health-check { type "tcp"; interval-secs 3600 } } }
`;
}
