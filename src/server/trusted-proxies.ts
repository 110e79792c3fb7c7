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
  const plain = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  if (isIPv4(plain)) return m.list.check(plain, 'ipv4');
  if (isIPv6(plain)) return m.list.check(plain, 'ipv6');
  return false;
}
