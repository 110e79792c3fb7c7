// DNS rebinding (docs/security.md "Admin, static files, metrics and logs"): a loopback-bound
// admin listener is out of other hosts' reach, not out of a local browser's. A page on a name the
// attacker controls can re-point that name at 127.0.0.1 and read same-origin answers; its
// requests still carry the attacker's name in Host. A name that cannot be re-pointed is an IP
// literal or `localhost` / `*.localhost` (RFC 6761 §6.3: always loopback, browsers never ask DNS).
import { isIPv4, isIPv6 } from 'node:net';
import { normalizeHost } from '../server/request-target.ts';
import { stripPort } from '../routing/match.ts';

/** `host`: as the front door normalised it (lower case, no trailing dot), without the port. */
export function namesThisMachine(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIPv4(host)) return true;
  return host.length > 2 && host.charCodeAt(0) === 91 /* '[' */ && host.endsWith(']') && isIPv6(host.slice(1, -1));
}

/**
 * For a server without the front door (the standalone metrics listener): whether a raw Host
 * header names this machine, normalised as the front door does. No Host at all (HTTP/1.0 tools)
 * is not a browser's request; a malformed one names nothing.
 */
export function hostHeaderNamesThisMachine(header: string | undefined): boolean {
  if (header === undefined || header === '') return true;
  const host = normalizeHost(header, 0);
  return typeof host === 'string' && namesThisMachine(stripPort(host));
}
