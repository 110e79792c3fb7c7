// Client addresses as per-client keys (rate limits, streaming uploads): an IPv6 client usually
// holds a whole /64 (RFC 6177, SLAAC), so counting per address would give it 2^64 buckets. IPv6
// is aggregated to a prefix; IPv4-mapped IPv6 (::ffff:a.b.c.d) counts as IPv4; IPv4 stays per
// address unless a shorter prefix is asked for. docs/rate-limit.md, "Client addresses".
import { isIPv6 } from 'node:net';

export const DEFAULT_IPV6_PREFIX = 64;
export const DEFAULT_IPV4_PREFIX = 32;

/**
 * The key of a client address: IPv4 `a.b.c.d` (or `a.b.c.0/24` below 32 bits), IPv6 the masked
 * prefix in one spelling whatever the input's (`2001:db8:0:1::/64`), so `2001:DB8::1`,
 * `2001:db8:0:0::1` and `[2001:db8::1]` share a key. Anything that is not an address is returned
 * as it is.
 */
export function clientPrefixKey(ip: string, v4bits = DEFAULT_IPV4_PREFIX, v6bits = DEFAULT_IPV6_PREFIX): string {
  // the common case first: a plain IPv4 address kept whole
  if (ip.indexOf(':') < 0) return v4bits >= 32 ? ip : ipv4Prefix(ip, v4bits);
  let s = ip;
  if (s.charCodeAt(0) === 91 /* [ */ && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const groups = ipv6Groups(s);
  if (!groups) return ip;
  // IPv4-mapped (::ffff:a.b.c.d, however spelled): the IPv4 client it is
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0 && groups[5] === 0xffff) {
    const v4 = `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
    return v4bits >= 32 ? v4 : ipv4Prefix(v4, v4bits);
  }
  const bits = Math.max(0, Math.min(128, v6bits));
  for (let i = 0; i < 8; i++) {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    groups[i] = keep === 16 ? groups[i]! : keep === 0 ? 0 : groups[i]! & ((0xffff << (16 - keep)) & 0xffff);
  }
  return bits === 128 ? formatIpv6(groups) : `${formatIpv6(groups)}/${bits}`;
}

function ipv4Prefix(ip: string, bits: number): string {
  const p = ip.split('.');
  if (p.length !== 4) return ip;
  let n = 0;
  for (const x of p) {
    const v = Number(x);
    if (!/^\d{1,3}$/.test(x) || v > 255) return ip;
    n = n * 256 + v;
  }
  const b = Math.max(0, Math.min(32, bits));
  const masked = b === 0 ? 0 : n - (n % 2 ** (32 - b));
  return `${Math.floor(masked / 16777216) & 255}.${Math.floor(masked / 65536) & 255}.${Math.floor(masked / 256) & 255}.${masked & 255}/${b}`;
}

/** The eight 16-bit groups of an IPv6 address (with an embedded IPv4 tail), or undefined. */
function ipv6Groups(s: string): number[] | undefined {
  if (!isIPv6(s)) return undefined;
  let text = s;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) >= 0) {
    const v4 = text.slice(lastColon + 1).split('.').map(Number);
    tail.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
    text = text.slice(0, lastColon + 1) + '0';
    // the placeholder group is dropped below: the IPv4 tail takes two groups
  }
  const halves = text.split('::');
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  let head = parse(halves[0]!);
  let rest = halves.length > 1 ? parse(halves[1]!) : [];
  if (tail.length) {
    if (halves.length > 1) rest = [...rest.slice(0, -1), ...tail];
    else head = [...head.slice(0, -1), ...tail];
  }
  const missing = 8 - head.length - rest.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...rest];
}

/** RFC 5952 text: lower-case, no leading zeros, the longest run (of two or more) of zero groups as `::`. */
function formatIpv6(g: readonly number[]): string {
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}
