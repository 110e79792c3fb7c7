// One error taxonomy for the whole gateway (design.md §5): metrics, logs, retries and the
// client-facing status all come from classifyUpstreamError. Bodies never name upstream addresses.
// `blame` decides whether an error may count against the upstream (passive health, circuit
// breakers, retries): errors caused by the shape of the client's request never do, or any client
// could open the breaker (docs/security.md, "Upstream blame").
import type { UpstreamErrorReason } from '../upstream/types.ts';

export interface ClassifiedError {
  status: number;
  reason: UpstreamErrorReason;
  /**
   * 'upstream': the target failed (reported to health and breakers, may be retried);
   * 'client': the request itself was refused before or while it was sent (never reported, never retried);
   * 'answer': the application answered something the upstream client cannot relay (an interim
   * `100 Continue` nobody asked for): reported as a response (the target is alive), never retried
   */
  blame: 'upstream' | 'client' | 'answer';
  /** client-facing message (no addresses, no internals) */
  message: string;
  /** true when no byte reached the upstream, so any request may be retried */
  beforeSend: boolean;
}

interface ErrLike {
  code?: string;
  name?: string;
  message?: string;
  cause?: unknown;
}

/**
 * Codes for a request the upstream client (undici, node:http2) refuses to send because of what
 * the client asked for: a target such as `*`, a header it will not write, a body that does not
 * match its Content-Length. Nothing reached the upstream, and sending it elsewhere fails the same.
 */
const CLIENT_SHAPED = new Set([
  'UND_ERR_INVALID_ARG',
  'UND_ERR_NOT_SUPPORTED',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_INVALID_CHAR',
  'ERR_HTTP2_INVALID_CONNECTION_HEADERS',
  'ERR_HTTP2_INVALID_HEADER_VALUE',
  'ERR_HTTP2_HEADER_SINGLE_VALUE',
  'ERR_HTTP2_INVALID_PSEUDOHEADER',
]);

// beforeSend is not consulted for client-blamed errors (never retried); false is the safe claim.
const INVALID_REQUEST: ClassifiedError = { status: 400, reason: 'invalid_request', blame: 'client', message: 'Bad Request: the request cannot be forwarded as sent', beforeSend: false };

/**
 * undici 7.30 (and 8.14) destroys the connection on any `100` status line before a handler sees it
 * (client-h1.js onHeadersComplete; its other 'bad response' is for bytes with no request in
 * flight, which fails no request). RFC 9110 §15.2 lets a server send 1xx at will, and which URL
 * makes an application send one is the client's choice: counted as a transport failure, a few such
 * requests opened the target's breaker for every client (docs/security.md, "Upstream blame").
 */
const UNRELAYABLE_INTERIM: ClassifiedError = { status: 502, reason: 'protocol', blame: 'answer', message: 'Bad Gateway: invalid response from upstream', beforeSend: false };

/** Maps undici / socket errors to the gateway's statuses: refused/reset 502, timeouts 504, request-shape 400. */
export function classifyUpstreamError(err: unknown): ClassifiedError {
  const e = (err ?? {}) as ErrLike;
  const code = e.code ?? (e.cause as ErrLike | undefined)?.code ?? '';
  if (CLIENT_SHAPED.has(code)) return INVALID_REQUEST;
  if (code === 'UND_ERR_SOCKET' && e.message === 'bad response') return UNRELAYABLE_INTERIM;
  return { ...upstreamFailure(e, code), blame: 'upstream' };
}

function upstreamFailure(e: ErrLike, code: string): Omit<ClassifiedError, 'blame'> {
  switch (code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'SENTINEL_TARGET_ADDRESS_REFUSED': // a target's host name resolved only to refused addresses (upstream/discovery/address-policy.ts)
      return { status: 502, reason: 'connect_refused', message: 'Bad Gateway: upstream unavailable', beforeSend: true };
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { status: 504, reason: 'connect_timeout', message: 'Gateway Timeout: upstream did not accept the connection in time', beforeSend: true };
    case 'SENTINEL_WRITE_TIMEOUT':
      return { status: 504, reason: 'timeout', message: 'Gateway Timeout: upstream did not accept the request body in time', beforeSend: false };
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'ETIMEDOUT':
      return { status: 504, reason: 'timeout', message: 'Gateway Timeout: upstream did not respond in time', beforeSend: false };
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
      return { status: 502, reason: 'reset', message: 'Bad Gateway: upstream closed the connection', beforeSend: false };
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'CERT_HAS_EXPIRED':
    case 'EPROTO':
      return { status: 502, reason: 'tls', message: 'Bad Gateway: upstream TLS failure', beforeSend: true };
    case 'SENTINEL_H2_UNSUPPORTED': // http-version min-version 2 and the target does not speak h2
      return { status: 502, reason: 'protocol', message: 'Bad Gateway: upstream does not speak HTTP/2', beforeSend: true };
    case 'SENTINEL_H2_REFUSED': // refused stream that could not be sent again: provably not processed
      return { status: 502, reason: 'reset', message: 'Bad Gateway: upstream closed the connection', beforeSend: true };
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'UND_ERR_INFO':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'SENTINEL_BAD_RESPONSE': // src/upstream/exchange.ts InvalidUpstreamResponse
      return { status: 502, reason: 'protocol', message: 'Bad Gateway: invalid response from upstream', beforeSend: false };
    default:
      if (e.name === 'TimeoutError') return { status: 504, reason: 'timeout', message: 'Gateway Timeout: upstream did not respond in time', beforeSend: false };
      return { status: 502, reason: 'other', message: 'Bad Gateway', beforeSend: false };
  }
}

/** JSON error body the gateway sends for its own errors. */
export function errorBody(status: number, message: string, traceId: string): string {
  return JSON.stringify({ error: message, status, request_id: traceId });
}
