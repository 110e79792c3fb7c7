// Load-balancing algorithm table: Sentinel's names (case-insensitive, '-' or '_') -> factory.
// An unknown name is a config error with a did-you-mean (Sentinel silently fell back to round
// robin). `load-balancing "<alg>" { ... }` carries options: hash-key / virtual-nodes for the hash
// algorithms, cookie-* and fallback for sticky.
import type { Balancer } from '../../src/upstream/types.ts';
import { didYouMean } from '../../src/config/diagnostics.ts';
import { parseDurationMs } from '../../src/config/types-helpers.ts';
import type { Rng } from './common.ts';
import type { LoadBalancingOptions } from './schema.ts';
import { roundRobin } from './round-robin.ts';
import { weightedRoundRobin } from './weighted-round-robin.ts';
import { random } from './random.ts';
import { leastConnections, weightedLeastConnections } from './least-connections.ts';
import { powerOfTwoChoices } from './p2c.ts';
import { peakEwma } from './peak-ewma.ts';
import { ipHash } from './ip-hash.ts';
import { consistentHash } from './consistent-hash.ts';
import { maglev } from './maglev.ts';
import { sticky } from './sticky.ts';
import { parseHashKey, type KeyFn } from './hash-key.ts';

export interface BalancerDeps {
  rng: Rng;
  /** monotonic milliseconds (performance.now in production) */
  now: () => number;
}

/** Spelling (lower case, '-' already turned into '_') -> canonical name. */
const ALIASES: Record<string, string> = {
  round_robin: 'round_robin',
  roundrobin: 'round_robin',
  weighted: 'weighted_round_robin',
  weighted_round_robin: 'weighted_round_robin',
  smooth_weighted_round_robin: 'weighted_round_robin',
  random: 'random',
  least_connections: 'least_connections',
  leastconnections: 'least_connections',
  least_conn: 'least_connections',
  weighted_least_connections: 'weighted_least_connections',
  weighted_least_conn: 'weighted_least_connections',
  wlc: 'weighted_least_connections',
  power_of_two_choices: 'power_of_two_choices',
  p2c: 'power_of_two_choices',
  peak_ewma: 'peak_ewma',
  peakewma: 'peak_ewma',
  ewma: 'peak_ewma',
  adaptive: 'adaptive',
  ip_hash: 'ip_hash',
  iphash: 'ip_hash',
  consistent_hash: 'consistent_hash',
  consistenthash: 'consistent_hash',
  maglev: 'maglev',
  sticky: 'sticky',
  sticky_session: 'sticky',
};

/** Names Sentinel knows but this gateway does not implement: a clear error instead of a silent substitute. */
const NOT_IMPLEMENTED: Record<string, string> = {
  least_tokens_queued: 'LLM token-aware balancing (inference) is out of scope',
  leasttokensqueued: 'LLM token-aware balancing (inference) is out of scope',
  least_tokens: 'LLM token-aware balancing (inference) is out of scope',
  locality_aware: 'targets carry no locality/zone information here',
  localityaware: 'targets carry no locality/zone information here',
  locality: 'targets carry no locality/zone information here',
  deterministic_subset: 'subsetting is not implemented',
  subset: 'subsetting is not implemented',
  subsetting: 'subsetting is not implemented',
};

export const ALGORITHMS: readonly string[] = [...new Set(Object.values(ALIASES))];

export function normaliseAlgorithmName(name: string): string {
  return name.trim().toLowerCase().replace(/-/g, '_');
}

function optionsOf(value: unknown): LoadBalancingOptions | undefined {
  return typeof value === 'object' && value !== null ? (value as LoadBalancingOptions) : undefined;
}

/** The algorithm name of a `load-balancing` value (string or block). */
export function algorithmOf(value: unknown): string {
  if (value === undefined) return 'round_robin';
  if (typeof value === 'string') return value;
  const o = optionsOf(value);
  return typeof o?.algorithm === 'string' ? o.algorithm : String(value);
}

/** Canonical algorithm name, or undefined when the name is unknown. */
export function canonicalAlgorithm(value: unknown): string | undefined {
  return ALIASES[normaliseAlgorithmName(algorithmOf(value))];
}

/** Error message for an invalid `load-balancing` value (name, hash-key, fallback), undefined when valid. */
export function validateLoadBalancing(value: unknown): string | undefined {
  const name = algorithmOf(value);
  const norm = normaliseAlgorithmName(name);
  const why = NOT_IMPLEMENTED[norm];
  if (why) return `load-balancing "${name}" is not supported: ${why}; use one of ${ALGORITHMS.join(', ')}`;
  const canonical = ALIASES[norm];
  if (canonical === undefined) {
    return `unknown load-balancing algorithm "${name}"${didYouMean(norm, Object.keys(ALIASES))}; valid: ${ALGORITHMS.join(', ')}`;
  }
  const o = optionsOf(value);
  if (o?.['hash-key'] !== undefined) {
    const k = parseHashKey(o['hash-key']);
    if (typeof k === 'string') return k;
  }
  if (o?.['cookie-ttl'] !== undefined) {
    try {
      parseDurationMs(o['cookie-ttl']);
    } catch (e) {
      return `cookie-ttl: ${(e as Error).message}`;
    }
  }
  if (canonical === 'sticky' && o?.fallback !== undefined) {
    const fb = ALIASES[normaliseAlgorithmName(o.fallback)];
    if (fb === undefined) return `unknown sticky fallback "${o.fallback}"${didYouMean(normaliseAlgorithmName(o.fallback), Object.keys(ALIASES))}`;
    if (fb === 'sticky') return 'sticky fallback cannot be "sticky"';
  }
  return undefined;
}

function keyFn(o: LoadBalancingOptions | undefined): KeyFn {
  return parseHashKey(o?.['hash-key']) as KeyFn; // validated above
}

function build(canonical: string, o: LoadBalancingOptions | undefined, deps: BalancerDeps): Balancer {
  switch (canonical) {
    case 'round_robin':
      return roundRobin();
    case 'weighted_round_robin':
      return weightedRoundRobin();
    case 'random':
      return random(deps.rng);
    case 'least_connections':
      return leastConnections();
    case 'weighted_least_connections':
      return weightedLeastConnections();
    case 'power_of_two_choices':
      return powerOfTwoChoices(deps.rng);
    case 'peak_ewma':
      return peakEwma({ rng: deps.rng, now: deps.now, errorAware: false });
    case 'adaptive':
      return peakEwma({ rng: deps.rng, now: deps.now, errorAware: true });
    case 'ip_hash':
      return ipHash();
    case 'consistent_hash':
      return consistentHash(keyFn(o), o?.['virtual-nodes'] ?? 160);
    case 'maglev':
      return maglev(keyFn(o));
    case 'sticky': {
      const ttlMs = parseDurationMs(o?.['cookie-ttl']);
      const fallback = ALIASES[normaliseAlgorithmName(o?.fallback ?? 'round_robin')]!;
      return sticky({
        cookieName: o?.['cookie-name'] ?? 'SERVERID',
        ...(ttlMs !== undefined ? { ttlSecs: ttlMs / 1000 } : {}),
        path: o?.['cookie-path'] ?? '/',
        secure: o?.['cookie-secure'] ?? false,
        ...(o?.['cookie-same-site'] ? { sameSite: o['cookie-same-site'].toLowerCase() as 'lax' | 'strict' | 'none' } : {}),
        fallback: build(fallback, undefined, deps),
      });
    }
    default:
      throw new Error(`no balancer for "${canonical}"`);
  }
}

/** The balancer for a `load-balancing` value; throws the validateLoadBalancing message when invalid. */
export function createBalancer(value: unknown, deps: BalancerDeps): Balancer {
  const err = validateLoadBalancing(value);
  if (err) throw new Error(err);
  return build(canonicalAlgorithm(value)!, optionsOf(value), deps);
}
