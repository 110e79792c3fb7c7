// The request target and Host, parsed and normalised once at the front door (docs/security.md
// "Request normalisation"). Pure functions: the gateway rewrites req.url / Host from their result,
// so routing, rate-limit keys, agents, the WAF, the access log and the upstream all see one path.
//
// Path policy (RFC 3986 §6.2.2 syntax-based normalisation, then rejections a proxy must make
// because upstreams disagree about the rest):
//   - %XX of an unreserved character (ALPHA DIGIT - . _ ~) is decoded; other escapes get upper-case hex
//   - characters RFC 3986 does not allow in a path (" < > \` ^ { | } and the like) are percent-encoded
//   - runs of '/' are merged, '.' and '..' segments removed (5.2.4; '..' above the root stops at '/')
//   - 400: invalid escapes (%zz, %4, a lone %), NUL or any control character (raw or escaped),
//     raw non-ASCII, '%2F' / '%5C' (an upstream may decode them into segment separators),
//     raw '\' (Windows/IIS and WHATWG URL parsers read it as '/'), ';' or '%3B' (path parameters:
//     Java servlet containers strip them, so '/admin;x' is '/admin' there), '#' (a fragment is never
//     part of a request target)
//   - 400: overlong UTF-8 escapes (%C0%AE, %E0%80%AF, ...: '.', '/' for decoders that accept them)
//   - 414: targets longer than MAX_TARGET_LENGTH
// Paths stay case-sensitive (as in nginx); see docs/security.md for case-insensitive upstreams.
// The query is forwarded as sent (its encoding is the application's business); only '#' and
// control characters are refused there.

/** Longest request target accepted (bytes of path + query), beyond which 414 URI Too Long. */
export const MAX_TARGET_LENGTH = 8192;

/** Why the front door refused a request; the `kind` label of sentinel_client_errors_total. */
export type TargetRejection =
  | 'bad_percent_encoding'
  | 'control_character'
  | 'non_ascii'
  | 'encoded_slash'
  | 'backslash'
  | 'path_parameter'
  | 'fragment'
  | 'overlong_utf8'
  | 'uri_too_long'
  | 'bad_target'
  | 'bad_scheme'
  | 'bad_host'
  | 'host_userinfo';

export type PathResult = { ok: true; path: string } | { ok: false; reason: TargetRejection };

// Character classes for the path scan (indexed by char code < 128).
const SAFE = 1; // may appear as-is in a normal path: unreserved, sub-delims minus ';', ':', '@', '/'
const UNRESERVED = 2; // decoded when percent-encoded
const ENCODE = 4; // allowed by the HTTP parser but not by RFC 3986 in a path: percent-encoded
const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[A-Za-z0-9\-._~]/.test(ch)) CLASS[c] = SAFE | UNRESERVED;
  else if ("!$&'()*+,=:@/".includes(ch)) CLASS[c] = SAFE;
  else if ('"<>`^{|}[]'.includes(ch)) CLASS[c] = ENCODE;
}

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const l = c | 32;
  if (l >= 97 && l <= 102) return l - 87;
  return -1;
}

/**
 * Normalises an origin-form path (starts with '/', no query). Returns the same string when it is
 * already normal (the common case: one scan, no allocation).
 */
export function normalizePath(path: string): PathResult {
  const n = path.length;
  if (n > MAX_TARGET_LENGTH) return { ok: false, reason: 'uri_too_long' };
  let prev = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c >= 128 || (CLASS[c]! & SAFE) === 0) break;
    // '//' and a segment starting with '.' may need merging / dot-segment removal
    if (prev === 47 && (c === 47 || c === 46)) break;
    prev = c;
  }
  if (i === n) return { ok: true, path };
  return slowPath(path);
}

function slowPath(path: string): PathResult {
  // 1. escapes and characters, segment by segment
  const segments: string[] = [];
  let seg = '';
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === 47) {
      segments.push(seg);
      seg = '';
      continue;
    }
    if (c === 37 /* % */) {
      const h = i + 2 < n ? hexValue(path.charCodeAt(i + 1)) : -1;
      const l = h >= 0 ? hexValue(path.charCodeAt(i + 2)) : -1;
      if (l < 0) return { ok: false, reason: 'bad_percent_encoding' };
      const b = (h << 4) | l;
      if (b < 0x20 || b === 0x7f) return { ok: false, reason: 'control_character' };
      if (b === 0x2f || b === 0x5c) return { ok: false, reason: 'encoded_slash' };
      if (b === 0x3b) return { ok: false, reason: 'path_parameter' };
      if (b >= 0xc0 && overlongAt(b, path, i + 3)) return { ok: false, reason: 'overlong_utf8' };
      if (b < 128 && CLASS[b]! & UNRESERVED) seg += String.fromCharCode(b);
      else seg += '%' + HEX[h]! + HEX[l]!;
      i += 2;
      continue;
    }
    if (c < 0x21 || c === 0x7f) return { ok: false, reason: 'control_character' };
    if (c >= 128) return { ok: false, reason: 'non_ascii' };
    if (c === 92 /* \ */) return { ok: false, reason: 'backslash' };
    if (c === 59 /* ; */) return { ok: false, reason: 'path_parameter' };
    if (c === 35 /* # */) return { ok: false, reason: 'fragment' };
    const k = CLASS[c]!;
    if (k & SAFE) seg += path[i];
    else if (k & ENCODE) seg += '%' + HEX[c >> 4]! + HEX[c & 15]!;
    else return { ok: false, reason: 'bad_target' };
  }
  segments.push(seg);
  // 2. merge slashes, remove dot segments. segments[0] is the empty string before the leading '/'.
  const out: string[] = [];
  const last = segments.length - 1;
  let trailing = false;
  for (let s = 1; s <= last; s++) {
    const v = segments[s]!;
    if (v === '' || v === '.') {
      trailing = s === last;
      continue;
    }
    if (v === '..') {
      out.pop();
      trailing = s === last;
      continue;
    }
    out.push(v);
    trailing = false;
  }
  if (out.length === 0) return { ok: true, path: '/' };
  const result = '/' + out.join('/') + (trailing ? '/' : '');
  return result.length > MAX_TARGET_LENGTH ? { ok: false, reason: 'uri_too_long' } : { ok: true, path: result };
}

/**
 * Whether escaped byte `b` starts an overlong UTF-8 form with the escape at `j` (%C0%AE is '.',
 * %C0%AF '/', %E0%80%AF '/' again): never valid UTF-8, only ever sent to get a '.', '/' or '\'
 * past a check to a decoder that accepts them (old IIS, Tomcat). A Latin-1 'À' before anything but
 * a continuation byte is not one.
 */
function overlongAt(b: number, path: string, j: number): boolean {
  if (b !== 0xc0 && b !== 0xc1 && b !== 0xe0 && b !== 0xf0) return false;
  if (path.charCodeAt(j) !== 37 /* % */) return false;
  const h = hexValue(path.charCodeAt(j + 1));
  const l = h >= 0 ? hexValue(path.charCodeAt(j + 2)) : -1;
  if (l < 0) return false;
  const next = (h << 4) | l;
  // the second byte's range that makes each lead overlong (RFC 3629 §4)
  return next >= 0x80 && next <= (b <= 0xc1 ? 0xbf : b === 0xe0 ? 0x9f : 0x8f);
}

/** Checks a query string (without '?'): it is forwarded as sent, so only what no parser should see is refused. */
export function checkQuery(query: string): TargetRejection | undefined {
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c < 0x21 || c === 0x7f) return 'control_character';
    if (c >= 128) return 'non_ascii';
    if (c === 35) return 'fragment';
  }
  return undefined;
}

/** A rejection, or the normalised authority (`name` or `name:port`, the scheme's default port left out). */
export type HostResult = string | { reason: TargetRejection };

/**
 * Normalises a Host value or an absolute-form authority: lower-case, one trailing dot removed,
 * the default port removed. Accepts a reg-name of letters, digits, '-', '.', '_' (which covers
 * IPv4), or an [IPv6] literal, then an optional port of at most 5 digits (<= 65535). Userinfo
 * (`x@y`) and anything else is refused.
 */
export function normalizeHost(raw: string, defaultPort: number): HostResult {
  const n = raw.length;
  if (n === 0 || n > 261) return { reason: 'bad_host' };
  let nameEnd: number;
  let name: string;
  if (raw.charCodeAt(0) === 91 /* [ */) {
    nameEnd = raw.indexOf(']') + 1;
    if (nameEnd <= 2) return { reason: 'bad_host' };
    const inner = raw.slice(1, nameEnd - 1);
    for (let i = 0; i < inner.length; i++) {
      const c = inner.charCodeAt(i) | 32;
      // hex digits, ':' and '.' (an embedded IPv4); zone ids ('%') are not valid in a Host
      if (!((c >= 48 && c <= 58) || (c >= 97 && c <= 102) || c === 46)) return { reason: 'bad_host' };
    }
    if (!isIPv6Literal(inner)) return { reason: 'bad_host' };
    name = '[' + inner.toLowerCase() + ']';
  } else {
    let lower = true;
    nameEnd = n;
    for (let i = 0; i < n; i++) {
      const c = raw.charCodeAt(i);
      if (c === 58 /* : */) {
        nameEnd = i;
        break;
      }
      if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95) continue;
      if (c >= 65 && c <= 90) {
        lower = false;
        continue;
      }
      return { reason: c === 64 /* @ */ ? 'host_userinfo' : 'bad_host' };
    }
    name = nameEnd === n ? raw : raw.slice(0, nameEnd);
    if (!lower) name = name.toLowerCase();
    if (name.charCodeAt(name.length - 1) === 46) name = name.slice(0, -1);
    // no empty labels: '', '.x', 'a..b' (a trailing dot was removed above, once)
    if (name.length === 0 || name.charCodeAt(0) === 46 || name.charCodeAt(name.length - 1) === 46 || name.includes('..')) return { reason: 'bad_host' };
  }
  if (nameEnd === n) return name;
  if (raw.charCodeAt(nameEnd) !== 58) return { reason: 'bad_host' };
  const portText = raw.slice(nameEnd + 1);
  if (portText === '') return name;
  if (portText.length > 5) return { reason: 'bad_host' };
  let port = 0;
  for (let i = 0; i < portText.length; i++) {
    const d = portText.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return { reason: 'bad_host' };
    port = port * 10 + d;
  }
  if (port > 65535) return { reason: 'bad_host' };
  if (port === defaultPort) return name;
  // unchanged input keeps its string (the common `host:8080` case allocates nothing)
  return name.length === nameEnd && portText.length === String(port).length && name === raw.slice(0, nameEnd) ? raw : `${name}:${port}`;
}

function isIPv6Literal(s: string): boolean {
  // structure check (the characters were checked by the caller): at most one '::', 8 groups of <= 4 hex
  // digits, or fewer with '::', optionally ending in a dotted IPv4 worth two groups
  const dbl = s.indexOf('::');
  if (dbl >= 0 && s.indexOf('::', dbl + 1) >= 0) return false;
  const parts = s.split(':');
  let groups = 0;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p === '') continue;
    if (p.includes('.')) {
      if (i !== parts.length - 1 || !isIPv4(p)) return false;
      groups += 2;
    } else if (p.length > 4) return false;
    else groups++;
  }
  if (dbl >= 0) {
    // '::' may be at either end; a single ':' at an end is invalid
    if ((s.startsWith(':') && !s.startsWith('::')) || (s.endsWith(':') && !s.endsWith('::'))) return false;
    return groups <= 7;
  }
  return groups === 8 && !s.startsWith(':') && !s.endsWith(':');
}

function isIPv4(s: string): boolean {
  const parts = s.split('.');
  if (parts.length !== 4) return false;
  for (const p of parts) if (p === '' || p.length > 3 || Number(p) > 255 || !/^\d+$/.test(p)) return false;
  return true;
}

/** The request target after the front door (RFC 9112 §3.2). */
export type ParsedTarget =
  /** `changed`: the path differs from the one sent */
  | { form: 'origin'; path: string; query: string; changed: boolean }
  /** absolute-form: `authority` is normalised and replaces Host (RFC 9112 §3.2.2) */
  | { form: 'absolute'; authority: string; path: string; query: string }
  | { form: 'asterisk' }
  | { form: 'rejected'; reason: TargetRejection };

/** Parses and normalises a request target as the HTTP parser delivered it. */
export function parseTarget(url: string): ParsedTarget {
  if (url.length > MAX_TARGET_LENGTH) return { form: 'rejected', reason: 'uri_too_long' };
  if (url.charCodeAt(0) === 47 /* / */) return splitAndNormalize(url);
  if (url === '*') return { form: 'asterisk' };
  // absolute-form: only http and https; authority up to the first '/', '?' or '#'
  const colon = url.indexOf('://');
  if (colon <= 0) return { form: 'rejected', reason: 'bad_target' };
  const scheme = url.slice(0, colon).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return { form: 'rejected', reason: 'bad_scheme' };
  const start = colon + 3;
  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 || c === 63 || c === 35) break;
    end++;
  }
  const authority = normalizeHost(url.slice(start, end), scheme === 'https' ? 443 : 80);
  if (typeof authority !== 'string') return { form: 'rejected', reason: authority.reason };
  const rest = end === url.length ? '/' : url.charCodeAt(end) === 47 ? url.slice(end) : '/' + url.slice(end);
  const t = splitAndNormalize(rest);
  return t.form === 'origin' ? { form: 'absolute', authority, path: t.path, query: t.query } : t;
}

function splitAndNormalize(url: string): ParsedTarget {
  const q = url.indexOf('?');
  const sent = q >= 0 ? url.slice(0, q) : url;
  const p = normalizePath(sent);
  if (!p.ok) return { form: 'rejected', reason: p.reason };
  const query = q >= 0 ? url.slice(q + 1) : '';
  const bad = query === '' ? undefined : checkQuery(query);
  if (bad) return { form: 'rejected', reason: bad };
  return { form: 'origin', path: p.path, query, changed: p.path !== sent };
}
