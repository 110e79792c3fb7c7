// discovery "consul" { address "http://127.0.0.1:8500"; service "api"; datacenter "dc1";
// only-passing #true; tag "v1"; refresh-interval 30 }: the Consul HTTP API health endpoint
// GET /v1/health/service/<service>?passing&dc=<dc>&tag=<tag> (one entry per service instance:
// { Node: { Address }, Service: { Address, Port, Weights: { Passing } }, Checks: [...] }).
// Target host: Service.Address, else Node.Address (Consul leaves Service.Address empty when the
// instance uses the node's address). Weight: Service.Weights.Passing (Consul's default 1).
// An ACL token is taken from CONSUL_HTTP_TOKEN (Consul's own variable) when set.
import { urlHost, type TargetSpec } from '../address.ts';
import type { DiscoverySource } from './types.ts';
import { apiAgent, getJson } from './http.ts';

export interface ConsulOptions {
  address: string;
  service: string;
  datacenter: string | undefined;
  onlyPassing: boolean;
  tag: string | undefined;
  refreshMs: number;
}

/** The health endpoint URL with the query parameters the block asks for. */
export function consulUrl(o: Pick<ConsulOptions, 'address' | 'service' | 'datacenter' | 'onlyPassing' | 'tag'>): string {
  const u = new URL(`/v1/health/service/${encodeURIComponent(o.service)}`, o.address.endsWith('/') ? o.address : `${o.address}/`);
  // the API URL may carry a path prefix (a proxy in front of Consul)
  const base = new URL(o.address);
  if (base.pathname !== '/' && base.pathname !== '') u.pathname = `${base.pathname.replace(/\/$/, '')}/v1/health/service/${encodeURIComponent(o.service)}`;
  if (o.onlyPassing) u.searchParams.set('passing', 'true');
  if (o.datacenter) u.searchParams.set('dc', o.datacenter);
  if (o.tag) u.searchParams.set('tag', o.tag);
  return u.toString();
}

interface ConsulEntry {
  Node?: { Address?: unknown };
  Service?: { Address?: unknown; Port?: unknown; Weights?: { Passing?: unknown } };
}

/** Pure: the /v1/health/service answer -> targets. Throws when the answer is not that shape. */
export function consulTargets(body: unknown): TargetSpec[] {
  if (!Array.isArray(body)) throw new Error('consul: expected a JSON array from /v1/health/service');
  const out: TargetSpec[] = [];
  for (const e of body as ConsulEntry[]) {
    const svc = e?.Service;
    const host = typeof svc?.Address === 'string' && svc.Address !== '' ? svc.Address : typeof e?.Node?.Address === 'string' ? e.Node.Address : '';
    const port = svc?.Port;
    if (host === '' || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) continue; // not routable
    const w = svc?.Weights?.Passing;
    const weight = typeof w === 'number' && Number.isInteger(w) && w >= 0 ? w : 1;
    out.push({ address: `${urlHost(host)}:${port}`, host, port, weight });
  }
  return out;
}

export function consulSource(o: ConsulOptions): DiscoverySource {
  const url = consulUrl(o);
  const agent = apiAgent();
  return {
    kind: 'consul',
    intervalMs: o.refreshMs,
    async resolve(signal) {
      const token = process.env.CONSUL_HTTP_TOKEN;
      const body = await getJson(url, { signal, dispatcher: agent, ...(token ? { headers: { 'x-consul-token': token } } : {}) });
      return consulTargets(body);
    },
    close: () => agent.close(),
  };
}
