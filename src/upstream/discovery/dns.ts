// discovery "dns" { hostname "api.internal"; port 8080; refresh-interval 30 }: every A and AAAA
// address of the name is a target on `port`. By default the system resolver answers
// (getaddrinfo: /etc/hosts, nsswitch, resolv.conf); `resolver "ip:port"` (our extension) asks
// that DNS server directly. A name with no address records is an empty answer; a resolver that
// fails or a name that does not exist (NXDOMAIN) is an error, so the last good set stays.
import { promises as dns } from 'node:dns';
import { urlHost, type TargetSpec } from '../address.ts';
import type { DiscoverySource } from './types.ts';

/** Error codes that mean "the name has no records of this type": an empty answer, not a failure. */
const NO_RECORDS = new Set(['ENODATA']);

export function dnsResolver(server: string | undefined, timeoutMs = 2000): dns.Resolver | undefined {
  if (server === undefined) return undefined;
  const r = new dns.Resolver({ timeout: timeoutMs, tries: 2 });
  r.setServers([server]);
  return r;
}

/** Runs `fn` with the resolver's queries cancelled when `signal` aborts. */
export async function withCancel<T>(r: dns.Resolver | undefined, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  const cancel = () => r?.cancel();
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await fn();
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}

/** A and AAAA addresses of `host`: through `r` when given, else the system resolver. */
export async function resolveAddresses(host: string, r: dns.Resolver | undefined): Promise<string[]> {
  if (!r) {
    try {
      const all = await dns.lookup(host, { all: true, verbatim: true });
      return [...new Set(all.map((a) => a.address))];
    } catch (e) {
      if (NO_RECORDS.has((e as NodeJS.ErrnoException).code ?? '')) return [];
      throw e;
    }
  }
  const results = await Promise.allSettled([r.resolve4(host), r.resolve6(host)]);
  const addrs: string[] = [];
  let failure: unknown;
  let answered = false;
  for (const res of results) {
    if (res.status === 'fulfilled') {
      answered = true;
      addrs.push(...res.value);
    } else if (NO_RECORDS.has((res.reason as NodeJS.ErrnoException).code ?? '')) {
      answered = true;
    } else {
      failure ??= res.reason;
    }
  }
  if (!answered) throw failure;
  return addrs;
}

export function dnsSource(o: { hostname: string; port: number; refreshMs: number; resolver: string | undefined }): DiscoverySource {
  const r = dnsResolver(o.resolver);
  return {
    kind: 'dns',
    intervalMs: o.refreshMs,
    async resolve(signal) {
      const addrs = await withCancel(r, signal, () => resolveAddresses(o.hostname, r));
      return addrs.map((a): TargetSpec => ({ address: `${urlHost(a)}:${o.port}`, host: a, port: o.port, weight: 1 }));
    },
    close: () => r?.cancel(),
  };
}
