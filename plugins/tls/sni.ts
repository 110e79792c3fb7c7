// Pure SNI decisions: host name -> certificate, with wildcards, priority names and overlap
// detection. No I/O; the value type is whatever the caller attaches (a SecureContext in index.ts).
//
// Rules (documented in docs/tls.md):
// - names are compared lower-cased without a trailing dot;
// - `*.example.com` matches exactly one extra label (a.example.com, not example.com nor a.b.example.com);
// - an exact name beats a wildcard, whichever entry declares them (that is not an overlap);
// - the same name in two entries is an overlap. A `priority-hostnames` entry wins over ordinary
//   entries silently; otherwise the overlap is an error unless `allow-sni-overlaps #true`, in
//   which case the entry declared first wins and the overlap is reported as a warning.

export interface SniEntry<T> {
  /** where the entry comes from, for messages: `sni[1]`, `sni-certs "/dir" > a.pem` */
  source: string;
  names: readonly string[];
  priority: boolean;
  value: T;
}

export interface SniOverlap {
  name: string;
  winner: string;
  losers: string[];
}

export interface SniTable<T> {
  readonly exact: ReadonlyMap<string, SniEntry<T>>;
  /** keyed by the part after `*.` */
  readonly wildcard: ReadonlyMap<string, SniEntry<T>>;
}

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** Lower-cases and checks a configured host name; throws with a reason when it cannot match anything. */
export function normalizeHostname(name: string): string {
  const n = name.trim().toLowerCase().replace(/\.$/, '');
  const labels = n.split('.');
  const rest = labels[0] === '*' ? labels.slice(1) : labels;
  if (n === '' || rest.length === 0 || !rest.every((l) => LABEL.test(l))) {
    const why = n.includes('*') ? 'a wildcard must be the whole left-most label, as in "*.example.com"' : 'not a valid DNS name';
    throw new Error(`invalid SNI host name "${name}": ${why}`);
  }
  if (labels[0] === '*' && rest.length < 2) throw new Error(`invalid SNI host name "${name}": a wildcard needs at least two labels after "*." (e.g. "*.example.com")`);
  return n;
}

/** Normalises a client-sent server name for lookup; undefined when it is absent or unusable. */
export function normalizeServerName(servername: string | false | undefined | null): string | undefined {
  if (!servername) return undefined;
  const n = servername.toLowerCase().replace(/\.$/, '');
  return n === '' ? undefined : n;
}

export function buildSniTable<T>(entries: readonly SniEntry<T>[], opts: { allowOverlaps: boolean }): { table: SniTable<T>; overlaps: SniOverlap[] } {
  // name -> entries claiming it, in declaration order
  const claims = new Map<string, SniEntry<T>[]>();
  for (const e of entries) {
    for (const raw of e.names) {
      const name = normalizeHostname(raw);
      const list = claims.get(name) ?? [];
      if (!list.includes(e)) list.push(e);
      claims.set(name, list);
    }
  }
  const exact = new Map<string, SniEntry<T>>();
  const wildcard = new Map<string, SniEntry<T>>();
  const overlaps: SniOverlap[] = [];
  for (const [name, list] of claims) {
    const priority = list.filter((e) => e.priority);
    const tier = priority.length > 0 ? priority : list;
    const winner = tier[0]!;
    if (tier.length > 1) overlaps.push({ name, winner: winner.source, losers: tier.slice(1).map((e) => e.source) });
    if (name.startsWith('*.')) wildcard.set(name.slice(2), winner);
    else exact.set(name, winner);
  }
  if (overlaps.length > 0 && !opts.allowOverlaps) {
    const lines = overlaps.map((o) => `"${o.name}" is claimed by ${[o.winner, ...o.losers].join(' and ')}`);
    throw new Error(`overlapping SNI host names: ${lines.join('; ')}. Remove the duplicates, use priority-hostnames for the entry that should win, or set allow-sni-overlaps #true (the first entry wins)`);
  }
  return { table: { exact, wildcard }, overlaps };
}

/** The entry serving `servername`: exact name first, then a one-label wildcard. */
export function lookupSni<T>(table: SniTable<T>, servername: string | false | undefined | null): SniEntry<T> | undefined {
  const name = normalizeServerName(servername);
  if (!name) return undefined;
  const hit = table.exact.get(name);
  if (hit) return hit;
  const dot = name.indexOf('.');
  if (dot <= 0) return undefined;
  return table.wildcard.get(name.slice(dot + 1));
}

/**
 * RFC 9110 §15.5.20 (421 Misdirected Request): whether a request for `host` came over a connection
 * whose SNI (`servername`; none: the default certificate) selected another certificate than the
 * one that host belongs to. A host belongs to the entry its name selects, else to the default
 * certificate when that covers it, else to nobody (any connection may carry it, as before). A
 * served certificate that covers the host serves it too (HTTP/2 connection coalescing, RFC 9113
 * §9.1.1, e.g. a wildcard). `covers` says whether a certificate is valid for a host name.
 */
export function isMisdirected<T>(table: SniTable<T>, defaultValue: T, servername: string | false | undefined | null, host: string, covers: (cert: T, host: string) => boolean): boolean {
  const owner = lookupSni(table, host)?.value ?? (covers(defaultValue, host) ? defaultValue : undefined);
  if (owner === undefined) return false;
  const served = lookupSni(table, servername)?.value ?? defaultValue;
  return owner !== served && !covers(served, host);
}
