// The target set of one upstream group: static targets plus the last good discovery answer,
// refreshed while the group serves. Target objects are adopted from the previous generation's
// set by address (their breaker, health and in-flight state carries over a reload), and a new
// weight for an adopted target waits until this set serves, so a reload whose build fails
// leaves the running generation alone.
import type { Logger } from 'pino';
import type { RawUpstream } from '../config/schema.ts';
import { collectTargets, type TargetSpec } from './address.ts';
import type { DiscoverySource } from './discovery/types.ts';
import { mergeSpecs, planTargetSet } from './discovery/diff.ts';
import type { LookupFunction } from 'node:net';
import {
  canonicalIp,
  checkedLookup,
  droppedReason,
  isOwnListener,
  type AddressPolicy,
  type DroppedReason,
  type ListenAddress,
  type RefusedAddress,
} from './discovery/address-policy.ts';
import { compileNetworks } from './discovery/networks.ts';
import type { UpstreamPolicies } from './policies.ts';
import type { UpstreamGauges } from './gauges.ts';
import { Target } from './target.ts';

/** Target ids are unique across a group and the groups that adopt its targets. */
interface IdCounter {
  next: number;
}

/** What the group does when targets come and go. */
export interface TargetSetEvents {
  /** a target became a member (new or adopted at construction, added by discovery) */
  tracked(t: Target): void;
  /** added by a discovery answer (after `tracked`) */
  added(t: Target): void;
  /** removed by a discovery answer */
  removed(t: Target): void;
}

export class TargetSet {
  /** the current targets (a new array after every change; balancers rebuild their tables on that) */
  members: Target[] = [];
  /** last good discovery answer */
  discovered: TargetSpec[] = [];
  readonly source: DiscoverySource | undefined;
  private readonly ids: IdCounter;
  private readonly pendingWeights = new Map<Target, number>();
  private readonly staticSpecs: TargetSpec[];
  private readonly discoveryKey: string;
  /** the discovery block's `allow-link-local` and `allow` networks */
  private readonly policy: AddressPolicy;
  /** the static targets' addresses: their names are checked at connect for the own listeners only */
  private readonly staticAddresses: Set<string>;
  /** the addresses the last answer had dropped (logged again only when they change) */
  private droppedKey = '';
  /** per host name, the addresses last refused at connect (logged again only when they change) */
  private readonly refusedKeys = new Map<string, string>();
  private discoveryTimer: NodeJS.Timeout | undefined;
  private refreshing: AbortController | undefined;
  private previous: TargetSet | undefined;
  private started = false;
  private stopped = false;

  constructor(
    private readonly upstream: string,
    config: RawUpstream,
    source: DiscoverySource | undefined,
    previous: TargetSet | undefined,
    private readonly policies: UpstreamPolicies,
    private readonly gauges: UpstreamGauges,
    private readonly log: Logger,
    private readonly events: TargetSetEvents,
    /** the gateway's own listeners (bound, and configured): targets a discovery answer must not name */
    private readonly ownListeners: () => readonly ListenAddress[] = () => [],
  ) {
    this.staticSpecs = collectTargets(config);
    this.source = source;
    if (this.staticSpecs.length === 0 && !source && config.discovery === undefined) {
      throw new Error(`upstream "${upstream}" requires at least one target`);
    }
    this.discoveryKey = JSON.stringify(config.discovery ?? null);
    const block = config.discovery as { 'allow-link-local'?: boolean; allow?: string[] } | undefined;
    this.policy = { allowLinkLocal: block?.['allow-link-local'] === true, allow: block?.allow?.length ? compileNetworks(block.allow) : undefined };
    this.staticAddresses = new Set(this.staticSpecs.map((s) => s.address));
    this.previous = previous;
    this.ids = previous ? previous.ids : { next: 0 };
  }

  /** The static targets (and adopted ones), until the first resolution. */
  init(): void {
    this.setMembers(this.plan([]).next);
  }

  /** A target object for `spec`: the previous generation's one for the same address, else a new one. */
  private make(spec: TargetSpec): Target {
    const adopted = this.previous?.members.find((t) => t.address === spec.address);
    if (adopted) {
      this.setWeight(adopted, spec.weight);
      return adopted;
    }
    return new Target(spec.address, spec.host, spec.port, spec.weight, this.ids.next++, this.policies);
  }

  /** Weights are shared with the previous generation until this set serves (see start()). */
  private setWeight(t: Target, w: number): void {
    if (t.weight === w) return;
    if (this.started || !this.previous?.members.includes(t)) t.weight = w;
    else this.pendingWeights.set(t, w);
  }

  private plan(discovered: readonly TargetSpec[]) {
    return planTargetSet(this.members, mergeSpecs(this.staticSpecs, discovered), (s) => this.make(s));
  }

  private setMembers(next: Target[]): void {
    this.members = next;
    for (const t of next) this.events.tracked(t);
  }

  /**
   * The first resolution, bounded by `timeoutMs`. A failure is logged; the set then keeps its
   * static targets plus the previous generation's last good answer for the same discovery block.
   */
  async ready(timeoutMs: number, isClosed: () => boolean): Promise<void> {
    if (!this.source || isClosed()) return;
    const ok = await this.refresh(timeoutMs, isClosed);
    if (ok) return;
    const prev = this.previous;
    if (prev && prev.discoveryKey === this.discoveryKey && prev.discovered.length > 0) {
      this.apply(prev.discovered);
      this.log.warn({ upstream: this.upstream, targets: prev.discovered.length }, 'discovery: first resolution failed; keeping the previous generation\'s targets');
    }
  }

  /**
   * One discovery resolution: applies the answer when it differs from the current set. Errors
   * keep the last good set (logged, counted). Returns whether the source answered.
   */
  async refresh(timeoutMs: number, isClosed: () => boolean): Promise<boolean> {
    const source = this.source;
    if (!source || isClosed()) return false;
    const ac = new AbortController();
    this.refreshing = ac;
    const timer = setTimeout(() => ac.abort(new Error(`discovery "${source.kind}" timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    try {
      const specs = await Promise.race([
        source.resolve(ac.signal),
        new Promise<never>((_, reject) => ac.signal.addEventListener('abort', () => reject(ac.signal.reason as Error), { once: true })),
      ]);
      if (isClosed()) return true;
      const changed = this.apply(this.admissible(specs, source.kind));
      this.gauges.discoveryRefresh(source.kind, changed ? 'changed' : 'unchanged');
      return true;
    } catch (err) {
      if (isClosed()) return false;
      this.gauges.discoveryRefresh(source.kind, 'error');
      this.log.warn({ upstream: this.upstream, kind: source.kind, err: (err as Error).message, kept: this.discovered.length }, 'discovery failed; keeping the last good targets');
      return false;
    } finally {
      clearTimeout(timer);
      if (this.refreshing === ac) this.refreshing = undefined;
    }
  }

  /**
   * The answer without the targets a gateway must not proxy to (link-local, unspecified,
   * multicast, broadcast, its own listeners: discovery/address-policy.ts), counted per answer and
   * logged when the dropped set changes.
   */
  private admissible(specs: readonly TargetSpec[], kind: string): TargetSpec[] {
    const own = this.ownListeners();
    const kept: TargetSpec[] = [];
    const dropped: { address: string; reason: DroppedReason }[] = [];
    for (const s of specs) {
      const reason = droppedReason(s.host, s.port, own, this.policy);
      if (reason) dropped.push({ address: s.address, reason });
      else kept.push(s);
    }
    const byReason = new Map<DroppedReason, number>();
    for (const d of dropped) byReason.set(d.reason, (byReason.get(d.reason) ?? 0) + 1);
    for (const [reason, n] of byReason) this.gauges.discoveryDropped(reason, n);
    const key = dropped.map((d) => `${d.address} ${d.reason}`).join(',');
    if (key !== this.droppedKey) {
      this.droppedKey = key;
      if (dropped.length > 0) this.log.warn({ upstream: this.upstream, kind, dropped }, 'discovery: targets dropped for their address (link-local, unspecified, multicast, broadcast or one of the gateway\'s own listeners)');
    }
    return kept;
  }

  /**
   * The `lookup` for new connections to `target` when its host is a name (undefined for an IP
   * literal: checked at refresh, and net.connect resolves nothing). A discovered target's
   * resolved addresses get the refresh's policy (address classes, `allow` networks, own
   * listeners); a static target's only the own-listener check, as its literal addresses get at
   * start (the operator wrote it, link-local included). Refused addresses are counted and logged
   * when they change; a connect left with none fails (a 502).
   */
  connectLookup(target: Target): LookupFunction | undefined {
    if (canonicalIp(target.host) !== undefined) return undefined;
    const port = target.port;
    const check: (ip: string) => DroppedReason | undefined = this.staticAddresses.has(target.address)
      ? (ip) => (isOwnListener(ip, port, this.ownListeners()) ? 'own_listener' : undefined)
      : (ip) => droppedReason(ip, port, this.ownListeners(), this.policy);
    return checkedLookup(check, (hostname, refused) => this.refused(target, hostname, refused));
  }

  private refused(target: Target, hostname: string, refused: RefusedAddress[]): void {
    for (const r of refused) this.gauges.connectRefused(r.reason);
    const key = refused.map((r) => `${r.address} ${r.reason}`).join(',');
    if ((this.refusedKeys.get(target.address) ?? '') === key) return;
    this.refusedKeys.set(target.address, key);
    if (refused.length === 0) return; // clean again: the next refusal is a change, logged
    this.log.warn({ upstream: this.upstream, target: target.address, host: hostname, refused }, 'upstream connect: resolved addresses refused (link-local, unspecified, multicast, broadcast, outside the discovery block\'s allow networks, or one of the gateway\'s own listeners)');
  }

  /** Applies a discovery answer; true when the target set changed. */
  private apply(specs: readonly TargetSpec[]): boolean {
    this.discovered = [...specs];
    this.gauges.discoveredTargets(specs.length);
    const plan = this.plan(specs);
    if (!plan.changed) return false;
    for (const [t, w] of plan.reweighted) this.setWeight(t, w);
    this.setMembers(plan.next);
    for (const t of plan.added) this.events.added(t);
    for (const t of plan.removed) {
      this.refusedKeys.delete(t.address);
      this.events.removed(t);
    }
    this.log.info(
      { upstream: this.upstream, added: plan.added.map((t) => t.address), removed: plan.removed.map((t) => t.address), targets: plan.next.length },
      'upstream targets changed',
    );
    return true;
  }

  /**
   * Serves: pending weights apply, the previous set is let go (returned, to unpublish the
   * targets that left) and refreshes run every `intervalMs` of the source.
   */
  start(refresh: () => Promise<unknown>): TargetSet | undefined {
    this.started = true;
    for (const [t, w] of this.pendingWeights) if (this.members.includes(t)) t.weight = w;
    this.pendingWeights.clear();
    const prev = this.previous;
    // the previous set is only needed for adoption; do not keep its whole generation alive
    this.previous = undefined;
    this.scheduleRefresh(refresh);
    return prev;
  }

  private scheduleRefresh(refresh: () => Promise<unknown>): void {
    const interval = this.source?.intervalMs;
    if (interval === undefined || this.stopped) return;
    this.discoveryTimer = setTimeout(() => {
      void refresh().finally(() => this.scheduleRefresh(refresh));
    }, interval);
    this.discoveryTimer.unref();
  }

  /** Stops refreshing (the next generation's set took over, or the group closes). */
  stop(): void {
    this.stopped = true;
    if (this.discoveryTimer) clearTimeout(this.discoveryTimer);
    this.refreshing?.abort(new Error('superseded'));
  }

  /** Drops the previous generation's set without serving (the group closes). */
  forgetPrevious(): void {
    this.previous = undefined;
  }

  get isStarted(): boolean {
    return this.started;
  }
}
