// `system { trusted-proxies "10.0.0.0/8" "127.0.0.1" }`: peers whose X-Forwarded-For is believed.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export interface TrustedMatcher {
  any: boolean;
  list: BlockList;
}

export function compileTrusted(entries: readonly string[]): TrustedMatcher {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, bits] = e.split('/');
    const type = isIPv6(addr!) ? 'ipv6' : 'ipv4';
    if (!isIPv4(addr!) && !isIPv6(addr!)) throw new Error(`invalid trusted proxy "${e}" (expected an IP or CIDR)`);
    if (bits !== undefined) list.addSubnet(addr!, Number(bits), type);
    else list.addAddress(addr!, type);
  }
  return { any: entries.length > 0, list };
}

export function isTrusted(m: TrustedMatcher, ip: string): boolean {
  if (isIPv4(ip)) return m.list.check(ip, 'ipv4');
  // IPv6 as it is: BlockList matches an IPv4-mapped address in any spelling (`::ffff:10.0.0.1`,
  // `::FFFF:a00:1`) against IPv4 entries. Cutting a `::ffff:` prefix left `a00:1`, no address:
  // a trusted hop so written was taken for the client, an allowed client was refused.
  if (isIPv6(ip)) return m.list.check(ip, 'ipv6');
  return false;
}

/**
 * An X-Forwarded-For entry as an address: a plain IPv4/IPv6 address, or `ip:port`, `[v6]` and
 * `[v6]:port` as some balancers write them (Azure Application Gateway, RFC 7239 style), the
 * IPv4-mapped prefix dropped as for the peer. Undefined for anything else (docs/security.md
 * "Admin, static files, metrics and logs": such text went into logs and X-Real-IP as written).
 */
export function forwardedAddress(entry: string): string | undefined {
  let s = entry;
  if (s.charCodeAt(0) === 91 /* '[' */) {
    const end = s.indexOf(']');
    if (end < 0) return undefined;
    const rest = s.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    s = s.slice(1, end);
    return isIPv6(s) ? unmapped(s) : undefined;
  }
  if (isIPv4(s)) return s;
  if (isIPv6(s)) return unmapped(s);
  const colon = s.indexOf(':');
  if (colon > 0 && s.indexOf(':', colon + 1) < 0 && /^\d{1,5}$/.test(s.slice(colon + 1)) && isIPv4(s.slice(0, colon))) return s.slice(0, colon);
  return undefined;
}

function unmapped(v6: string): string {
  return v6.startsWith('::ffff:') && isIPv4(v6.slice(7)) ? v6.slice(7) : v6;
}
