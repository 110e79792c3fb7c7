// The WebSocket upgrade gate: `websocket #true` and the route's `websocket-allowed-origins`
// (cross-site WebSocket hijacking: a browser opens a WebSocket to any site with that site's
// cookies, and only the Origin header says which page asked). Generation.admit and `sentinel
// explain` both decide through upgradeRefusal, so the gate lives in one place.
import type { IncomingHttpHeaders } from 'node:http';

const ORIGIN = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*)(?::(\d{1,5}))?$/;
const DEFAULT_PORT: Readonly<Record<string, number>> = { http: 80, https: 443, ws: 80, wss: 443 };

/**
 * An origin (`scheme://host[:port]`, RFC 6454 serialisation) in one spelling: scheme and host
 * lower-cased, the scheme's default port dropped, leading zeros of the port dropped. undefined
 * for anything else: `null` (an opaque origin), a path or trailing slash, userinfo, a bad port.
 */
export function normalizeOrigin(value: string): string | undefined {
  const m = ORIGIN.exec(value);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  const host = m[2]!.toLowerCase();
  if (m[3] === undefined) return `${scheme}://${host}`;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return port === DEFAULT_PORT[scheme] ? `${scheme}://${host}` : `${scheme}://${host}:${port}`;
}

/** The route's `websocket-allowed-origins`, normalised; throws with the message the config error shows. */
export function compileAllowedOrigins(list: readonly string[]): ReadonlySet<string> {
  const out = new Set<string>();
  for (const v of list) {
    if (v.toLowerCase() === 'null') throw new Error('"null" cannot be allowed: any page can make its WebSocket carry Origin: null (a sandboxed iframe, a data: URL), so it would let every site in');
    if (v === '*') throw new Error('"*" would let every site in: remove websocket-allowed-origins to leave the Origin unchecked');
    const o = normalizeOrigin(v);
    if (o === undefined) throw new Error(`"${v}" is not an origin: write scheme://host[:port], without a path or trailing slash (e.g. "https://app.example.com")`);
    out.add(o);
  }
  return out;
}

/**
 * May a request carrying this Origin header value open a WebSocket? No Origin: yes (browsers always
 * send one on a WebSocket handshake, so its absence means a non-browser client, which carries no
 * victim's cookies). `null`, a malformed value or several joined Origin headers: no.
 */
export function originAllowed(allowed: ReadonlySet<string>, origin: string | undefined): boolean {
  if (origin === undefined) return true;
  const o = normalizeOrigin(origin);
  return o !== undefined && allowed.has(o);
}

export interface UpgradeRefusal {
  readonly status: 400 | 403;
  readonly reason: 'websocket_not_enabled' | 'websocket_origin_not_allowed' | 'websocket_bad_key';
  readonly message: string;
}

const NOT_ENABLED: UpgradeRefusal = { status: 403, reason: 'websocket_not_enabled', message: 'WebSocket not enabled for this route' };
const FOREIGN_ORIGIN: UpgradeRefusal = { status: 403, reason: 'websocket_origin_not_allowed', message: 'WebSocket Origin not allowed for this route' };
const BAD_KEY: UpgradeRefusal = { status: 400, reason: 'websocket_bad_key', message: 'Bad Request: a WebSocket upgrade needs one Sec-WebSocket-Key of 16 bytes in base64 (RFC 6455 section 4.1)' };

/** RFC 6455 §4.1: a base64-encoded 16-byte nonce. */
const WS_KEY = /^[A-Za-z0-9+/]{21}[AQgw]==$/;

/**
 * Why a WebSocket upgrade request is refused (403; 400 for a handshake without a valid key), or
 * undefined when it may go on (or is no upgrade). Without a key the gateway could not check the
 * upstream's 101 (src/websocket/proxy.ts acceptsHandshake): an upstream that answers it anyway was
 * charged a protocol failure the client chose (session 22 audit).
 */
export function upgradeRefusal(route: { readonly websocket: boolean; readonly websocketOrigins: ReadonlySet<string> | undefined }, headers: IncomingHttpHeaders): UpgradeRefusal | undefined {
  if (headers.upgrade === undefined || headers.upgrade.toLowerCase() !== 'websocket') return undefined;
  if (!route.websocket) return NOT_ENABLED;
  if (route.websocketOrigins !== undefined && !originAllowed(route.websocketOrigins, headers.origin)) return FOREIGN_ORIGIN;
  const key = headers['sec-websocket-key'];
  if (typeof key !== 'string' || !WS_KEY.test(key.trim())) return BAD_KEY;
  return undefined;
}
