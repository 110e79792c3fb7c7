// Load-balancing algorithm table: Sentinel's names (hyphen/underscore/case-insensitive) -> factory.
// An unknown name is a config error with a did-you-mean (Sentinel silently fell back to round robin).
import type { Balancer } from '../../src/upstream/types.ts';
import { didYouMean } from '../../src/config/diagnostics.ts';
import { roundRobin } from './round-robin.ts';
import type { Rng } from './common.ts';

export interface BalancerDeps {
  rng: Rng;
  /** monotonic milliseconds (performance.now in production) */
  now: () => number;
}

/** Spelling -> canonical algorithm name (keys already normalised: lower case, '-' -> '_'). */
const ALIASES: Record<string, string> = {
  round_robin: 'round_robin',
  roundrobin: 'round_robin',
};

type Factory = (deps: BalancerDeps) => Balancer;
const FACTORIES: Record<string, Factory> = {
  round_robin: () => roundRobin(),
};

export function normaliseAlgorithmName(name: string): string {
  return name.trim().toLowerCase().replace(/-/g, '_');
}

/** The algorithm name of a `load-balancing` value (string or sticky block). */
export function algorithmOf(value: unknown): string {
  if (value === undefined) return 'round_robin';
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { algorithm?: unknown }).algorithm === 'string') {
    return (value as { algorithm: string }).algorithm;
  }
  return String(value);
}

/** Canonical algorithm name, or undefined when the name is unknown. */
export function canonicalAlgorithm(value: unknown): string | undefined {
  return ALIASES[normaliseAlgorithmName(algorithmOf(value))];
}

/** Error message for an unknown/unsupported `load-balancing` value, undefined when valid. */
export function validateLoadBalancing(value: unknown): string | undefined {
  const name = algorithmOf(value);
  const canonical = canonicalAlgorithm(value);
  if (canonical === undefined) {
    return `unknown load-balancing algorithm "${name}"${didYouMean(normaliseAlgorithmName(name), Object.keys(ALIASES))}; valid: ${[...new Set(Object.values(ALIASES))].join(', ')}`;
  }
  return undefined;
}

export function createBalancer(value: unknown, deps: BalancerDeps): Balancer {
  const err = validateLoadBalancing(value);
  if (err) throw new Error(err);
  return FACTORIES[canonicalAlgorithm(value)!]!(deps);
}
