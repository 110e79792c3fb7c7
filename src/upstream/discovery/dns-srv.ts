// discovery "dns-srv" { service "_http._tcp.example.com"; refresh-interval 30 }: SRV records
// (RFC 2782). Only the lowest priority value is used (the others are fallbacks a client would
// try only when all of those fail; Sentinel does the same); the SRV weight becomes the target
// weight (0 -> 1, so a zero-weight record still gets traffic when it is alone); a single record
// whose target is "." means the service is decidedly not available (an empty answer). Each SRV
// target name is resolved to its addresses with the same resolver (the system's, or `resolver`).
import type { SrvRecord } from 'node:dns';
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { urlHost, type TargetSpec } from '../address.ts';
import type { DiscoverySource } from './types.ts';
import { dnsResolver, resolveAddresses, withCancel } from './dns.ts';

export interface SrvTarget {
  host: string;
  port: number;
  weight: number;
}

/** Pure: SRV records -> the targets to use. */
export function selectSrv(records: readonly SrvRecord[]): SrvTarget[] {
  const usable = records.filter((r) => r.name !== '' && r.name !== '.');
  if (usable.length === 0) return [];
  const lowest = Math.min(...usable.map((r) => r.priority));
  return usable
    .filter((r) => r.priority === lowest)
    .map((r) => ({ host: r.name.replace(/\.$/, ''), port: r.port, weight: r.weight === 0 ? 1 : r.weight }));
}

export function dnsSrvSource(o: { service: string; refreshMs: number; resolver: string | undefined }): DiscoverySource {
  const r = dnsResolver(o.resolver);
  return {
    kind: 'dns-srv',
    intervalMs: o.refreshMs,
    resolve(signal) {
      return withCancel(r, signal, async () => {
        let records: SrvRecord[];
        try {
          records = await (r ? r.resolveSrv(o.service) : dns.resolveSrv(o.service));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENODATA') return [];
          throw e;
        }
        const out: TargetSpec[] = [];
        const failures: string[] = [];
        const picked = selectSrv(records);
        await Promise.all(
          picked.map(async (t) => {
            try {
              const addrs = isIP(t.host) ? [t.host] : await resolveAddresses(t.host, r);
              for (const a of addrs) out.push({ address: `${urlHost(a)}:${t.port}`, host: a, port: t.port, weight: t.weight });
            } catch (e) {
              failures.push(`${t.host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
            }
          }),
        );
        // every SRV target unresolvable: a failure (keep the last good set), not an empty service
        if (picked.length > 0 && failures.length === picked.length) throw new Error(`no SRV target of ${o.service} resolved (${failures.join('; ')})`);
        return out;
      });
    },
    close: () => r?.cancel(),
  };
}
