// Which target addresses a gateway must not proxy to (docs/security.md "Session 30 (disc30)"):
// a discovery answer (DNS, Consul, Kubernetes, the http and file sources) may be writable by
// someone the operator does not trust with the gateway's own admin surface or the machine's
// cloud metadata service. Discovered targets in these classes are dropped at refresh; a static
// target naming one of the gateway's own listeners is a start/reload error (ownListenerTarget).
// Loopback stays allowed (sidecars and local agents listen there), except the gateway's own
// listeners, unless the block's `allow` networks leave it out. Host names other than `localhost`
// are not resolved at refresh: the connect resolves them, and checkedLookup applies the same
// policy to the addresses it resolved (docs/security.md "Session 31 (disc31)").
import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { RawUpstream } from '../../config/schema.ts';
import { collectTargets } from '../address.ts';
import { isLoopbackHost } from '../../config/compile.ts';
import { inNetworks, type Networks } from './networks.ts';

export type DroppedReason = 'link_local' | 'unspecified' | 'multicast' | 'broadcast' | 'own_listener' | 'not_allowed';

/** What a discovery block allows beyond the defaults: `allow-link-local #true`, `allow "10.0.0.0/8"`. */
export interface AddressPolicy {
  allowLinkLocal: boolean;
  /** the block's `allow` networks; undefined: no allow-list (every address outside the dropped classes) */
  allow?: Networks | undefined;
}

/** A bound (or configured) listener of this gateway process. */
export interface ListenAddress {
  host: string;
  port: number;
}

/**
 * The canonical IP of a target host, as the connect would reach it: the WHATWG URL parser reads
 * what getaddrinfo/inet_aton accept (`127.1`, `2130706433`, `0x7f.0.0.1`), IPv6 is compressed and
 * lower-cased, an IPv4-mapped IPv6 address is its IPv4 one. undefined: a host name.
 */
export function canonicalIp(host: string): string | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const h = bare.split('%')[0]!; // an IPv6 zone (`fe80::1%eth0`) does not change the class
  let name: string;
  try {
    name = new URL(`http://${h.includes(':') ? `[${h}]` : h}/`).hostname;
  } catch {
    return undefined;
  }
  if (name.startsWith('[')) {
    const v6 = name.slice(1, -1);
    const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(v6);
    if (mapped) {
      const hi = parseInt(mapped[1]!, 16);
      const lo = parseInt(mapped[2]!, 16);
      return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
    }
    return v6;
  }
  return isIP(name) === 4 ? name : undefined;
}

/** The first 16 bits of a canonical IPv6 address (the URL parser writes `::` only for zero runs). */
function v6Head(ip: string): number {
  return ip.startsWith('::') ? 0 : parseInt(ip.split(':')[0]!, 16);
}

/** The address class a target must not be in, by its canonical IP (canonicalIp); undefined: allowed. */
export function addressClass(ip: string): Exclude<DroppedReason, 'own_listener'> | undefined {
  if (isIP(ip) === 4) {
    const [a, b] = ip.split('.').map(Number) as [number, number];
    if (a === 0) return 'unspecified'; // 0.0.0.0/8: "this host"; Linux connects 0.0.0.0 to the local machine
    if (a === 169 && b === 254) return 'link_local'; // cloud metadata services (169.254.169.254)
    if (a >= 224 && a <= 239) return 'multicast';
    if (ip === '255.255.255.255') return 'broadcast';
    return undefined;
  }
  if (ip === '::') return 'unspecified';
  const head = v6Head(ip);
  if ((head & 0xffc0) === 0xfe80) return 'link_local'; // fe80::/10 (fd00:ec2::254 is ULA, not covered)
  if ((head & 0xff00) === 0xff00) return 'multicast';
  return undefined;
}

/** This machine's interface addresses, canonical (read once per check: interfaces come and go). */
function localAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.add(canonicalIp(a.address.split('%')[0]!) ?? a.address);
  return out;
}

/**
 * Whether `host:port` reaches one of `own` (a listener of this gateway): the same address and
 * port, or, for a wildcard listener (0.0.0.0, ::), loopback or any local interface address on its
 * port. `localhost` names loopback. `local` is injectable for tests.
 */
export function isOwnListener(host: string, port: number, own: readonly ListenAddress[], local: () => Set<string> = localAddresses): boolean {
  const mine = own.filter((l) => l.port === port);
  if (mine.length === 0) return false;
  const lower = host.toLowerCase().replace(/\.$/, '');
  const named = lower === 'localhost' || lower.endsWith('.localhost');
  const ip = named ? undefined : canonicalIp(host);
  if (!named && ip === undefined) return false; // a host name: resolved at connect, not checked here
  let locals: Set<string> | undefined;
  for (const l of mine) {
    const lip = l.host === 'localhost' ? '127.0.0.1' : canonicalIp(l.host);
    if (lip === undefined) continue;
    const wildcard = lip === '0.0.0.0' || lip === '::';
    if (named) {
      if (wildcard || isLoopbackHost(lip)) return true;
      continue;
    }
    if (ip === lip) return true;
    if (wildcard) {
      if (isLoopbackHost(ip!) || addressClass(ip!) === 'unspecified') return true;
      locals ??= local();
      if (locals.has(ip!)) return true;
    }
  }
  return false;
}

/**
 * Why a discovered target is dropped at refresh, or undefined when it may be used. A host name
 * (other than `localhost`, read as 127.0.0.1) passes here: checkedLookup checks what it resolves to.
 */
export function droppedReason(host: string, port: number, own: readonly ListenAddress[], policy: AddressPolicy, local?: () => Set<string>): DroppedReason | undefined {
  const lower = host.toLowerCase().replace(/\.$/, '');
  const ip = lower === 'localhost' || lower.endsWith('.localhost') ? '127.0.0.1' : canonicalIp(host);
  if (ip === undefined) return undefined;
  const cls = addressClass(ip);
  if (cls && !(cls === 'link_local' && policy.allowLinkLocal)) return cls;
  if (policy.allow && !inNetworks(policy.allow, ip)) return 'not_allowed';
  return isOwnListener(host, port, own, local) ? 'own_listener' : undefined;
}

/** A resolved address refused at connect, and why. */
export interface RefusedAddress {
  address: string;
  reason: DroppedReason;
}

/** The error a connect fails with when every address a target's name resolved to is refused (classifyUpstreamError: 502). */
export const TARGET_ADDRESS_REFUSED = 'SENTINEL_TARGET_ADDRESS_REFUSED';

export class TargetAddressRefused extends Error {
  readonly code = TARGET_ADDRESS_REFUSED;
  constructor(
    readonly hostname: string,
    readonly refused: readonly RefusedAddress[],
  ) {
    super(`target host "${hostname}" resolves only to addresses a target may not name: ${refused.map((r) => `${r.address} (${r.reason})`).join(', ')}`);
  }
}

/**
 * A `lookup` for net.connect / tls.connect (and undici's connector, which passes it on) that
 * resolves as the system does (dns.lookup, read per call) and drops the addresses `check`
 * refuses: the connect uses only the rest and fails with TargetAddressRefused when none is left.
 * `onChecked` hears every resolution's refused addresses (often none: a log can say when they change).
 * net.connect calls it only for a host name (an IP literal was checked at refresh), once per new
 * connection: never per request on a kept-alive connection.
 */
export function checkedLookup(check: (ip: string) => DroppedReason | undefined, onChecked: (hostname: string, refused: RefusedAddress[]) => void): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, '', 0);
        return;
      }
      const kept: dns.LookupAddress[] = [];
      const refused: RefusedAddress[] = [];
      for (const a of addresses) {
        const reason = check(canonicalIp(a.address) ?? a.address);
        if (reason) refused.push({ address: a.address, reason });
        else kept.push(a);
      }
      onChecked(hostname, refused);
      if (kept.length === 0) {
        callback(new TargetAddressRefused(hostname, refused), '', 0);
        return;
      }
      if (options.all) callback(null, kept);
      else callback(null, kept[0]!.address, kept[0]!.family);
    });
  };
}

/**
 * Static targets that name one of the gateway's own listeners, as config errors (the start and
 * a reload refuse them): such a target serves that listener's routes, the admin builtins of a
 * loopback admin listener among them, to every client of the route.
 */
export function ownListenerTargetErrors(upstreams: ReadonlyMap<string, Pick<RawUpstream, 'target' | 'targets' | 'address'>>, own: readonly ListenAddress[]): string[] {
  if (own.length === 0) return [];
  const errors: string[] = [];
  for (const [id, raw] of upstreams) {
    for (const t of collectTargets(raw)) {
      if (!isOwnListener(t.host, t.port, own)) continue;
      errors.push(
        `upstream "${id}": target "${t.address}" is one of this gateway's own listeners; a route proxying to it would serve that listener's routes (the admin builtins of an admin listener) to its clients. To serve admin data through a route, give that route a builtin-handler (and its own access control)`,
      );
    }
  }
  return errors;
}
