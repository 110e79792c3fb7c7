// Targets and pick contexts for balancer table tests.
import type { PickContext, TargetState } from '../../../src/upstream/types.ts';

export interface TestTarget extends TargetState {
  healthy: boolean;
  inFlight: number;
}

export function makeTargets(weights: number[]): TestTarget[] {
  return weights.map((weight, index) => ({
    address: `10.0.0.${index + 1}:8080`,
    host: `10.0.0.${index + 1}`,
    port: 8080,
    weight,
    index,
    healthy: true,
    inFlight: 0,
  }));
}

export function ctx(over: { clientIp?: string; path?: string; headers?: Record<string, string>; cookies?: Record<string, string>; exclude?: Set<number> } = {}): PickContext {
  const headers = over.headers ?? {};
  const cookies = over.cookies ?? {};
  return {
    clientIp: over.clientIp ?? '192.0.2.1',
    path: over.path ?? '/',
    header: (n) => headers[n],
    cookie: (n) => cookies[n],
    ...(over.exclude ? { exclude: over.exclude } : {}),
  };
}

export function counts(n: number, picks: number[]): number[] {
  const c = new Array<number>(n).fill(0);
  for (const p of picks) c[p]!++;
  return c;
}
