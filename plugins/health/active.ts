// Active health checks: settings from `health-check { }`, a pure threshold state machine, the
// http and tcp probes (gRPC in grpc-health.ts) and a jittered scheduler, one timer per target.
import { connect as tcpConnect } from 'node:net';
import type { Dispatcher } from 'undici';
import type { HealthCheckConfig } from './schema.ts';

export type CheckKind = 'http' | 'tcp' | 'grpc';

export interface HealthCheckSettings {
  kind: CheckKind;
  path: string;
  host: string | undefined;
  expected: (status: number) => boolean;
  expectedText: string;
  service: string;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
}

/** `expected-status`: 200, "200", "2xx", "200-399" or "200,204". */
export function parseExpectedStatus(v: number | string | undefined): ((s: number) => boolean) | string {
  if (v === undefined) return (s) => s === 200;
  if (typeof v === 'number') return (s) => s === v;
  const parts = v.split(',').map((p) => p.trim().toLowerCase());
  const tests: ((s: number) => boolean)[] = [];
  for (const p of parts) {
    let m: RegExpExecArray | null;
    if ((m = /^(\d{3})$/.exec(p))) {
      const n = Number(m[1]);
      tests.push((s) => s === n);
    } else if ((m = /^([1-5])xx$/.exec(p))) {
      const c = Number(m[1]);
      tests.push((s) => Math.floor(s / 100) === c);
    } else if ((m = /^(\d{3})-(\d{3})$/.exec(p))) {
      const lo = Number(m[1]);
      const hi = Number(m[2]);
      tests.push((s) => s >= lo && s <= hi);
    } else {
      return `invalid expected-status "${v}": use e.g. 200, "2xx", "200-399" or "200,204"`;
    }
  }
  return (s) => tests.some((t) => t(s));
}

/** Normalised settings, or an error message. */
export function healthCheckSettings(cfg: HealthCheckConfig): HealthCheckSettings | string {
  const type = cfg.type;
  const kind = (type?.kind ?? 'http').toLowerCase();
  if (kind !== 'http' && kind !== 'tcp' && kind !== 'grpc') {
    return `health-check type "${type?.kind}" is not supported; use "http", "tcp" or "grpc"`;
  }
  const expected = parseExpectedStatus(type?.['expected-status']);
  if (typeof expected === 'string') return expected;
  const intervalMs = (cfg['interval-secs'] ?? 10) * 1000;
  const timeoutMs = (cfg['timeout-secs'] ?? 5) * 1000;
  return {
    kind,
    path: type?.path ?? '/health',
    host: type?.host,
    expected,
    expectedText: String(type?.['expected-status'] ?? 200),
    service: type?.service ?? '',
    intervalMs,
    // a probe never outlives its interval, so checks never pile up
    timeoutMs: Math.min(timeoutMs, intervalMs),
    healthyThreshold: cfg['healthy-threshold'] ?? 2,
    unhealthyThreshold: cfg['unhealthy-threshold'] ?? 3,
  };
}

export interface ThresholdState {
  readonly healthy: boolean;
  readonly okStreak: number;
  readonly failStreak: number;
}

/** Targets start healthy (traffic flows before the first check completes), as in Sentinel. */
export const INITIAL_THRESHOLD: ThresholdState = { healthy: true, okStreak: 0, failStreak: 0 };

/** unhealthy-threshold consecutive failures eject; healthy-threshold consecutive successes re-admit. */
export function thresholdNext(s: ThresholdState, ok: boolean, cfg: Pick<HealthCheckSettings, 'healthyThreshold' | 'unhealthyThreshold'>): ThresholdState {
  if (ok) {
    const okStreak = s.okStreak + 1;
    return { healthy: s.healthy || okStreak >= cfg.healthyThreshold, okStreak, failStreak: 0 };
  }
  const failStreak = s.failStreak + 1;
  return { healthy: s.healthy && failStreak < cfg.unhealthyThreshold, okStreak: 0, failStreak };
}

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/** GET `path` through `dispatcher`; healthy when the status is expected. */
export async function httpProbe(dispatcher: Dispatcher, origin: string, s: HealthCheckSettings, hostHeader: string): Promise<ProbeResult> {
  const signal = AbortSignal.timeout(s.timeoutMs);
  try {
    const res = await dispatcher.request({
      origin,
      path: s.path,
      method: 'GET',
      headers: { host: s.host ?? hostHeader, 'user-agent': 'sentinel-health-check' },
      signal,
      headersTimeout: s.timeoutMs,
      bodyTimeout: s.timeoutMs,
    });
    await res.body.dump();
    return s.expected(res.statusCode) ? { ok: true, detail: `status ${res.statusCode}` } : { ok: false, detail: `status ${res.statusCode}, expected ${s.expectedText}` };
  } catch (e) {
    return { ok: false, detail: signal.aborted ? 'timeout' : ((e as NodeJS.ErrnoException).code ?? (e as Error).message) };
  }
}

/** A TCP connect within the timeout. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (r: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, detail: 'timeout' }), timeoutMs);
    socket.once('connect', () => done({ ok: true, detail: 'connected' }));
    socket.once('error', (e: NodeJS.ErrnoException) => done({ ok: false, detail: e.code ?? e.message }));
  });
}

/**
 * Runs `probe(id)` for each target id every interval, jittered (first run uniformly in
 * [0, interval), then interval ±10%) so checks of many targets do not align. A probe never
 * overlaps the previous one for the same target. Ids can be added and removed while running
 * (discovery changes the target set).
 */
export class HealthScheduler {
  private readonly timers = new Map<number, NodeJS.Timeout | undefined>();
  private started = false;
  private stopped = false;

  constructor(
    ids: number | Iterable<number>,
    private readonly intervalMs: number,
    private readonly probe: (id: number) => Promise<void>,
    private readonly rng: () => number = Math.random,
  ) {
    const list = typeof ids === 'number' ? Array.from({ length: ids }, (_, i) => i) : ids;
    for (const id of list) this.timers.set(id, undefined);
  }

  start(): void {
    this.started = true;
    for (const id of this.timers.keys()) this.schedule(id, this.rng() * this.intervalMs);
  }

  /** Starts checking a new target (first check at a random point of the first interval). */
  add(id: number): void {
    if (this.timers.has(id) || this.stopped) return;
    this.timers.set(id, undefined);
    if (this.started) this.schedule(id, this.rng() * this.intervalMs);
  }

  /** Stops checking a removed target (a probe already running finishes and is not rescheduled). */
  remove(id: number): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  private schedule(id: number, delay: number): void {
    if (this.stopped || !this.timers.has(id)) return;
    const timer = setTimeout(() => {
      void this.probe(id).finally(() => this.schedule(id, this.intervalMs * (0.9 + 0.2 * this.rng())));
    }, delay);
    timer.unref();
    this.timers.set(id, timer);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) if (t) clearTimeout(t);
  }
}
