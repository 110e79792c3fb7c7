// IPv4/IPv6 addresses and CIDR blocks for @ipMatch / @ipMatchFromFile.

/** An address as a 128-bit number; IPv4 lives in its own space (family 4). */
interface Address {
  family: 4 | 6;
  value: bigint;
}

export interface Network {
  family: 4 | 6;
  base: bigint;
  mask: bigint;
}

function parseIPv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseIPv6(text: string): bigint | null {
  let head = text;
  let tailV4: bigint | null = null;
  // An embedded dotted IPv4 in the last 32 bits (::ffff:1.2.3.4).
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.indexOf('.', lastColon) > lastColon) {
    tailV4 = parseIPv4(text.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const toGroups = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const left = toGroups(halves[0] ?? '');
  const right = halves.length === 2 ? toGroups(halves[1] ?? '') : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...left, ...new Array<string>(missing).fill('0'), ...right];
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    value = (value << 16n) | BigInt(Number.parseInt(g, 16));
  }
  if (tailV4 !== null) value = (value & ~0xffffffffn) | tailV4;
  return value;
}

export function parseAddress(text: string): Address | null {
  const t = text.trim();
  if (t.includes(':')) {
    const v = parseIPv6(t);
    return v === null ? null : { family: 6, value: v };
  }
  const v = parseIPv4(t);
  return v === null ? null : { family: 4, value: v };
}

/** "1.2.3.0/24", "2001:db8::/32" or a single address; null when malformed. */
export function parseNetwork(text: string): Network | null {
  const [addrText, prefixText, extra] = text.trim().split('/');
  if (extra !== undefined) return null;
  const addr = parseAddress(addrText ?? '');
  if (!addr) return null;
  const bits = addr.family === 4 ? 32 : 128;
  let prefix = bits;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) return null;
    prefix = Number(prefixText);
    if (prefix > bits) return null;
  }
  const all = (1n << BigInt(bits)) - 1n;
  const mask = prefix === 0 ? 0n : (all >> BigInt(bits - prefix)) << BigInt(bits - prefix);
  return { family: addr.family, base: addr.value & mask, mask };
}

export function networkContains(net: Network, address: Address): boolean {
  return net.family === address.family && (address.value & net.mask) === net.base;
}

/** Parses a comma/whitespace separated list; throws on the first malformed entry. */
export function parseNetworkList(entries: readonly string[]): Network[] {
  return entries.map((e) => {
    const net = parseNetwork(e);
    if (!net) throw new Error(`invalid IP address or CIDR block ${JSON.stringify(e)}`);
    return net;
  });
}

export function matchesAny(nets: readonly Network[], input: string): boolean {
  const address = parseAddress(input);
  if (!address) return false;
  return nets.some((n) => networkContains(n, address));
}
