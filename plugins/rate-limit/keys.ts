// Rate-limit keys: which bucket a request is counted in. Parsed once per generation into a
// function; the per-request cost is one string build (and a hash for long values).
import { createHash } from 'node:crypto';
import type { RequestContext } from '../../src/pipeline/types.ts';
import { clientPrefixKey, DEFAULT_IPV4_PREFIX, DEFAULT_IPV6_PREFIX } from '../../src/server/client-prefix.ts';
import { isIdentityHeader } from '../../src/server/headers.ts';
import { windowsSegments } from '../../src/routing/windows-path.ts';

/** How client addresses are grouped into `client-ip` keys: prefix lengths (docs/rate-limit.md, "Client addresses"). */
export interface ClientPrefixes {
  v4: number;
  v6: number;
}
export const DEFAULT_CLIENT_PREFIXES: ClientPrefixes = { v4: DEFAULT_IPV4_PREFIX, v6: DEFAULT_IPV6_PREFIX };

export type KeySpec =
  | { kind: 'client-ip' }
  | { kind: 'path' }
  | { kind: 'route' }
  | { kind: 'client-ip-and-path' }
  | { kind: 'header'; name: string }
  /** the global limit without a key: one bucket for all traffic */
  | { kind: 'global' };

export const KEY_SPELLINGS = ['client-ip', 'path', 'route', 'client-ip-and-path', 'header:<Name>'] as const;

/** Parses a `key` setting; returns an error message (not a throw) so callers can attach a config path. */
export function parseKeySpec(raw: string): KeySpec | { error: string } {
  const v = raw.trim();
  const lower = v.toLowerCase();
  // Sentinel's global block also accepts client_ip and ip.
  if (lower === 'client-ip' || lower === 'client_ip' || lower === 'ip') return { kind: 'client-ip' };
  if (lower === 'path') return { kind: 'path' };
  if (lower === 'route') return { kind: 'route' };
  if (lower === 'client-ip-and-path' || lower === 'client_ip_and_path') return { kind: 'client-ip-and-path' };
  if (lower.startsWith('header:')) {
    const name = v.slice('header:'.length).trim().toLowerCase();
    // RFC 9110 token characters only: anything else can never match a request header.
    if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(name)) {
      return { error: `invalid key "${raw}": header:<Name> needs a header name (e.g. "header:X-Api-Key")` };
    }
    return { kind: 'header', name };
  }
  return { error: `invalid key "${raw}": expected one of ${KEY_SPELLINGS.join(', ')}` };
}

/**
 * A warning for a key on a client-identity header (X-Forwarded-For, X-Real-IP, True-Client-IP ...):
 * it is not the per-client limit it looks like. From a peer outside trusted-proxies the gateway
 * writes or removes the header, so the key is the peer or one bucket for all; behind a trusted
 * proxy the leftmost X-Forwarded-For entries are still whatever the client sent.
 */
export function identityKeyWarning(spec: KeySpec): string | undefined {
  if (spec.kind !== 'header' || !isIdentityHeader(spec.name)) return undefined;
  return `key "header:${spec.name}" reads the value the upstream gets: from a client outside system { trusted-proxies } the gateway's own (the peer address) or none (one bucket for every client), behind a trusted proxy a value its client may choose; key "client-ip" is the resolved client address`;
}

/** Values longer than this are hashed so an attacker cannot make each stored key huge. */
const MAX_RAW_KEY_LENGTH = 64;

function bounded(value: string): string {
  if (value.length <= MAX_RAW_KEY_LENGTH) return value;
  return '#' + createHash('sha256').update(value).digest('base64url');
}

const ASCII_ESCAPE = /%(2[1-9A-F]|[3-6][0-9A-F]|7[0-9A-E])/g;
const decodeAscii = (_m: string, hex: string): string => String.fromCharCode(parseInt(hex, 16));
/**
 * An NTFS stream suffix at the end of a segment: `::$DATA`, `:$DATA`, `:name:$DATA`,
 * `:$I30:$INDEX_ALLOCATION` (a `:` followed by a `$` type). A plain `:` (`/items:batchGet`) is kept.
 */
const NTFS_STREAM = /(?::[^/:]*)?:\$[A-Za-z_][A-Za-z0-9_]*(?=\/|$)/g;
/** A segment ending in a dot, or an escape left (%20, UTF-8): pathKey reads the path as Windows does. */
const WINDOWS_RESPELLING = /\.(?:\/|$)|%/;

/**
 * The normalised path (src/server/request-target.ts) as a `path` key: spellings the normaliser
 * keeps apart but an application commonly treats as one resource share a bucket, so a client
 * cannot get a fresh one by respelling. Removed: one trailing `/` (runs are already merged;
 * `/x/` is `/x`, `/` stays); case (`/Login` is `/login`: IIS and case-insensitive file systems);
 * the escapes of printable ASCII the normaliser keeps (`/a%21` is `/a!`: most frameworks decode
 * them; `%2F` `%5C` `%3B` never get this far); and, since session 21, what Windows / IIS read as the
 * same segment (src/routing/windows-path.ts: trailing dots and spaces, best-fit forms of non-ASCII
 * characters such as full-width letters); since session 23 an NTFS stream suffix (`::$DATA`,
 * `:$DATA`: a `:` and a `$` type; a plain `:`, which `/items:batchGet` style APIs use, is kept).
 * Not 8.3 aliases: `LOGIN~1.ASP` needs the long name, which only a route under
 * `path-spelling "windows"` knows (its own path). Merging resources that are distinct can only
 * count more strictly, never less.
 */
export function pathKey(path: string): string {
  let p = path.indexOf('%') === -1 ? path : path.replace(ASCII_ESCAPE, decodeAscii);
  if (p.indexOf(':$') !== -1) p = p.replace(NTFS_STREAM, '');
  // a segment ending in a dot, or an escape (%20, UTF-8) left: the Windows reading
  if (WINDOWS_RESPELLING.test(p)) p = `/${windowsSegments(p, false).join('/')}`.replace(/ /g, '%20');
  p = p.toLowerCase();
  return p.length > 1 && p.charCodeAt(p.length - 1) === 0x2f ? p.slice(0, -1) : p;
}

export type KeyFunction = (ctx: Pick<RequestContext, 'clientIp' | 'path' | 'keyPath' | 'routeId' | 'upstreamHeaders'>) => string;

/**
 * Builds the key function. Every key starts with a one-letter tag so buckets of different
 * shapes never collide, and a missing header gets its own bucket ("h-") that no header value
 * ("h:<value>") can reach.
 */
export function keyFunction(spec: KeySpec, prefixes: ClientPrefixes = DEFAULT_CLIENT_PREFIXES): KeyFunction {
  const { v4, v6 } = prefixes;
  switch (spec.kind) {
    case 'client-ip':
      return (ctx) => 'i:' + clientPrefixKey(ctx.clientIp, v4, v6);
    case 'path':
      return (ctx) => 'p:' + bounded(pathKey(ctx.keyPath ?? ctx.path));
    case 'route':
      return (ctx) => 'r:' + (ctx.routeId ?? '');
    case 'client-ip-and-path':
      return (ctx) => 'ip:' + bounded(clientPrefixKey(ctx.clientIp, v4, v6) + ' ' + pathKey(ctx.keyPath ?? ctx.path));
    case 'header': {
      const name = spec.name;
      // What the upstream gets, not what the client sent: an identity header (X-Forwarded-For,
      // X-Real-IP, True-Client-IP ...) from a peer outside trusted-proxies is the address the
      // gateway wrote or nothing, never a value the client picks per request (session 18 audit)
      return (ctx) => {
        const v = ctx.upstreamHeaders[name];
        if (v === undefined) return 'h-';
        return 'h:' + bounded(Array.isArray(v) ? v.join(', ') : v);
      };
    }
    case 'global':
      return () => 'g';
  }
}

/** A key spelled for logs/audit: header values may be credentials, so they are never logged. */
export function describeKeySpec(spec: KeySpec): string {
  return spec.kind === 'header' ? `header:${spec.name}` : spec.kind;
}
