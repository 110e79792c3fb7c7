// Upstream target addresses: "host:port", "[v6]:port", merged from every target syntax the
// `upstream` block accepts (sentinel-reference.md §1.7).
import type { RawUpstream } from '../config/schema.ts';

export interface TargetSpec {
  address: string;
  host: string;
  port: number;
  weight: number;
}

/** "h:p" / "[::1]:p" -> host (brackets removed) and port; throws a config-style message when malformed. */
export function parseHostPort(address: string): { host: string; port: number } {
  const a = address.trim();
  let host: string;
  let portText: string;
  if (a.startsWith('[')) {
    const end = a.indexOf(']');
    if (end < 0 || a[end + 1] !== ':') throw new Error(`invalid target address "${address}": expected "[ipv6]:port"`);
    host = a.slice(1, end);
    portText = a.slice(end + 2);
  } else {
    const colon = a.lastIndexOf(':');
    if (colon <= 0) throw new Error(`invalid target address "${address}": expected "host:port"`);
    host = a.slice(0, colon);
    portText = a.slice(colon + 1);
    if (host.includes(':')) throw new Error(`invalid target address "${address}": IPv6 addresses need brackets, e.g. "[::1]:8080"`);
  }
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65535) throw new Error(`invalid port in target address "${address}"`);
  if (host === '') throw new Error(`invalid target address "${address}": empty host`);
  return { host, port };
}

/** Every target of an upstream block, in config order: `target` nodes, `targets { target }`, bare `address`. */
export function collectTargets(config: Pick<RawUpstream, 'target' | 'targets' | 'address'>): TargetSpec[] {
  const raw: { address?: string; weight?: number }[] = [
    ...(config.target ?? []),
    ...(config.targets?.target ?? []),
    ...(config.address !== undefined ? [{ address: config.address, weight: 1 }] : []),
  ];
  const out: TargetSpec[] = [];
  for (const t of raw) {
    if (!t.address) continue; // Sentinel skips targets without an address
    out.push({ address: t.address, ...parseHostPort(t.address), weight: t.weight ?? 1 });
  }
  return out;
}

/** URL host part: IPv6 literals need brackets again. */
export function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
