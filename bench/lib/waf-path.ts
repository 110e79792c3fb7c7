// Pieces of the whole-WAF-path benches shared by bench/waf-modsec.ts (`npm run bench:waf`),
// bench/waf-insitu.ts and bench/waf-gc.ts: the compiled gateway and agent of a checkout, the
// gateway config with the WAF agent filter on the route, and the wrk scripts of the two requests.
import { copyFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { buildSentinel } from './targets.ts';
import { BROWSER_HEADERS, getPath, jsonBody, POST_PATH } from './waf-requests.ts';

const compiled = new Map<string, { gateway: string; agent: string; dist: string }>();

/** The compiled gateway and sentinel-waf entry of a checkout (tsc into <root>/.tmp/bench/dist, once per run). */
export async function compiledWafEntries(root: string): Promise<{ gateway: string; agent: string; dist: string }> {
  const have = compiled.get(root);
  if (have) return have;
  const gateway = await buildSentinel(root);
  const dist = dirname(dirname(gateway));
  // tsc emits no .conf files: the agent reads its recommended engine config next to crs/index.js.
  const conf = join(dist, 'waf', 'crs', 'recommended.conf');
  if (!existsSync(conf)) copyFileSync(join(root, 'src', 'waf', 'crs', 'recommended.conf'), conf);
  const entries = { gateway, agent: join(dist, 'waf', 'agent', 'main.js'), dist: dirname(dist) };
  compiled.set(root, entries);
  return entries;
}

/** The passthrough config with the "waf" agent filter on its route; `transport` is the agent
 * block's transport line (unix-socket, or in-process with its config). */
export function sentinelWafConfig(base: string, transport: string, workerThreads: number): string {
  const withFilter = base.replace(/( {8}upstream "origin"\n)/, `$1        filters "waf"\n`).replace(/worker-threads \d+/, `worker-threads ${workerThreads}`);
  if (!withFilter.includes('filters "waf"')) throw new Error('the passthrough config no longer has the route line this bench extends');
  return `${withFilter}
agents {
    agent "waf" {
        ${transport}
        events "request_headers" "request_body"
        timeout-ms 10000
    }
}
filters {
    filter "waf" {
        type "agent"
        agent "waf"
        failure-mode "closed"
    }
}
waf {
    body-inspection {
        content-types "application/json" "application/x-www-form-urlencoded"
    }
}
`;
}

const luaString = (s: string): string => JSON.stringify(s);

/**
 * Where a run's counter starts: the run's start second times a million, so every run (every round
 * of every target) sends values no earlier run sent. Starting at 1 in each run made later rounds
 * repeat earlier rounds' values, which the WAF's caches keep (session 22: the figures of record
 * before then were taken partly with such repeats).
 */
const COUNTER_START = { fresh: 'local n = (os.time() % 1000000) * 1000000', restart: 'local n = 0' } as const;

/**
 * wrk's Lua script for the benign GET or the 2 KiB JSON POST, a counter in every request, unique
 * across runs (COUNTER_START), or with `counter: 'restart'` from 1 in every run (to reach the
 * caches' admission and eviction regime on purpose, as bench/waf-inproc-split.ts does). `host`:
 * a Host header instead of wrk's (the numeric 127.0.0.1:port, which CRS 920350 "Host header is a
 * numeric IP address" matches at PL1: a warning, score 3, below the threshold, but a logged match,
 * so every request gets detection headers and an audit line).
 */
export function wrkScript(kind: 'get' | 'post', host = '', counter: keyof typeof COUNTER_START = 'fresh'): string {
  const all: [string, string][] = host ? [['Host', host], ...BROWSER_HEADERS] : BROWSER_HEADERS;
  const headers = all.map(([k, v]) => `headers[${luaString(k)}] = ${luaString(v)}`).join('\n');
  if (kind === 'get') {
    const [getPre] = getPath('{{n}}').split('{{n}}') as [string];
    return `${COUNTER_START[counter]}
local headers = {}
${headers}
request = function()
  n = n + 1
  return wrk.format("GET", ${luaString(getPre)} .. n, headers)
end
`;
  }
  const [pre, post] = jsonBody('{{n}}').split('{{n}}') as [string, string];
  return `${COUNTER_START[counter]}
local headers = {}
${headers}
headers["Content-Type"] = "application/json"
request = function()
  n = n + 1
  local id = string.format("%012d", n % 1000000000000)
  return wrk.format("POST", ${luaString(POST_PATH)}, headers, ${luaString(pre)} .. id .. ${luaString(post)})
end
`;
}
