// A gateway with real state to show on the status page: two upstreams (one killed and brought
// back by the tests), an in-process agent that answers and one whose socket is missing, a rate
// limit that rejects, a cached route, and the status-page builtin on a loopback admin listener.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import http from 'node:http';
import { closeServer, startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { RECOVERY_MS, until } from '../../helpers/until.ts';
import { allow, runAgent, type RunningAgent } from '../../../src/agent-sdk/index.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import type { StatusReport } from '../../../src/status/report.ts';

export const XSS_ROUTE = '<img src=x id=xss onerror="document.title=1">';

export interface StatusWorld {
  gw: Gateway;
  /** public listener base URL */
  url: string;
  /** admin listener base URL */
  admin: string;
  good: TestUpstream;
  /** the upstream the tests kill and restart (same port) */
  flaky: { port: number; server: http.Server | undefined };
  agent: RunningAgent;
  config(extraRoute?: string): string;
  report(): Promise<StatusReport>;
  restartFlaky(): Promise<void>;
  killFlaky(): Promise<void>;
  close(): Promise<void>;
}

async function listenOn(port: number): Promise<http.Server> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('flaky ok');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return server;
}

export async function startStatusWorld(): Promise<StatusWorld> {
  const dir = mkdtempSync(join(tmpdir(), 'sst-'));
  const good = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300' });
    res.end('good');
  });
  const first = await listenOn(0);
  const flaky = { port: (first.address() as { port: number }).port, server: first as http.Server | undefined };
  const agent = await runAgent({ socketPath: join(dir, 'guard.sock'), name: 'guard', log: () => undefined, onRequestHeaders: () => allow() });
  const config = (extraRoute = '') => `
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "admin" { address "127.0.0.1:0" }
}
agents {
  agent "guard" { unix-socket "${join(dir, 'guard.sock')}"; events "request_headers"; timeout-ms 2000 }
  agent "gone" { unix-socket "${join(dir, 'gone.sock')}"; events "request_headers"; timeout-ms 300; pool { reconnect-interval-ms 200 } }
}
filters {
  filter "guard" { type "agent"; agent "guard"; failure-mode "closed" }
  filter "gone" { type "agent"; agent "gone"; failure-mode "open" }
  filter "tight" { type "rate-limit"; max-rps 1; burst 1; key "client-ip" }
}
cache { enabled #true; backend "memory" }
routes {
  route "status-page" { priority "high"; listeners "admin"; matches { path-prefix "/_/status" }; builtin-handler "status-page" }
  route "limited" { listeners "http"; matches { path-prefix "/limited" }; upstream "solo"; filters "tight" }
  route "cached" { listeners "http"; matches { path-prefix "/cached" }; upstream "solo"; cache { enabled #true } }
  route "${XSS_ROUTE.replace(/"/g, '\\"')}" { listeners "http"; matches { path-prefix "/odd" }; upstream "solo" }
  route "pool" { listeners "http"; matches { path-prefix "/" }; upstream "pool"; filters "guard" "gone" }
  ${extraRoute}
}
upstreams {
  upstream "pool" {
    target "${good.address}"
    target "127.0.0.1:${flaky.port}"
    load-balancing "round_robin"
    circuit-breaker { failure-threshold 2; success-threshold 1; timeout-seconds 1; half-open-max-requests 1 }
    retry-policy { max-attempts 2 }
  }
  upstream "solo" { target "${good.address}" }
}
`;
  const { gw, url } = await gatewayFrom(config());
  const world: StatusWorld = {
    gw,
    url: url('http'),
    admin: url('admin'),
    good,
    flaky,
    agent,
    config,
    async report() {
      const r = await request(`${url('admin')}/_/status?format=json`);
      if (r.status !== 200) throw new Error(`status JSON: ${r.status} ${r.body}`);
      return JSON.parse(r.body) as StatusReport;
    },
    async killFlaky() {
      const s = flaky.server;
      flaky.server = undefined;
      await closeServer(s);
    },
    async restartFlaky() {
      flaky.server = await listenOn(flaky.port);
    },
    async close() {
      await gw.close();
      await world.killFlaky();
      await agent.close();
      await good.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}

/**
 * Sends requests through the pool route until `done(report)` holds; bounded past the breakers'
 * backoffs (RECOVERY_MS), failing with `what` and the last report.
 */
export async function driveUntil(w: StatusWorld, done: (r: StatusReport) => boolean, what: string): Promise<StatusReport> {
  let last: StatusReport | undefined;
  let i = 0;
  await until(
    () => `${what} (after ${i} rounds; last report: ${JSON.stringify(last?.upstreams)})`,
    async () => {
      for (let k = 0; k < 4; k++) await request(`${w.url}/p/${i}-${k}`).catch(() => undefined);
      i++;
      last = await w.report();
      return done(last);
    },
    RECOVERY_MS,
    150,
  );
  return last!;
}

/** The flaky target's entry in a report. */
export function flakyTarget(w: StatusWorld, r: StatusReport) {
  return r.upstreams.find((u) => u.id === 'pool')?.targets.find((t) => t.address === `127.0.0.1:${w.flaky.port}`);
}
