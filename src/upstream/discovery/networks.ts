// The networks of a discovery block's `allow "10.0.0.0/8"` entries (docs/security.md "Session 31
// (disc31)"): discovered targets outside every listed network are dropped at refresh and refused
// at connect (address-policy.ts). No imports from the config: the schema validates with it.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** A set of IPv4 and IPv6 networks (`allow "10.0.0.0/8" "fd00::/8"`), matched against canonical IPs. */
export interface Networks {
  readonly list: BlockList;
  /** as written, for logs */
  readonly text: readonly string[];
}

/**
 * One `allow` entry: "a.b.c.d/n" (n 0-32), "v6/n" (n 0-128) or a bare address (one host).
 * Strict: inet_aton spellings (`10.1`, `0x0a...`) and zones are refused, so the list reads as
 * written; an address with host bits set (`10.0.0.1/8`) is refused too (say `10.0.0.0/8`).
 */
export function parseNetwork(entry: string): { address: string; prefix: number; type: 'ipv4' | 'ipv6' } | string {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const type = isIPv4(address) ? 'ipv4' : isIPv6(address) && !address.includes('%') ? 'ipv6' : undefined;
  if (!type) return `"${entry}" is not a network: expected "10.0.0.0/8", "fd00::/8" or one address`;
  const max = type === 'ipv4' ? 32 : 128;
  const bitsText = slash < 0 ? String(max) : entry.slice(slash + 1);
  const prefix = Number(bitsText);
  if (!/^\d{1,3}$/.test(bitsText) || prefix > max) return `"${entry}": the prefix length must be 0-${max}`;
  // the network's first address must be the one written: host bits set usually mean a typo in the length
  if (prefix < max && !hostBitsClear(address, prefix, type)) return `"${entry}" has host bits set past /${prefix}: write the network's first address`;
  return { address, prefix, type };
}

/** Whether every bit of `address` past `prefix` is zero. */
function hostBitsClear(address: string, prefix: number, type: 'ipv4' | 'ipv6'): boolean {
  const bytes = type === 'ipv4' ? address.split('.').map(Number) : v6Bytes(address);
  for (let bit = prefix; bit < bytes.length * 8; bit++) if ((bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return false;
  return true;
}

/** The 16 bytes of a valid IPv6 address (an embedded IPv4 tail included). */
function v6Bytes(address: string): number[] {
  let text = address;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    tail.push(...v4[1]!.split('.').map(Number));
    text = text.slice(0, -v4[1]!.length) + '0:0';
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? h : [...h, ...Array<string>(8 - h.length - r.length).fill('0'), ...r];
  const out: number[] = [];
  for (const g of groups) {
    const n = parseInt(g, 16);
    out.push(n >> 8, n & 255);
  }
  if (tail.length) out.splice(12, 4, ...tail);
  return out;
}

/** The networks of a block's `allow` entries (validated by validateDiscovery; throws on a bad one). */
export function compileNetworks(entries: readonly string[]): Networks {
  const list = new BlockList();
  for (const e of entries) {
    const n = parseNetwork(e);
    if (typeof n === 'string') throw new Error(`allow ${n}`);
    list.addSubnet(n.address, n.prefix, n.type);
  }
  return { list, text: [...entries] };
}

/** Whether the canonical IP `ip` (canonicalIp) is inside one of `n`'s networks. */
export function inNetworks(n: Networks, ip: string): boolean {
  // canonicalIp already made an IPv4-mapped address its IPv4 one; BlockList matches both ways too
  return isIPv4(ip) ? n.list.check(ip, 'ipv4') : n.list.check(ip, 'ipv6');
}
