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
  /** family 4: base and mask as unsigned 32-bit numbers (matchesAny's fast path; 0 for family 6). */
  base4: number;
  mask4: number;
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
  const base = addr.value & mask;
  const v4 = addr.family === 4;
  return { family: addr.family, base, mask, base4: v4 ? Number(base) : 0, mask4: v4 ? Number(mask) : 0 };
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

/**
 * A dotted quad exactly as parseIPv4 takes it (four parts of 1-3 ASCII digits, each <= 255), as an
 * unsigned 32-bit number; -1 for anything else (surrounding space, IPv6, malformed: the BigInt path
 * decides those). No split, no BigInt: 905110's @ipMatch reads REMOTE_ADDR every request.
 */
export function dottedQuad(text: string): number {
  const n = text.length;
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 0x2e;
    if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return -1;
      part = part * 10 + (c - 0x30);
    } else if (c === 0x2e) {
      if (digits === 0 || part > 255 || ++parts > 4) return -1;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else {
      return -1;
    }
  }
  return parts === 4 ? value : -1;
}

export function matchesAny(nets: readonly Network[], input: string): boolean {
  const quad = dottedQuad(input);
  if (quad >= 0) {
    for (const net of nets) if (net.family === 4 && ((quad & net.mask4) >>> 0) === net.base4) return true;
    return false;
  }
  const address = parseAddress(input);
  if (!address) return false;
  return nets.some((n) => networkContains(n, address));
}
