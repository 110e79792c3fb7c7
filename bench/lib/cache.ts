// Pure builders of `npm run bench:cache` (bench/cache.ts): the origin's extra locations, the nginx
// proxy_cache peer, the Sentinel cache configs and the Zipf key sequences.
import { seededRng } from '../../plugins/balancing/common.ts';

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

/**
 * The Zipf key sequence (1-based keys, P(k) ~ 1/k^s) of `n` requests from a seeded generator: every
 * target gets exactly the same requests, so hit ratios compare caches, not how many requests each
 * proxy managed to serve in a fixed time.
 */
export function zipfSequence(keys: number, s: number, n: number, seed = 42): number[] {
  const cdf = new Float64Array(keys);
  let sum = 0;
  for (let k = 1; k <= keys; k++) cdf[k - 1] = sum += 1 / k ** s;
  const rng = seededRng(seed);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const u = rng() * sum;
    let lo = 0;
    let hi = keys - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < u) lo = mid + 1;
      else hi = mid;
    }
    out.push(lo + 1);
  }
  return out;
}
