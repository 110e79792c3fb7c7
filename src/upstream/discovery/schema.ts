// `discovery "<kind>" { ... }` inside an upstream block (sentinel-reference.md §1.7). One
// TypeBox block carries every kind's keys (the decoder checks types and suggests spellings);
// validateDiscovery() then checks the keys per kind: a key of another kind is an error naming
// the kind it belongs to, an unknown kind an error with a did-you-mean.
import { Type, type Static } from 'typebox';
import { Block, Duration, parseDurationMs } from '../../config/types-helpers.ts';
import { didYouMean } from '../../config/diagnostics.ts';
import { parseHostPort } from '../address.ts';
import { parseNetwork } from './networks.ts';

export const DISCOVERY_KINDS = ['static', 'dns', 'dns-srv', 'consul', 'kubernetes', 'file'] as const;
export type DiscoveryKind = (typeof DISCOVERY_KINDS)[number];

/** Keys per kind (`resolver` on dns/dns-srv is our extension: a DNS server "ip[:port]" instead of the system's). */
export const KIND_KEYS: Record<DiscoveryKind, readonly string[]> = {
  static: ['backends'],
  dns: ['hostname', 'port', 'refresh-interval', 'resolver'],
  'dns-srv': ['service', 'refresh-interval', 'resolver'],
  consul: ['address', 'service', 'datacenter', 'only-passing', 'tag', 'refresh-interval'],
  kubernetes: ['namespace', 'service', 'port-name', 'kubeconfig', 'refresh-interval'],
  file: ['path', 'watch-interval'],
};

/**
 * Keys of every kind (address-policy.ts): `allow-link-local #true` keeps discovered link-local
 * targets (169.254.0.0/16, fe80::/10), dropped by default; `allow "10.0.0.0/8"` (repeatable)
 * drops discovered targets outside every listed network, at refresh and at connect.
 */
const COMMON_KEYS: readonly string[] = ['allow-link-local', 'allow'];

const REQUIRED: Record<DiscoveryKind, readonly string[]> = {
  static: ['backends'],
  dns: ['hostname', 'port'],
  'dns-srv': ['service'],
  consul: ['address', 'service'],
  kubernetes: ['service'],
  file: ['path'],
};

export const DiscoverySchema = Block(
  {
    kind: Type.String({ description: 'static | dns | dns-srv | consul | kubernetes | file' }),
    backends: Type.Optional(Type.Array(Type.String(), { description: 'static: "host:port" ...' })),
    hostname: Type.Optional(Type.String({ description: 'dns: name to resolve (A and AAAA)' })),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'dns: port of every resolved address' })),
    service: Type.Optional(Type.String({ description: 'dns-srv: SRV name; consul / kubernetes: service name' })),
    resolver: Type.Optional(Type.String({ description: 'dns, dns-srv (extension): DNS server "ip[:port]"; default: the system resolver' })),
    address: Type.Optional(Type.String({ description: 'consul: HTTP API URL, e.g. "http://127.0.0.1:8500"' })),
    datacenter: Type.Optional(Type.String()),
    'only-passing': Type.Optional(Type.Boolean({ description: 'consul: only instances whose checks pass (default #true)' })),
    tag: Type.Optional(Type.String()),
    namespace: Type.Optional(Type.String({ description: 'kubernetes: default: the pod\'s namespace in-cluster, else "default"' })),
    'port-name': Type.Optional(Type.String({ description: 'kubernetes: EndpointSlice port name (default: the first port)' })),
    kubeconfig: Type.Optional(Type.String({ description: 'kubernetes: kubeconfig file; default: in-cluster service account' })),
    path: Type.Optional(Type.String({ description: 'file: one "host:port [weight]" per line' })),
    'allow-link-local': Type.Optional(Type.Boolean({ description: 'every kind: keep discovered link-local targets (169.254.0.0/16, fe80::/10); default #false, dropped' })),
    allow: Type.Optional(
      Type.Array(Type.String(), {
        description: 'every kind, repeatable: networks ("10.0.0.0/8", "fd00::/8", one address) discovered targets must be in; others are dropped at refresh and refused at connect (default: no allow-list)',
      }),
    ),
    'refresh-interval': Type.Optional(Duration),
    'watch-interval': Type.Optional(Duration),
  },
  { argKey: 'kind' },
);

export type RawDiscovery = Static<typeof DiscoverySchema>;

/** Normalised discovery settings of each kind (durations in ms, defaults applied). */
export type DiscoveryConfig =
  | { kind: 'static'; backends: string[] }
  | { kind: 'dns'; hostname: string; port: number; refreshMs: number; resolver: string | undefined }
  | { kind: 'dns-srv'; service: string; refreshMs: number; resolver: string | undefined }
  | { kind: 'consul'; address: string; service: string; datacenter: string | undefined; onlyPassing: boolean; tag: string | undefined; refreshMs: number }
  | { kind: 'kubernetes'; namespace: string | undefined; service: string; portName: string | undefined; kubeconfig: string | undefined; refreshMs: number }
  | { kind: 'file'; path: string; watchMs: number };

function keysOf(raw: Record<string, unknown>): string[] {
  return Object.keys(raw).filter((k) => k !== 'kind' && raw[k] !== undefined);
}

/** "ip" or "ip:port" / "[v6]:port" for a DNS server; returns an error message or undefined. */
function checkResolver(r: string): string | undefined {
  if (/^[\d.]+$/.test(r) || /^[0-9a-f:]+$/i.test(r)) return undefined;
  try {
    parseHostPort(r);
    return undefined;
  } catch {
    return `resolver "${r}": expected "ip" or "ip:port", e.g. "127.0.0.1:5353"`;
  }
}

/** Every problem with a discovery block, as messages (prefixed `discovery "<kind>"`). */
export function validateDiscovery(value: unknown): string[] {
  if (value === undefined) return [];
  if (typeof value !== 'object' || value === null) return ['discovery: expected discovery "<kind>" { ... }'];
  const raw = value as Record<string, unknown>;
  const kind = raw.kind;
  if (typeof kind !== 'string') return [`discovery: missing kind: discovery "<kind>" { ... } with one of ${DISCOVERY_KINDS.join(', ')}`];
  if (!(DISCOVERY_KINDS as readonly string[]).includes(kind)) {
    return [`unknown discovery kind "${kind}"${didYouMean(kind, DISCOVERY_KINDS)}; expected one of ${DISCOVERY_KINDS.join(', ')}`];
  }
  const k = kind as DiscoveryKind;
  const p = `discovery "${k}"`;
  const errors: string[] = [];
  for (const key of keysOf(raw)) {
    if (KIND_KEYS[k].includes(key) || COMMON_KEYS.includes(key)) continue;
    const owners = DISCOVERY_KINDS.filter((o) => KIND_KEYS[o].includes(key));
    errors.push(`${p}: "${key}" is a key of discovery ${owners.map((o) => `"${o}"`).join(', ')}, not of "${k}"; keys of "${k}": ${KIND_KEYS[k].join(', ')}`);
  }
  for (const key of REQUIRED[k]) if (raw[key] === undefined) errors.push(`${p}: missing required "${key}"`);
  for (const key of ['refresh-interval', 'watch-interval'] as const) {
    const v = raw[key] as number | string | undefined;
    if (v === undefined) continue;
    try {
      if (!(parseDurationMs(v)! > 0)) errors.push(`${p} > ${key}: must be greater than 0`);
    } catch (e) {
      errors.push(`${p} > ${key}: ${(e as Error).message}`);
    }
  }
  if (k === 'static') {
    const backends = (raw.backends as string[] | undefined) ?? [];
    if (raw.backends !== undefined && backends.length === 0) errors.push(`${p}: backends needs at least one "host:port"`);
    for (const b of backends) {
      try {
        parseHostPort(b);
      } catch (e) {
        errors.push(`${p} > backends: ${(e as Error).message}`);
      }
    }
  }
  if (Array.isArray(raw.allow)) {
    if (raw.allow.length === 0) errors.push(`${p} > allow: expected one or more networks, e.g. allow "10.0.0.0/8"`);
    for (const a of raw.allow as unknown[]) {
      const n = typeof a === 'string' ? parseNetwork(a) : `${JSON.stringify(a)} is not a network`;
      if (typeof n === 'string') errors.push(`${p} > allow: ${n}`);
    }
  }
  if (typeof raw.resolver === 'string') {
    const m = checkResolver(raw.resolver);
    if (m) errors.push(`${p} > ${m}`);
  }
  if (k === 'dns-srv' && typeof raw.service === 'string' && !raw.service.startsWith('_')) {
    errors.push(`${p} > service: "${raw.service}" is not an SRV name; expected e.g. "_http._tcp.example.com"`);
  }
  if (k === 'consul' && typeof raw.address === 'string') {
    try {
      const u = new URL(raw.address);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
    } catch {
      errors.push(`${p} > address: "${raw.address}" is not an HTTP API URL; expected e.g. "http://127.0.0.1:8500"`);
    }
  }
  return errors;
}

const ms = (v: number | string | undefined, dflt: number): number => parseDurationMs(v) ?? dflt;

/** Normalised settings of a block that passed validateDiscovery. */
export function discoveryConfig(raw: RawDiscovery): DiscoveryConfig {
  const refreshMs = ms(raw['refresh-interval'], 30_000);
  switch (raw.kind as DiscoveryKind) {
    case 'static':
      return { kind: 'static', backends: raw.backends ?? [] };
    case 'dns':
      return { kind: 'dns', hostname: raw.hostname!, port: raw.port!, refreshMs, resolver: raw.resolver };
    case 'dns-srv':
      return { kind: 'dns-srv', service: raw.service!, refreshMs, resolver: raw.resolver };
    case 'consul':
      return { kind: 'consul', address: raw.address!, service: raw.service!, datacenter: raw.datacenter, onlyPassing: raw['only-passing'] ?? true, tag: raw.tag, refreshMs };
    case 'kubernetes':
      return { kind: 'kubernetes', namespace: raw.namespace, service: raw.service!, portName: raw['port-name'], kubeconfig: raw.kubeconfig, refreshMs };
    case 'file':
      return { kind: 'file', path: raw.path!, watchMs: ms(raw['watch-interval'], 5000) };
  }
}
