// A fixed number of HTTP/1.1 requests with h2load (nghttp2-client): unlike wrk, which runs for a
// time, h2load sends exactly -n requests, so two processes measured this way did the same work
// (the same JIT and GC history per request), which CPU time per request needs.
import { runPinned } from './processes.ts';

export interface H2loadResult {
  durationS: number;
  requestsPerSec: number;
  total: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
}

const SECONDS: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60 };

/** Reads h2load's summary ("finished in 3.52s, 11363.64 req/s, ..." and the requests line). Pure. */
export function parseH2loadOutput(text: string): H2loadResult {
  const fin = /finished in ([\d.]+)(us|ms|s|m), ([\d.]+) req\/s/.exec(text);
  const req = /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(text);
  const codes = /status codes: (\d+) 2xx/.exec(text);
  if (!fin || !req || !codes) throw new Error(`h2load: unexpected output ${text.slice(-600)}`);
  return {
    durationS: Number(fin[1]) * SECONDS[fin[2]!]!,
    requestsPerSec: Number(fin[3]),
    total: Number(req[1]),
    succeeded: Number(req[2]),
    failed: Number(req[3]),
    errored: Number(req[4]),
    timeout: Number(req[5]),
    status2xx: Number(codes[1]),
  };
}

/** Exactly `n` keep-alive GETs over `connections` HTTP/1.1 connections, one h2load thread, pinned to `cpu`. */
export async function h2loadFixed(url: string, n: number, connections: number, cpu: number | null): Promise<H2loadResult> {
  const out = await runPinned('h2load', cpu, 'h2load', ['--h1', '-t', '1', '-c', String(connections), '-n', String(n), url], 600_000);
  return parseH2loadOutput(out);
}
