// DNS rebinding (docs/security.md "Admin, static files, metrics and logs"): a loopback-bound
// admin listener is out of other hosts' reach, not out of a local browser's. A page on a name the
// attacker controls can re-point that name at 127.0.0.1 and read same-origin answers; its
// requests still carry the attacker's name in Host. A name that cannot be re-pointed is an IP
// literal or `localhost` / `*.localhost` (RFC 6761 §6.3: always loopback, browsers never ask DNS).
import { isIPv4, isIPv6 } from 'node:net';

/** `host`: as the front door normalised it (lower case, no trailing dot), without the port. */
export function namesThisMachine(host: string): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIPv4(host)) return true;
  return host.length > 2 && host.charCodeAt(0) === 91 /* '[' */ && host.endsWith(']') && isIPv6(host.slice(1, -1));
}

/**
 * For a server without the front door (the standalone metrics listener): whether a raw Host
 * header names this machine. No Host at all (HTTP/1.0 tools) is not a browser's request.
 */
export function hostHeaderNamesThisMachine(header: string | undefined): boolean {
  if (header === undefined || header === '') return true;
  let host = header.toLowerCase();
  const bracket = host.startsWith('[') ? host.indexOf(']') : -1;
  const colon = host.lastIndexOf(':');
  if (bracket >= 0) host = host.slice(0, bracket + 1);
  else if (colon >= 0) host = host.slice(0, colon);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return namesThisMachine(host);
}
