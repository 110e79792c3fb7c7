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
  /** more `matches` conditions, KDL (`path-spelling "windows"`) */
  matches?: string;
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
${routes.map((r, i) => `  route "r${i}" { matches { path-prefix "${r.prefix}"${r.matches ? `; ${r.matches}` : ''} }; upstream "backend"; filters "f${i}" }`).join('\n')}
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

/**
 * One call to a rate limit, timed on the test's wall clock (Date.now(): the clock the gateway's
 * local buckets and Redis's TIME read on this machine), so the limiter decided inside
 * [sent, answered] however slow the machine was.
 */
export interface TimedCall {
  sent: number;
  answered: number;
  allowed: boolean;
}

/** Times one call; `call` resolves to whether the limit let it through. */
export async function timedCall(call: () => Promise<boolean>): Promise<TimedCall> {
  const sent = Date.now();
  const allowed = await call();
  return { sent, answered: Date.now(), allowed };
}

/**
 * Calls made one after another against a sliding-window log that starts empty, allows `limit`
 * calls in any `windowMs` and logs only the calls it allows (the Redis backend). A count check
 * guarded by "if the loop took under a second" checks nothing on a slow run; this checks every
 * call whose answer the timing decides: one that can have seen fewer than `limit` allowed calls
 * in its window must pass, one that certainly saw `limit` must be refused. Returns the calls
 * that disagree (none when the limiter is right, at any speed).
 */
export function slidingWindowMismatches(calls: readonly TimedCall[], limit: number, windowMs: number): string[] {
  const wrong: string[] = [];
  calls.forEach((c, i) => {
    const earlier = calls.slice(0, i).filter((e) => e.allowed);
    // decided at T in [sent, answered]; an earlier allowed call (logged at T' in its own span) counts when T' > T - windowMs
    const surely = earlier.filter((e) => e.sent > c.answered - windowMs).length;
    const maybe = earlier.filter((e) => e.answered > c.sent - windowMs).length;
    if (maybe < limit && !c.allowed) wrong.push(`call ${i} refused with at most ${maybe} of ${limit} in its window`);
    if (surely >= limit && c.allowed) wrong.push(`call ${i} allowed with ${surely} of ${limit} already in its window`);
  });
  return wrong;
}

/**
 * The same for a token bucket (the local limiter, and the shared limits' local fallback) of
 * `capacity` tokens refilled at `perSecond`: a call must be refused once the calls allowed before
 * it used up every token the bucket can have held by then (capacity plus the refill since the
 * first call was sent), and, when the bucket `startsFull` at the first call (a fresh key), the
 * first `capacity` calls must pass. (A fallback bucket mirrors the shared backend's answers, so
 * it may hold less.)
 */
export function bucketMismatches(calls: readonly TimedCall[], capacity: number, perSecond: number, opts: { startsFull: boolean }): string[] {
  const wrong: string[] = [];
  let allowedBefore = 0;
  calls.forEach((c, i) => {
    const mostTokens = capacity + ((c.answered - calls[0]!.sent) * perSecond) / 1000 - allowedBefore;
    if (opts.startsFull && allowedBefore < capacity && !c.allowed) wrong.push(`call ${i} refused after only ${allowedBefore} allowed (capacity ${capacity})`);
    if (mostTokens < 1 && c.allowed) wrong.push(`call ${i} allowed with at most ${mostTokens.toFixed(2)} tokens left`);
    if (c.allowed) allowedBefore++;
  });
  return wrong;
}
