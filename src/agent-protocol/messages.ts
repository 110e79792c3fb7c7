// Message shapes of the Sentinel agent protocol (v1 event JSON + v2 top-level correlation_id),
// sentinel-reference.md §2.3/§2.4, and the validation of agent replies. Everything an agent
// sends is checked here before the gateway acts on it: an agent is a separate process and a
// malformed reply must become a clean "agent error", never an exception deep in the proxy.

/** Lower-cased header name -> values, as agents receive them. */
export type HeaderValues = Record<string, string[]>;

export interface RequestMetadata {
  correlation_id: string;
  request_id: string;
  client_ip: string;
  client_port: number;
  server_name: string | null;
  protocol: string;
  tls_version: string | null;
  tls_cipher: string | null;
  route_id: string | null;
  upstream_id: string | null;
  /** RFC 3339 */
  timestamp: string;
  traceparent: string | null;
  /** Sentinel-TS extension: the verified mTLS client identity, present only when a client certificate was verified */
  client_cert_subject?: string;
  client_cert_sans?: string[];
  client_cert_fingerprint?: string;
}

export interface RequestHeadersEvent {
  correlation_id: string;
  metadata: RequestMetadata;
  method: string;
  /** path + query */
  uri: string;
  headers: HeaderValues;
}

export interface RequestBodyChunkEvent {
  correlation_id: string;
  /** base64 */
  data: string;
  is_last: boolean;
  total_size: number | null;
  chunk_index: number;
  bytes_received: number;
}

export interface ResponseHeadersEvent {
  correlation_id: string;
  status: number;
  headers: HeaderValues;
}

export interface ResponseBodyChunkEvent {
  correlation_id: string;
  data: string;
  is_last: boolean;
  total_size: number | null;
  chunk_index: number;
  bytes_sent: number;
}

export interface RequestCompleteEvent {
  correlation_id: string;
  status: number;
  duration_ms: number;
  request_body_size: number;
  response_body_size: number;
  upstream_attempts: number;
  error: string | null;
}

export interface WebSocketFrameEvent {
  correlation_id: string;
  opcode: 'text' | 'binary' | 'ping' | 'pong' | 'close' | 'continuation';
  /** base64 of the unmasked payload */
  data: string;
  client_to_server: boolean;
  /** per direction, from 0 */
  frame_index: number;
  fin: boolean;
  route_id: string | null;
  client_ip: string;
}

export interface ConfigureEvent {
  correlation_id: string;
  agent_id: string;
  config: unknown;
  config_version: string | null;
}

export interface HandshakeRequest {
  supported_versions: number[];
  proxy_id: string;
  proxy_version: string;
  config: unknown;
  supported_encodings: string[];
}

export interface AgentCapabilities {
  agent_id: string;
  name: string;
  version: string;
  supported_events: number[];
  features: Record<string, boolean>;
  limits: { max_body_size?: number; max_concurrency?: number; preferred_chunk_size?: number };
}

export interface HandshakeResponse {
  protocol_version: number;
  capabilities: AgentCapabilities;
  success: boolean;
  error: string | null;
  encoding: string;
}

export interface CancelMessage {
  correlation_id: string;
  reason: number;
  timestamp_ms: number;
}

/** Cancel reasons (proto enum numbering). */
export const CancelReason = { Unspecified: 0, ClientDisconnect: 1, Timeout: 2, BlockedByAgent: 3, UpstreamError: 4, ProxyShutdown: 5, Manual: 6 } as const;

/** `supported_events` numbering in the handshake. */
export const EventNumber = {
  configure: 0,
  request_headers: 1,
  request_body_chunk: 2,
  response_headers: 3,
  response_body_chunk: 4,
  request_complete: 5,
  websocket_frame: 6,
  guardrail_inspect: 7,
} as const;
export type EventName = keyof typeof EventNumber;

// ---- Agent replies (AgentResponse), wire form --------------------------------------------

export type WireHeaderOp = { set: { name: string; value: string } } | { add: { name: string; value: string } } | { remove: { name: string } };

export type WireDecision =
  | 'allow'
  | { allow: Record<string, never> }
  | { block: { status: number; body?: string | null; headers?: Record<string, string> | null } }
  | { redirect: { url: string; status?: number } }
  | { challenge: { challenge_type: string; params?: Record<string, string> } };

export interface WireAudit {
  tags?: string[];
  rule_ids?: string[];
  confidence?: number | null;
  reason_codes?: string[];
  custom?: Record<string, unknown>;
}

export interface WireBodyMutation {
  data: string | null;
  chunk_index: number;
}

export interface WireAgentResponse {
  version?: number;
  decision: WireDecision;
  request_headers?: WireHeaderOp[];
  response_headers?: WireHeaderOp[];
  routing_metadata?: Record<string, string>;
  audit?: WireAudit;
  needs_more?: boolean;
  request_body_mutation?: WireBodyMutation | null;
  response_body_mutation?: WireBodyMutation | null;
  websocket_decision?: unknown;
}

// ---- Agent replies, validated form -------------------------------------------------------

export type HeaderOp = { op: 'set' | 'add'; name: string; value: string } | { op: 'remove'; name: string };

export type Decision =
  | { kind: 'allow' }
  | { kind: 'block'; status: number; body: string | null; headers: Record<string, string> }
  | { kind: 'redirect'; url: string; status: number }
  | { kind: 'challenge'; challengeType: string; params: Record<string, string> };

/** An agent's verdict on one WebSocket frame (`websocket_decision`). */
export type WebSocketDecision = { kind: 'allow' } | { kind: 'drop' } | { kind: 'close'; code: number; reason: string };

/** undefined = pass through unchanged, 'drop' = empty body, Buffer = replacement bytes */
export type BodyMutation = undefined | 'drop' | Buffer;

export interface AgentReply {
  correlationId: string | undefined;
  decision: Decision;
  requestHeaderOps: HeaderOp[];
  responseHeaderOps: HeaderOp[];
  tags: string[];
  ruleIds: string[];
  reasonCodes: string[];
  confidence: number | undefined;
  needsMore: boolean;
  requestBodyMutation: BodyMutation;
  responseBodyMutation: BodyMutation;
  /** `websocket_decision` (WebSocketFrame events); undefined when the reply has none */
  websocketDecision?: WebSocketDecision;
}

export class ProtocolError extends Error {}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Header values may not carry CR, LF or NUL (response splitting); other controls are rejected too,
// and so is anything outside Latin-1, which Node refuses to write (ERR_INVALID_CHAR): the same
// set as Node's own check, so a value accepted here can always be sent.
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

export function isValidHeaderName(name: string): boolean {
  return TOKEN.test(name);
}
export function isValidHeaderValue(value: string): boolean {
  return !BAD_VALUE.test(value);
}

// A reply's header lists are bounded like a client's header section (nginx's and Node's 8-16 KiB,
// `limits { max-header-count }` 100): a buggy agent's 20,000-header block is a protocol error
// (the filter's failure mode), not a response written as it is.
export const MAX_REPLY_HEADERS = 100;
export const MAX_REPLY_HEADER_BYTES = 64 * 1024;

/** Throws when one list of a reply (block headers, request or response header operations) is too large. */
function checkHeaderBudget(count: number, bytes: number, what: string): void {
  if (count > MAX_REPLY_HEADERS) throw new ProtocolError(`${what}: more than ${MAX_REPLY_HEADERS} headers`);
  if (bytes > MAX_REPLY_HEADER_BYTES) throw new ProtocolError(`${what}: more than ${MAX_REPLY_HEADER_BYTES} bytes of headers`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw new ProtocolError(`${what} must be a list of strings`);
  return v as string[];
}

function headerOps(v: unknown, what: string): HeaderOp[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ProtocolError(`${what} must be a list`);
  let bytes = 0;
  const ops = v.map((raw, i): HeaderOp => {
    if (!isRecord(raw)) throw new ProtocolError(`${what}[${i}] must be an object`);
    const kind = Object.keys(raw)[0];
    const body = kind === undefined ? undefined : raw[kind];
    if (!isRecord(body) || typeof body.name !== 'string' || !isValidHeaderName(body.name)) {
      throw new ProtocolError(`${what}[${i}] needs a valid header name`);
    }
    bytes += body.name.length;
    if (kind === 'remove') return { op: 'remove', name: body.name.toLowerCase() };
    if (kind !== 'set' && kind !== 'add') throw new ProtocolError(`${what}[${i}]: unknown header operation "${kind}"`);
    if (typeof body.value !== 'string' || !isValidHeaderValue(body.value)) throw new ProtocolError(`${what}[${i}] needs a valid header value`);
    bytes += body.value.length;
    return { op: kind, name: body.name.toLowerCase(), value: body.value };
  });
  checkHeaderBudget(ops.length, bytes, what);
  return ops;
}

function decision(v: unknown): Decision {
  if (v === 'allow' || v === undefined) return { kind: 'allow' };
  if (typeof v === 'string') {
    // Unit variants may arrive as bare strings ("block" has fields, so only allow is valid bare).
    throw new ProtocolError(`unknown decision "${v}"`);
  }
  if (!isRecord(v)) throw new ProtocolError('decision must be "allow" or an object');
  const [kind] = Object.keys(v);
  const body = kind === undefined ? undefined : v[kind];
  switch (kind) {
    case 'allow':
      return { kind: 'allow' };
    case 'block': {
      if (!isRecord(body)) throw new ProtocolError('block decision needs an object');
      const status = Number.isInteger(body.status) && (body.status as number) >= 200 && (body.status as number) <= 599 ? (body.status as number) : 403;
      if (body.body !== undefined && body.body !== null && typeof body.body !== 'string') throw new ProtocolError('block body must be a string');
      const headers: Record<string, string> = {};
      if (isRecord(body.headers)) {
        let count = 0;
        let bytes = 0;
        for (const [name, value] of Object.entries(body.headers)) {
          if (!isValidHeaderName(name) || typeof value !== 'string' || !isValidHeaderValue(value)) throw new ProtocolError(`invalid block header "${name}"`);
          headers[name.toLowerCase()] = value;
          count++;
          bytes += name.length + value.length;
        }
        checkHeaderBudget(count, bytes, 'block headers');
      }
      return { kind: 'block', status, body: (body.body as string | null | undefined) ?? null, headers };
    }
    case 'redirect': {
      if (!isRecord(body) || typeof body.url !== 'string' || body.url === '' || !isValidHeaderValue(body.url)) {
        throw new ProtocolError('redirect decision needs a valid url');
      }
      const s = body.status;
      const status = Number.isInteger(s) && (s as number) >= 300 && (s as number) <= 399 ? (s as number) : 302;
      return { kind: 'redirect', url: body.url, status };
    }
    case 'challenge': {
      // challenge_type becomes the X-Sentinel-Challenge header's value
      if (!isRecord(body) || typeof body.challenge_type !== 'string' || !isValidHeaderValue(body.challenge_type)) throw new ProtocolError('challenge decision needs a valid challenge_type');
      const params: Record<string, string> = {};
      if (isRecord(body.params)) for (const [k, p] of Object.entries(body.params)) params[k] = String(p);
      return { kind: 'challenge', challengeType: body.challenge_type, params };
    }
    default:
      throw new ProtocolError(`unknown decision "${kind}"`);
  }
}

function bodyMutation(v: unknown, what: string): BodyMutation {
  if (v === undefined || v === null) return undefined;
  if (!isRecord(v)) throw new ProtocolError(`${what} must be an object`);
  if (v.data === null || v.data === undefined) return undefined;
  // MessagePack agents may send the bytes as bin instead of a base64 string.
  if (Buffer.isBuffer(v.data)) return v.data.length === 0 ? 'drop' : v.data;
  if (typeof v.data !== 'string') throw new ProtocolError(`${what}.data must be base64 or null`);
  if (v.data === '') return 'drop';
  return Buffer.from(v.data, 'base64');
}

/** `"allow"`, `"drop"`, `{"close":{"code","reason"}}` (also `{"allow":{}}` / `{"drop":{}}`). */
function websocketDecision(v: unknown): WebSocketDecision | undefined {
  if (v === undefined || v === null) return undefined;
  const kind = typeof v === 'string' ? v : isRecord(v) ? Object.keys(v)[0] : undefined;
  if (kind === 'allow') return { kind: 'allow' };
  if (kind === 'drop') return { kind: 'drop' };
  if (kind === 'close' && isRecord(v)) {
    const body = v.close;
    const code = isRecord(body) ? body.code : undefined;
    // 1000-4999 minus the codes that must never be sent on the wire (RFC 6455 §7.4)
    const valid = Number.isInteger(code) && (code as number) >= 1000 && (code as number) <= 4999 && ![1004, 1005, 1006, 1015].includes(code as number);
    const reason = isRecord(body) && typeof body.reason === 'string' ? body.reason : '';
    return { kind: 'close', code: valid ? (code as number) : 1008, reason };
  }
  throw new ProtocolError('websocket_decision must be "allow", "drop" or {"close":{"code","reason"}}');
}

/** Validates an AgentResponse JSON value; throws ProtocolError when it is malformed. */
export function parseAgentReply(json: unknown): AgentReply {
  if (!isRecord(json)) throw new ProtocolError('agent response must be a JSON object');
  const audit = isRecord(json.audit) ? json.audit : {};
  const custom = isRecord(audit.custom) ? audit.custom : {};
  const cid = custom.correlation_id ?? json.correlation_id;
  const confidence = typeof audit.confidence === 'number' ? audit.confidence : undefined;
  return {
    correlationId: typeof cid === 'string' ? cid : undefined,
    decision: decision(json.decision),
    requestHeaderOps: headerOps(json.request_headers, 'request_headers'),
    responseHeaderOps: headerOps(json.response_headers, 'response_headers'),
    tags: stringList(audit.tags, 'audit.tags'),
    ruleIds: stringList(audit.rule_ids, 'audit.rule_ids'),
    reasonCodes: stringList(audit.reason_codes, 'audit.reason_codes'),
    confidence,
    needsMore: json.needs_more === true,
    requestBodyMutation: bodyMutation(json.request_body_mutation, 'request_body_mutation'),
    responseBodyMutation: bodyMutation(json.response_body_mutation, 'response_body_mutation'),
    ...(json.websocket_decision !== undefined && json.websocket_decision !== null ? { websocketDecision: websocketDecision(json.websocket_decision) } : {}),
  };
}

/** Node's IncomingHttpHeaders (or the core's HeaderMap) -> the agent form (lower-cased, lists). */
export function toHeaderValues(headers: Record<string, string | string[] | number | undefined>): HeaderValues {
  const out: HeaderValues = {};
  // for-in and a string fast path: no entries array, no per-value map (this runs for every event)
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    const key = name.toLowerCase();
    const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value.map(String) : [String(value)];
    if (key === '__proto__') {
      // a header by that name (a null-prototype header object can hold one) is an own member
      // like any other, not the object's prototype (which JSON would leave out)
      const own = Object.hasOwn(out, key) ? out[key] : undefined;
      Object.defineProperty(out, key, { value: own ? own.concat(list) : list, enumerable: true, writable: true, configurable: true });
      continue;
    }
    const prev = out[key];
    out[key] = prev ? prev.concat(list) : list;
  }
  return out;
}

// ---- The plain "allow" reply, pre-serialised ----------------------------------------------
// Most replies on a busy gateway are an allow with nothing attached. The SDK writes that reply
// from a template (the exact bytes JSON.stringify gives for allow().toWire(id)), and the gateway
// recognises those bytes without JSON.parse and validation. Anything else, e.g. the same reply
// from another agent implementation with other key order or spacing, takes the general path.
const ALLOW_PREFIX_TEXT =
  '{"version":1,"decision":"allow","request_headers":[],"response_headers":[],"routing_metadata":{},"audit":{"tags":[],"rule_ids":[],"confidence":null,"reason_codes":[],"custom":{"correlation_id":"';
const ALLOW_SUFFIX_TEXT = '"}},"needs_more":false,"request_body_mutation":null,"response_body_mutation":null}';
const ALLOW_PREFIX = Buffer.from(ALLOW_PREFIX_TEXT);
const ALLOW_SUFFIX = Buffer.from(ALLOW_SUFFIX_TEXT);
// A correlation id the template can carry as is, one byte per character: printable ASCII without
// a quote or backslash (anything else needs a JSON escape or UTF-8, and takes the general path).
const ASCII_ID = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * The JSON payload of a plain allow for `correlationId`, as a string of one byte per character
 * (the SDK's writer copies it as latin1: no Buffer per reply), or undefined when the id is not
 * printable ASCII without a quote or backslash. The bytes are JSON.stringify's of
 * `allow().toWire(correlationId)`, which is what the general path writes for every other id.
 * `knownPlain`: the id is known to be printable ASCII without a quote or backslash (not checked again).
 */
export function allowReplyText(correlationId: string, knownPlain = false): string | undefined {
  // knownPlain: the caller read the id as such (the SDK's event reader takes only printable ASCII
  // without a quote or backslash), so the check is already done (~0.5k instructions a reply)
  return knownPlain || ASCII_ID.test(correlationId) ? ALLOW_PREFIX_TEXT + correlationId + ALLOW_SUFFIX_TEXT : undefined;
}

/** The correlation id of a JSON payload (`payload[start, stop)`) that is exactly the plain allow template, else undefined. */
export function plainAllowCorrelationId(payload: Buffer, start = 0, stop = payload.length): string | undefined {
  const end = stop - ALLOW_SUFFIX.length;
  const from = start + ALLOW_PREFIX.length;
  if (end < from) return undefined;
  if (ALLOW_PREFIX.compare(payload, start, from) !== 0 || ALLOW_SUFFIX.compare(payload, end, stop) !== 0) return undefined;
  for (let i = from; i < end; i++) {
    const b = payload[i]!;
    if (b === 0x22 || b === 0x5c || b < 0x20) return undefined;
  }
  // toString's own argument and encoding handling is ~1.2k instructions on top of this slice (callgrind)
  return (payload as SlicingBuffer).utf8Slice(from, end);
}

/** Buffer's UTF-8 slice as toString('utf8', start, end) ends up calling it (not in @types/node; the range is checked above). */
type SlicingBuffer = Buffer & { utf8Slice(start: number, end: number): string };

// Shared and frozen: nothing downstream mutates a reply's lists (a mutation would throw, not leak).
const NONE: never[] = [];
Object.freeze(NONE);
const ALLOW: Decision = Object.freeze({ kind: 'allow' });

/** The validated form of a plain allow (what parseAgentReply returns for the template). */
export function plainAllowReply(correlationId: string): AgentReply {
  return {
    correlationId,
    decision: ALLOW,
    requestHeaderOps: NONE,
    responseHeaderOps: NONE,
    tags: NONE,
    ruleIds: NONE,
    reasonCodes: NONE,
    confidence: undefined,
    needsMore: false,
    requestBodyMutation: undefined,
    responseBodyMutation: undefined,
  };
}

// ---- The request_headers event's JSON, hand-written ----------------------------------------
// Every request on an agent route sends one; JSON.stringify of it was the largest named item of
// the hop (~13.5k instructions per event under callgrind, docs/architecture.md "Session 12"). The
// encoder below knows the event's shape and writes the same bytes JSON.stringify writes (keys in
// the order the filter creates them, the same escapes: strings outside printable ASCII go through
// JSON.stringify itself), and reports whether the text is one byte per character, so the frame
// writer can skip the UTF-8 length pass and copy it as latin1.

/** A request's headers as Node gives them (IncomingHttpHeaders): what toHeaderValues turns into the agent form. */
export type RawHeaders = Record<string, string | string[] | number | undefined>;

/**
 * The request_headers event, as a class so the frame writer can recognise it (instanceof) and take
 * the encoder below. It holds the request's headers as Node gave them: the v2 JSON encoder writes
 * them without the agent-form object and lists (`toHeaderValues`), and everyone else sees that
 * form through `headers` (made on first read) and `toJSON()` (the plain event, which JSON.stringify
 * and the MessagePack encoder use). The raw headers are private fields: no spread, `Object.keys`
 * or `for-in` of the message sees them.
 */
export class RequestHeadersMessage implements RequestHeadersEvent {
  readonly #raw: RawHeaders;
  #headers: HeaderValues | undefined = undefined;

  constructor(
    public correlation_id: string,
    public metadata: RequestMetadata,
    public method: string,
    public uri: string,
    rawHeaders: RawHeaders,
  ) {
    this.#raw = rawHeaders;
  }

  /** The agent form (lower-cased names, lists of values). */
  get headers(): HeaderValues {
    return (this.#headers ??= toHeaderValues(this.#raw));
  }

  /** The headers as given to the constructor (read by the encoder; not to be changed). */
  get rawHeaders(): RawHeaders {
    return this.#raw;
  }

  /** The plain event: what goes on the wire, in the reference's member order. */
  toJSON(): RequestHeadersEvent {
    return { correlation_id: this.correlation_id, metadata: this.metadata, method: this.method, uri: this.uri, headers: this.headers };
  }
}

/** A RequestHeadersMessage as its plain event (for transports that copy or walk the event), anything else as it is. */
export function plainEvent(payload: unknown): unknown {
  return payload instanceof RequestHeadersMessage ? payload.toJSON() : payload;
}

/** Whether the last encodeRequestHeadersJson text was printable ASCII only (its UTF-8 length is its length). */
export let lastJsonOneByte = true;

/** Printable ASCII without `"` and `\\`: JSON writes it between quotes as it is (one byte per character). */
function plain(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

const isPlain = (v: unknown): v is string => typeof v === 'string' && plain(v);
const isPlainOrNull = (v: unknown): v is string | null => v === null || (typeof v === 'string' && plain(v));

/** Printable ASCII without `"`, `\\` and upper-case letters: a header name toHeaderValues keeps as it is and JSON writes as it is. */
function plainLower(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c || (c >= 0x41 && c <= 0x5a)) return false;
  }
  return true;
}

/**
 * JSON.stringify(toHeaderValues(raw)) for Node's header object, without building that object: a
 * string value is a one-element list, a list is written as it is, an undefined value is left out;
 * undefined (the caller falls back) for anything else: a name toHeaderValues would lower-case or
 * that JSON would escape, `__proto__`, a value that is not a plain string (a number, non-ASCII).
 */
function rawHeadersJson(raw: RawHeaders): string | undefined {
  let out = '{';
  let first = true;
  let at = 0;
  for (const name in raw) {
    const v = raw[name];
    if (v === undefined) continue;
    if (typeof v === 'string') {
      // the same header as the last request's at this position: its member as written then
      let member = at < SEEN_HEADERS && name === seenNames[at] && v === seenValues[at] ? seenMembers[at] : undefined;
      if (member === undefined) {
        if (!plainLower(name) || name === '__proto__' || !plain(v)) return undefined;
        member = '"' + name + '":["' + v + '"]';
        if (at < SEEN_HEADERS) {
          seenNames[at] = name;
          seenValues[at] = v;
          seenMembers[at] = member;
        }
      }
      out += first ? member : ',' + member;
    } else if (Array.isArray(v)) {
      if (!plainLower(name) || name === '__proto__') return undefined;
      out += first ? '"' + name + '":[' : ',"' + name + '":[';
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        if (!isPlain(x)) return undefined;
        out += i === 0 ? '"' + x + '"' : ',"' + x + '"';
      }
      out += ']';
    } else return undefined;
    first = false;
    at++;
  }
  return out + '}';
}

/**
 * Per position in the header object, the last plain string header written there: its name, its
 * value and its JSON member. A client's requests on a connection (and browsers of one kind) send
 * the same headers in the same order, so most members are reused after two string compares,
 * without the character loops and the four additions (only plain headers are kept, so a header
 * equal to a kept one is plain too).
 */
const SEEN_HEADERS = 32;
const seenNames: string[] = [];
const seenValues: string[] = [];
const seenMembers: string[] = [];

/**
 * The last client address and timestamp found plain: a connection's requests share one address
 * string and requests of one millisecond one timestamp string (src/server/context.ts), so a string
 * equal to the last one is known plain without its character loop.
 */
class LastPlain {
  private last: string | undefined;
  /** Whether `v` is a plain string (isPlain), remembering the last one found plain. */
  check(v: unknown): boolean {
    if (v === this.last && v !== undefined) return true;
    if (!isPlain(v)) return false;
    this.last = v;
    return true;
  }
}
const clientIpPlain = new LastPlain();
const timestampPlain = new LastPlain();

/** The last route fragment written, and the members it was written from (compared with ===). */
let fragServerName: string | null | undefined;
let fragProtocol: string | undefined;
let fragTlsVersion: string | null | undefined;
let fragTlsCipher: string | null | undefined;
let fragRouteId: string | null | undefined;
let fragUpstreamId: string | null | undefined;
let fragment = '';

/**
 * `,"server_name":…,"upstream_id":…` of the event: the same for every request of a route and
 * host, so the last one is kept and reused while its six members are equal (six string compares
 * instead of ~12 string additions and six plain checks per event, and a shallower string to
 * flatten). The members are plain-checked when a fragment is made (only plain ones are kept, so
 * members equal to the kept ones are plain too); undefined when one is not (the caller falls
 * back). The bytes are the ones the additions would give.
 */
function routeFragment(m: RequestMetadata): string | undefined {
  if (
    m.server_name === fragServerName &&
    m.protocol === fragProtocol &&
    m.tls_version === fragTlsVersion &&
    m.tls_cipher === fragTlsCipher &&
    m.route_id === fragRouteId &&
    m.upstream_id === fragUpstreamId
  )
    return fragment;
  if (!(isPlainOrNull(m.server_name) && isPlain(m.protocol) && isPlainOrNull(m.tls_version) && isPlainOrNull(m.tls_cipher) && isPlainOrNull(m.route_id) && isPlainOrNull(m.upstream_id))) return undefined;
  fragServerName = m.server_name;
  fragProtocol = m.protocol;
  fragTlsVersion = m.tls_version;
  fragTlsCipher = m.tls_cipher;
  fragRouteId = m.route_id;
  fragUpstreamId = m.upstream_id;
  fragment = flatten(
    (m.server_name === null ? ',"server_name":null' : ',"server_name":"' + m.server_name + '"') +
      ',"protocol":"' +
      m.protocol +
      (m.tls_version === null ? '","tls_version":null' : '","tls_version":"' + m.tls_version + '"') +
      (m.tls_cipher === null ? ',"tls_cipher":null' : ',"tls_cipher":"' + m.tls_cipher + '"') +
      (m.route_id === null ? ',"route_id":null' : ',"route_id":"' + m.route_id + '"') +
      (m.upstream_id === null ? ',"upstream_id":null' : ',"upstream_id":"' + m.upstream_id + '"'),
  );
  return fragment;
}

/** A flat copy of a concatenated printable-ASCII string (kept across requests: one sequential string, not a tree of its parts). */
function flatten(s: string): string {
  return Buffer.from(s, 'latin1').toString('latin1');
}

/**
 * JSON.stringify(e), written by hand: when every member has the type the filter gives it and every
 * string is printable ASCII without quotes or backslashes (the usual event), one concatenation of
 * the members in the filter's order, the quotes inside the literals (no helper and no quoting
 * string per member: both cost as much as JSON.stringify saved, docs/architecture.md "Session 12"
 * and "Session 13"); anything else, e.g. a header value with a quote or a non-ASCII character, the
 * client-certificate members, is JSON.stringify's. Sets lastJsonOneByte.
 */
export function encodeRequestHeadersJson(e: RequestHeadersMessage): string {
  const m = e.metadata as RequestMetadata | null | undefined;
  const h: unknown = e.rawHeaders;
  const headers =
    isPlain(e.correlation_id) &&
    isPlain(e.method) &&
    isPlain(e.uri) &&
    typeof m === 'object' &&
    m !== null &&
    Object.getPrototypeOf(m) === Object.prototype &&
    // the correlation id is usually the request id, the same string: checked once
    (m.correlation_id === e.correlation_id || isPlain(m.correlation_id)) &&
    (m.request_id === e.correlation_id || isPlain(m.request_id)) &&
    clientIpPlain.check(m.client_ip) &&
    Number.isFinite(m.client_port) &&
    timestampPlain.check(m.timestamp) &&
    isPlainOrNull(m.traceparent) &&
    m.client_cert_subject === undefined &&
    typeof h === 'object' &&
    h !== null
      ? rawHeadersJson(h as RawHeaders)
      : undefined;
  const route = headers === undefined ? undefined : routeFragment(m!);
  if (route === undefined) {
    lastJsonOneByte = false;
    return JSON.stringify(e);
  }
  lastJsonOneByte = true;
  return (
    '{"correlation_id":"' +
    e.correlation_id +
    '","metadata":{"correlation_id":"' +
    m!.correlation_id +
    '","request_id":"' +
    m!.request_id +
    '","client_ip":"' +
    m!.client_ip +
    '","client_port":' +
    String(m!.client_port) +
    route +
    ',"timestamp":"' +
    m!.timestamp +
    (m!.traceparent === null ? '","traceparent":null},"method":"' : '","traceparent":"' + m!.traceparent + '"},"method":"') +
    e.method +
    '","uri":"' +
    e.uri +
    '","headers":' +
    headers +
    '}'
  );
}
