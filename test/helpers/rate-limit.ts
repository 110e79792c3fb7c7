// A gateway whose routes each carry one strict rate limit (max-rps 0.01, burst 0: a key's second
// request within the test is 429), for the tests of what a key is made of, and a client that
// sends the request target exactly as written (no URL parsing in between).
import http from 'node:http';
import { gatewayFrom } from './gateway.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';
import type { Gateway } from '../../src/server/gateway.ts';

export interface LimitedRoute {
  /** the route's `path-prefix` (routes are matched in the order given) */
  prefix: string;
  /** the rate-limit filter's `key` */
  key: string;
  /** more rate-limit filter settings, KDL (`client-ipv6-prefix 128`) */
  extra?: string;
}

export interface LimitedGateway {
  up: TestUpstream;
  gw: Gateway;
  /** the status of one request to `path` on the gateway's listener, with `headers` */
  status(path: string, headers?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

export async function startLimitedGateway(routes: readonly LimitedRoute[], opts: { system?: string; address?: string } = {}): Promise<LimitedGateway> {
  const up = await startUpstream();
  const address = opts.address ?? '127.0.0.1:0';
  const { gw } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1${opts.system ? `; ${opts.system}` : ''} }
listeners { listener "http" { address "${address}" } }
routes {
${routes.map((r, i) => `  route "r${i}" { matches { path-prefix "${r.prefix}" }; upstream "backend"; filters "f${i}" }`).join('\n')}
}
upstreams { upstream "backend" { target "${up.address}" } }
filters {
${routes.map((r, i) => `  filter "f${i}" { type "rate-limit"; max-rps 0.01; burst 0; key "${r.key}"${r.extra ? `; ${r.extra}` : ''} }`).join('\n')}
}
`);
  const port = gw.address('http').port;
  const v6 = address.startsWith('[');
  const host = v6 ? address.slice(1, address.indexOf(']')) : address.slice(0, address.lastIndexOf(':'));
  return {
    up,
    gw,
    status: (path, headers = {}) =>
      new Promise((resolve, reject) => {
        const req = http.request({ host, family: v6 ? 6 : 4, port, path, headers, agent: false }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', reject);
        req.end();
      }),
    close: async () => {
      await gw.close();
      await up.close();
    },
  };
}
