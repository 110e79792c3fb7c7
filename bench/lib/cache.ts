// Pure builders of `npm run bench:cache` (bench/cache.ts): the origin's extra locations, the nginx
// proxy_cache peer, the Sentinel cache configs and the Zipf-distributed wrk script.

/** Paths of the cache bench: explicitly cacheable copies of the origin's bodies, and the Zipf key space. */
export const CACHE_SMALL = '/c/small';
export const CACHE_LARGE = '/c/large';
export const ZIPF_PREFIX = '/z/';
export const ORIGIN_STATUS = '/_origin_status';
export const STATS_PATH = '/_cache/stats';

/**
 * Locations added to the bench origin (bench/lib/configs.ts originNginxConf): the same bodies as
 * /small and /large with `Cache-Control: max-age=3600` (so every cache under test keeps them for
 * the whole run, with no heuristic guess from Last-Modified), the Zipf keys (each a 16 KiB body),
 * and stub_status, whose request counter is how origin requests are counted.
 */
export function originCacheLocations(dir: string, smallBody: string): string {
  return `    location = ${CACHE_SMALL} { add_header Cache-Control "max-age=3600"; return 200 "${smallBody}"; }
    location = ${CACHE_LARGE} { add_header Cache-Control "max-age=3600"; alias ${dir}/large.body; }
    location ${ZIPF_PREFIX} { add_header Cache-Control "max-age=3600"; root ${dir}; try_files /large.body =404; }
    location = ${ORIGIN_STATUS} { stub_status; }
`;
}

/** Requests handled by an nginx, from the stub_status page ("server accepts handled requests\n a b c"). */
export function parseStubStatusRequests(text: string): number {
  const m = /server accepts handled requests\s+\d+\s+\d+\s+(\d+)/.exec(text);
  if (!m) throw new Error(`not a stub_status page: ${text.slice(0, 200)}`);
  return Number(m[1]);
}

/** The http-block part of nginx's proxy_cache peer: a keys zone and an on-disk cache of `maxBytes`. */
export function nginxProxyCacheDirectives(cacheDir: string, maxBytes: number): { http: string; location: string } {
  return {
    http: `  proxy_cache_path ${cacheDir} levels=1:2 keys_zone=bench:32m max_size=${Math.floor(maxBytes / 1024)}k inactive=60m use_temp_path=off;\n`,
    location: `      proxy_cache bench;\n      proxy_cache_lock on;\n`,
  };
}

export interface SentinelCacheOptions {
  backend: 'memory' | 'disk' | 'hybrid';
  /** memory budget (max-size), bytes */
  memoryBytes: number;
  diskPath?: string;
  diskBytes?: number;
}

/** The passthrough config (bench/configs/sentinel-passthrough.kdl) with the route cache on, a cache-stats route and the storage block. */
export function sentinelCacheConfig(passthrough: string, o: SentinelCacheOptions): string {
  let out = passthrough.replace(/( {8}upstream "origin"\n)/, `$1        cache { enabled #true }\n`);
  if (out === passthrough) throw new Error('the passthrough config no longer has the route line this bench extends');
  out = out.replace(/^routes \{\n/m, `routes {\n    route "cache-stats" {\n        matches { path "${STATS_PATH}" }\n        builtin-handler "cache-stats"\n    }\n`);
  if (!out.includes(STATS_PATH)) throw new Error('the passthrough config no longer has a routes block');
  const disk = o.backend === 'memory' ? '' : `\n    disk-path "${o.diskPath}"\n    disk-max-size ${o.diskBytes ?? o.memoryBytes * 10}`;
  return `${out}
cache {
    backend "${o.backend}"
    max-size ${o.memoryBytes}${disk}
}
`;
}

/**
 * A wrk Lua script requesting ZIPF_PREFIX<k> for k in 1..keys with P(k) ~ 1/k^s (the usual model
 * of web object popularity), from a fixed seed: every target sees the same key sequence.
 */
export function zipfWrkScript(keys: number, s: number, seed = 42): string {
  if (!Number.isInteger(keys) || keys < 1) throw new Error(`keys must be a positive integer, got ${keys}`);
  if (!(s > 0)) throw new Error(`the Zipf exponent must be > 0, got ${s}`);
  return `local K = ${keys}
local s = ${s}
local cdf = {}
local sum = 0
for k = 1, K do sum = sum + 1 / (k ^ s); cdf[k] = sum end
for k = 1, K do cdf[k] = cdf[k] / sum end
math.randomseed(${seed})
request = function()
  local u = math.random()
  local lo, hi = 1, K
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format("GET", "${ZIPF_PREFIX}" .. lo)
end
`;
}

/** The share of requests a perfect cache of the `top` most popular keys would answer (for the report). */
export function zipfTopShare(keys: number, s: number, top: number): number {
  let all = 0;
  let head = 0;
  for (let k = 1; k <= keys; k++) {
    const p = 1 / k ** s;
    all += p;
    if (k <= top) head += p;
  }
  return head / all;
}
