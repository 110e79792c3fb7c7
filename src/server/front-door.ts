// The front door: every request (and upgrade) is checked and normalised here, once, before
// routing. On success req.url holds the normalised origin-form target and req.headers.host the
// normalised authority, so every later stage (Fastify, routing, rate-limit keys, agents, the WAF,
// the access log, the upstream request, the WebSocket handshake) reads the same values.
// Policy and statuses: docs/security.md "Request normalisation".
import { METHODS, type IncomingMessage } from 'node:http';
import { normalizeHost, parseTarget, type TargetRejection } from './request-target.ts';
import { HOP_BY_HOP, connectionListed, normaliseIdentityHeaders, type PeerTrust } from './headers.ts';

export type FrontDoorKind = TargetRejection | 'missing_host' | 'duplicate_host' | 'authority_mismatch' | 'connect_method' | 'trace_method' | 'http10_transfer_encoding' | 'http_version' | 'asterisk_form' | 'transfer_coding' | 'unknown_method';

/** A request answered at the front door: a rejection (kind set) or the local `OPTIONS *` answer. */
export interface FrontDoorAnswer {
  status: number;
  /** the sentinel_client_errors_total kind; undefined for a valid request answered locally */
  kind: FrontDoorKind | undefined;
  message: string;
  headers?: Record<string, string>;
}

/** The normalised target, for the stages after the front door. */
export interface AdmittedTarget {
  path: string;
  query: string;
}

/** Methods named in the `Allow` of the local `OPTIONS *` answer (the gateway forwards these). */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS';

const MESSAGES: Record<FrontDoorKind, string> = {
  bad_percent_encoding: 'Bad Request: invalid percent-encoding in the path',
  control_character: 'Bad Request: control character in the request target',
  non_ascii: 'Bad Request: non-ASCII character in the request target',
  encoded_slash: 'Bad Request: encoded slash or backslash in the path',
  backslash: 'Bad Request: backslash in the path',
  path_parameter: 'Bad Request: path parameters (;) are not accepted',
  fragment: 'Bad Request: fragment in the request target',
  overlong_utf8: 'Bad Request: overlong UTF-8 in the path',
  uri_too_long: 'URI Too Long',
  bad_target: 'Bad Request: invalid request target',
  bad_scheme: 'Bad Request: absolute-form target with a scheme other than http or https',
  bad_host: 'Bad Request: invalid Host',
  host_userinfo: 'Bad Request: userinfo in the Host or authority',
  missing_host: 'Bad Request: HTTP/1.1 request without Host',
  duplicate_host: 'Bad Request: more than one Host header',
  authority_mismatch: 'Bad Request: :authority and Host differ',
  connect_method: 'Method Not Allowed: CONNECT is not supported',
  trace_method: 'Method Not Allowed: TRACE is not forwarded',
  asterisk_form: 'Bad Request: the asterisk target is only valid with OPTIONS',
  transfer_coding: 'Not Implemented: transfer codings other than chunked are not supported',
  http10_transfer_encoding: 'Bad Request: Transfer-Encoding in an HTTP/1.0 request',
  http_version: 'HTTP Version Not Supported',
  unknown_method: 'Not Implemented: unknown method',
};

/**
 * The methods HTTP/1.1's parser accepts (llhttp's list, case-sensitive). HTTP/2 takes any token
 * as `:method` (`delete`, `FOO`); Fastify's router dispatches none of those, so they were answered
 * by its fallback without routing, agents, the access log or metrics. Same answer as HTTP/1.1.
 */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

function reject(kind: FrontDoorKind): FrontDoorAnswer {
  const notAllowed = kind === 'connect_method' || kind === 'trace_method';
  const status = kind === 'uri_too_long' ? 414 : kind === 'http_version' ? 505 : notAllowed ? 405 : kind === 'transfer_coding' || kind === 'unknown_method' ? 501 : 400;
  return { status, kind, message: MESSAGES[kind], ...(notAllowed ? { headers: { allow: ALLOWED_METHODS } } : {}) };
}

/** What the front door reads of a request (an IncomingMessage, or the one `sentinel explain` builds). */
export type FrontDoorRequest = Pick<IncomingMessage, 'method' | 'url' | 'headers' | 'rawHeaders' | 'httpVersionMajor' | 'httpVersionMinor'>;

/**
 * Checks and normalises `req` in place. Returns the normalised target, or the answer to send
 * instead of routing the request. `trust` says whether the peer is a trusted proxy and which of
 * its identity headers are kept (docs/security.md, "Identity headers").
 */
export function frontDoor(req: FrontDoorRequest, defaultPort: number, trust: PeerTrust): AdmittedTarget | FrontDoorAnswer {
  // Node's HTTP/1 parser also takes `HTTP/0.9` (`GET /x` and nothing else) and `HTTP/2.0` in a
  // request line: neither is HTTP/1, and code that tells HTTP/2 by the major
  // version would take such a request for a stream. Only an HTTP/2 session's requests have `stream`.
  if (req.httpVersionMajor !== 1 && (req as { stream?: unknown }).stream === undefined) return reject('http_version');
  if (req.method === 'CONNECT') return reject('connect_method');
  // An upstream that answers TRACE (Apache's default TraceEnable on) echoes the request as it got
  // it: the headers the gateway, a route policy or an agent added (internal tokens, the identity
  // an auth agent resolved) would go back to the client. nginx refuses it too.
  if (req.method === 'TRACE') return reject('trace_method');
  if (req.method !== undefined && !KNOWN_METHODS.has(req.method)) return reject('unknown_method');
  // Node's parser takes `Transfer-Encoding: gzip, chunked`, removes the chunked framing and hands
  // over a body that is still gzip-coded, with nothing left to say so: forwarded, the upstream would
  // read it as plain. RFC 9112 §6.1: a transfer coding the server does not understand gets 501.
  const te = req.headers['transfer-encoding'];
  if (te !== undefined) {
    if (te.trim().toLowerCase() !== 'chunked') return reject('transfer_coding');
    // HTTP/1.0 has no chunked coding: a 1.0 hop in front reads another body length than Node did
    // (RFC 9112 §6.1 calls it faulty framing and says close after it; nginx answers 400)
    if (req.httpVersionMajor === 1 && req.httpVersionMinor === 0) return reject('http10_transfer_encoding');
  }
  // Node keeps the first of several Host headers; a proxy that picks another one sees another vhost.
  const raw = req.rawHeaders;
  let hosts = 0;
  let underscored: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    // CGI-style upstreams (PHP-FPM, WSGI, Rack) read `X_Forwarded_For` as X-Forwarded-For: a name
    // with '_' would get past every strip list and header key. Dropped below, as nginx does.
    if (name.indexOf('_') >= 0) (underscored ??= []).push(name);
    // 'host' in any case, without allocating a lower-cased copy of every header name
    if (name.length === 4 && (name.charCodeAt(0) | 32) === 104 && (name.charCodeAt(1) | 32) === 111 && (name.charCodeAt(2) | 32) === 115 && (name.charCodeAt(3) | 32) === 116 && ++hosts > 1) {
      return reject('duplicate_host');
    }
  }
  const t = parseTarget(req.url ?? '');
  let authority: string | undefined;
  switch (t.form) {
    case 'rejected':
      return reject(t.reason);
    case 'asterisk':
      // OPTIONS * asks about the server, not a resource: answered here, never forwarded.
      if (req.method !== 'OPTIONS') return reject('asterisk_form');
      return { status: 200, kind: undefined, message: '', headers: { allow: ALLOWED_METHODS } };
    case 'absolute':
      authority = t.authority;
      break;
    case 'origin':
      break;
  }
  const headers = req.headers;
  const sentHost = headers.host;
  const h2Authority = headers[':authority'];
  let host: string | undefined;
  if (authority !== undefined) {
    // RFC 9112 §3.2.2: the target's authority replaces Host
    host = authority;
  } else if (sentHost !== undefined) {
    const n = normalizeHost(sentHost, defaultPort);
    if (typeof n !== 'string') return reject(n.reason);
    host = n;
  }
  if (typeof h2Authority === 'string') {
    const a = normalizeHost(h2Authority, defaultPort);
    if (typeof a !== 'string') return reject(a.reason);
    if (host !== undefined && host !== a) return reject('authority_mismatch');
    host = a;
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is refused (the listener leaves this to us).
  if (host === undefined && req.httpVersionMajor === 1 && req.httpVersionMinor === 1) return reject('missing_host');
  if (host !== undefined && host !== sentHost) headers.host = host;
  if (underscored) for (const name of underscored) delete headers[name.toLowerCase()];
  const connection = headers.connection;
  if (connection !== undefined && connection !== 'keep-alive' && connection !== 'close') dropConnectionListed(headers, connection);
  normaliseIdentityHeaders(headers, trust);
  if (t.form === 'absolute' || t.changed) req.url = t.query === '' ? t.path : `${t.path}?${t.query}`;
  return { path: t.path, query: t.query };
}

/**
 * Headers named in `Connection` are hop-by-hop (RFC 9110 §7.6.1): the upstream never gets them,
 * so nothing before it may act on them either (a cache keying a `Vary: Accept` variant on an
 * Accept the upstream never saw stores the wrong answer under it). The framing, the vhost and the
 * client chain stay (`Connection: content-length, host` must not drop the body or retarget the
 * request); the hop-by-hop headers themselves (Upgrade, TE) are dealt with where they are forwarded.
 */
function dropConnectionListed(headers: FrontDoorRequest['headers'], connection: string): void {
  const listed = connectionListed(connection);
  if (!listed) return;
  for (const name of listed) {
    // X-Forwarded-For stays too: behind a trusted proxy the client address is resolved from it
    // (dropped, the client would become the proxy); its upstream value is rebuilt anyway.
    if (name === 'host' || name === 'content-length' || name === 'x-forwarded-for' || HOP_BY_HOP.has(name)) continue;
    delete headers[name];
  }
}

export function isAnswer(x: AdmittedTarget | FrontDoorAnswer): x is FrontDoorAnswer {
  return (x as FrontDoorAnswer).status !== undefined;
}

/** How a request Node's HTTP/1.1 parser refused is answered (the 'clientError' event). */
export interface ParserErrorAnswer {
  status: number;
  kind: string;
  message: string;
}

/**
 * Status and metric kind for a parser error code. Unknown methods get 501 (RFC 9110 §15.6.2);
 * `kind` is the llhttp code without its HPE_ prefix (a fixed set), so the label stays bounded.
 */
export function parserError(code: string | undefined): ParserErrorAnswer {
  switch (code) {
    case 'HPE_INVALID_METHOD':
      return { status: 501, kind: 'unknown_method', message: 'Not Implemented: unknown method' };
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, kind: 'header_overflow', message: 'Request Header Fields Too Large' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return { status: 408, kind: 'request_timeout', message: 'Request Timeout' };
  }
  if (code && /^HPE_[A-Z_]{1,40}$/.test(code)) return { status: 400, kind: code.slice(4).toLowerCase(), message: 'Bad Request: malformed HTTP request' };
  return { status: 400, kind: 'other', message: 'Bad Request: malformed HTTP request' };
}

const TOKEN = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,32}$/;

/** Method and target of a refused request, from the bytes the parser saw (for the access log only). */
export function requestLineOf(raw: Buffer | undefined): { method: string; target: string } {
  if (!raw) return { method: '-', target: '-' };
  const head = raw.subarray(0, 2048).toString('latin1');
  const eol = head.search(/[\r\n]/);
  const parts = (eol >= 0 ? head.slice(0, eol) : head).split(' ');
  return { method: TOKEN.test(parts[0] ?? '') ? parts[0]! : '-', target: parts.length > 1 && parts[1] ? parts[1].slice(0, 1024) : '-' };
}
