// The request_headers event's JSON, read by hand on the agent's side (the SDK): every event the
// gateway sends is parsed by the agent, and JSON.parse of the ~400-byte event was ~17k of the SDK
// allow-all agent's ~42k instructions per event (docs/agents.md "Hop cost, session 16"). The
// gateway writes the event in one fixed layout (messages.ts encodeRequestHeadersJson: the members
// in one order, no whitespace, strings without escapes); this reader knows that layout and builds
// the object JSON.parse would build, with the keys from literals (no key scanning or string-table
// lookups) and the values sliced from the text. Anything else (another member order or member,
// whitespace, an escape, a number that is not a small integer, `__proto__`) is not read here: the
// caller falls back to JSON.parse, so what the SDK hands a handler never depends on which path read it.
import type { RequestHeadersEvent } from './messages.ts';

/**
 * A literal of the layout (the keys and punctuation between values) as little-endian 32-bit words
 * and the bytes after the last whole word: `take` compares four bytes a step (~300 literal bytes an
 * event; byte by byte was ~5k instructions of the SDK agent's ~45k an event, callgrind).
 */
interface Literal {
  /** bytes compared: `length >> 2` words from `words`, then `length & 3` bytes from `tail` */
  readonly length: number;
  readonly words: Int32Array;
  readonly tail: Uint8Array;
}

function lit(text: string): Literal {
  const bytes = Uint8Array.from(text, (ch) => ch.charCodeAt(0));
  const whole = bytes.length >> 2;
  const view = new DataView(bytes.buffer);
  const words = Int32Array.from({ length: whole }, (_, i) => view.getInt32(i * 4, true));
  return { length: bytes.length, words, tail: bytes.subarray(whole * 4) };
}

const L = {
  head: lit('{"correlation_id":'),
  metadata: lit(',"metadata":{"correlation_id":'),
  requestId: lit(',"request_id":'),
  clientIp: lit(',"client_ip":'),
  clientPort: lit(',"client_port":'),
  serverName: lit(',"server_name":'),
  protocol: lit(',"protocol":'),
  tlsVersion: lit(',"tls_version":'),
  tlsCipher: lit(',"tls_cipher":'),
  routeId: lit(',"route_id":'),
  upstreamId: lit(',"upstream_id":'),
  timestamp: lit(',"timestamp":'),
  traceparent: lit(',"traceparent":'),
  method: lit('},"method":'),
  uri: lit(',"uri":'),
  headers: lit(',"headers":{'),
  nameEnd: lit(':['),
  null: lit('null'),
};

// One decode at a time (the reader never yields): the payload's bytes, its text (latin1, one
// character per byte: the reader only takes ASCII, where that is the UTF-8 text), where the payload
// starts in both, and the read position in the bytes.
let b: Uint8Array = new Uint8Array(0);
/** `b` as a DataView from its first byte (made once per ArrayBuffer region, see viewOf) */
let v: DataView = new DataView(new ArrayBuffer(0));
let text = '';
let base = 0;
let end = 0;
let at = 0;

/**
 * The bytes continue with `l` at `at`: step over it. Bytes, not the text's characters: a typed
 * array's loads are a few instructions each, charCodeAt on a string ~20 (callgrind).
 */
function take(l: Literal): boolean {
  // locals: module bindings are reloaded (and hole-checked) on every use inside a loop
  const from = at;
  if (from + l.length > end) return false;
  const view = v;
  const words = l.words;
  const whole = l.length >> 2;
  let o = from;
  for (let i = 0; i < whole; i++, o += 4) if (view.getInt32(o, true) !== words[i]) return false;
  const bytes = b;
  const tail = l.tail;
  const rest = l.length & 3;
  for (let i = 0; i < rest; i++) if (bytes[o + i] !== tail[i]) return false;
  at = from + l.length;
  return true;
}

/**
 * A member's string from an earlier event, as the literal of its quoted bytes: most members of
 * one gateway's events repeat from event to event (client address, server name, protocol, route,
 * upstream, the millisecond's timestamp, method, path, the header names and values), and a string
 * whose bytes equal the kept ones is the kept string (no scan, no new string). `text` undefined:
 * nothing kept.
 */
interface Kept {
  length: number;
  readonly words: Int32Array;
  readonly tail: Uint8Array;
  text: string | undefined;
}

/** Longest quoted string kept (quotes included): ids and cookies past it are read each time. */
const KEPT_BYTES = 64;
const keptSlot = (): Kept => ({ length: 0, words: new Int32Array(KEPT_BYTES >> 2), tail: new Uint8Array(3), text: undefined });

/** The string value at `at` (`any`: or null or a number, as value() reads them), the kept one when its bytes are there. */
function cached(k: Kept, any: boolean): string | number | null | undefined {
  if (k.text !== undefined && take(k)) return k.text;
  const r = any ? value() : quoted();
  if (typeof r === 'string') keep(k, r);
  return r;
}

/** Keeps the string str() just read (its bytes at lastFrom, with the quotes around them). */
function keep(k: Kept, text: string): void {
  k.text = keepBytes(k, lastFrom - 1, lastLength + 2) ? text : undefined;
}

/** Copies `length` bytes at `from` into k's literal; false (nothing kept) when they do not fit. */
function keepBytes(k: { length: number; readonly words: Int32Array; readonly tail: Uint8Array }, from: number, length: number): boolean {
  const words = k.words;
  if (length > words.length * 4) return false;
  const view = v;
  const whole = length >> 2;
  for (let i = 0; i < whole; i++) words[i] = view.getInt32(from + i * 4, true);
  const bytes = b;
  const tail = k.tail;
  const rest = length & 3;
  for (let i = 0; i < rest; i++) tail[i] = bytes[from + whole * 4 + i]!;
  k.length = length;
  return true;
}

type Value = string | number | null;

/** The members a route's events share (server name to upstream), read together. */
interface RouteMembers {
  readonly serverName: Value;
  readonly protocol: Value;
  readonly tlsVersion: Value;
  readonly tlsCipher: Value;
  readonly routeId: Value;
  readonly upstreamId: Value;
}

/**
 * The bytes from `,"server_name":` to `,"timestamp":` of the last event read (the gateway writes
 * them from one fragment per route, messages.ts routeFragment) and their members: equal bytes are
 * taken in one compare instead of six literals and six values.
 */
const route = { length: 0, words: new Int32Array(64), tail: new Uint8Array(3), members: undefined as RouteMembers | undefined };

function routeMembers(): RouteMembers | undefined {
  const kept = route.members;
  if (kept !== undefined && take(route)) return kept;
  const from = at;
  if (!take(L.serverName)) return undefined;
  const serverName = cached(K.serverName, true);
  if (serverName === undefined || !take(L.protocol)) return undefined;
  const protocol = cached(K.protocol, true);
  if (protocol === undefined || !take(L.tlsVersion)) return undefined;
  const tlsVersion = cached(K.tlsVersion, true);
  if (tlsVersion === undefined || !take(L.tlsCipher)) return undefined;
  const tlsCipher = cached(K.tlsCipher, true);
  if (tlsCipher === undefined || !take(L.routeId)) return undefined;
  const routeId = cached(K.routeId, true);
  if (routeId === undefined || !take(L.upstreamId)) return undefined;
  const upstreamId = cached(K.upstreamId, true);
  if (upstreamId === undefined || !take(L.timestamp)) return undefined;
  const members = { serverName, protocol, tlsVersion, tlsCipher, routeId, upstreamId };
  route.members = keepBytes(route, from, at - from) ? members : undefined;
  return members;
}

// the kept strings by member, and by header position (a name and its first value)
const K = {
  clientIp: keptSlot(),
  serverName: keptSlot(),
  protocol: keptSlot(),
  tlsVersion: keptSlot(),
  tlsCipher: keptSlot(),
  routeId: keptSlot(),
  upstreamId: keptSlot(),
  timestamp: keptSlot(),
  method: keptSlot(),
  uri: keptSlot(),
};
const KEPT_HEADERS = 16;
const keptNames = Array.from({ length: KEPT_HEADERS }, keptSlot);
const keptValues = Array.from({ length: KEPT_HEADERS }, keptSlot);

/**
 * A string whose opening quote is at `at`: its characters up to the closing quote; undefined when
 * it holds an escape, a control character or a non-ASCII byte (JSON.parse's business: escapes to
 * decode, UTF-8 to decode, or an error to raise) or has no closing quote.
 */
function str(): string | undefined {
  const bytes = b;
  const stop = end;
  const from = at + 1;
  for (let i = from; i < stop; i++) {
    const c = bytes[i]!;
    if (c === 0x22) {
      at = i + 1;
      lastFrom = from;
      lastLength = i - from;
      return text.slice(from - base, i - base);
    }
    if (c < 0x20 || c === 0x5c || c > 0x7e) return undefined;
  }
  return undefined;
}

/** Where the last string str() took starts in the bytes (after its quote), and its length. */
let lastFrom = 0;
let lastLength = 0;

/**
 * `value()` for a member that usually repeats the string `prev` (the correlation id is written
 * three times: correlation_id, metadata.correlation_id, request_id): when the quoted string at
 * `at` has prev's bytes (at `from`, `length` of them), prev itself, compared four bytes a step and
 * without a scan or a new string; anything else is read by `value()`. The bytes at `from` passed
 * str()'s checks, so equal bytes are a string str() would have taken and JSON.parse gives as prev.
 */
function again(prev: string | number | null, from: number, length: number): string | number | null | undefined {
  const start = at + 1;
  if (typeof prev !== 'string' || start + length >= end || b[at] !== 0x22 || b[start + length] !== 0x22) return value();
  const view = v;
  let i = 0;
  for (; i + 4 <= length; i += 4) if (view.getInt32(from + i, true) !== view.getInt32(start + i, true)) return value();
  const bytes = b;
  for (; i < length; i++) if (bytes[from + i] !== bytes[start + i]) return value();
  at = start + length + 1;
  return prev;
}

/**
 * One member value at `at`: a string, null, or a non-negative integer of at most 15 digits
 * without a leading zero (exact as a double, and what JSON.parse reads); undefined for anything
 * else. What follows the value is checked by the next literal, so `01`, `1.5` or `1e3` fail there.
 */
function value(): Value | undefined {
  if (at >= end) return undefined;
  const c = b[at]!;
  if (c === 0x22) return str();
  if (c === 0x6e) return take(L.null) ? null : undefined;
  if (c === 0x30) {
    at++;
    return 0;
  }
  if (c < 0x31 || c > 0x39) return undefined;
  const from = at;
  let n = 0;
  let i = at;
  for (let d = c; d >= 0x30 && d <= 0x39 && i < end; d = b[++i]!) n = n * 10 + (d - 0x30);
  at = i;
  return i - from > 15 ? undefined : n;
}

/** A string value at `at` (for header names and values); undefined for anything else. */
function quoted(): string | undefined {
  return at < end && b[at] === 0x22 ? str() : undefined;
}

/**
 * JSON.parse of a request_headers payload (`payload[start, stop)`, UTF-8) in the gateway's layout;
 * undefined when it is not in that layout (then JSON.parse decides: another layout, non-ASCII
 * text, or not JSON). When it returns an object, that object has the members, member order,
 * values and prototypes JSON.parse gives, and every string in it is printable ASCII without a
 * quote or backslash (the only strings this reader takes).
 */
export function decodeRequestHeadersJson(payload: Uint8Array, start: number, stop: number): RequestHeadersEvent | undefined {
  b = payload;
  v = viewOf(payload);
  base = start;
  end = stop;
  at = start;
  if (!take(L.head)) return undefined;
  text = (payload as SlicingBuffer).latin1Slice(start, stop);
  const event = read();
  // nothing of this payload is kept past the call (but the view, until the next chunk: viewOf)
  b = EMPTY;
  text = '';
  return event;
}

const EMPTY = new Uint8Array(0);

// The last view made: the SDK's reads of one chunk (and its frames) share it, so a DataView is
// made per read rather than per event. It holds the chunk's memory until the next read's view.
let viewed: Uint8Array = EMPTY;
let viewedAs: DataView = new DataView(EMPTY.buffer);

function viewOf(payload: Uint8Array): DataView {
  if (payload !== viewed) {
    viewed = payload;
    viewedAs = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  }
  return viewedAs;
}

function read(): RequestHeadersEvent | undefined {
  const correlationId = value();
  const idFrom = lastFrom;
  const idLength = lastLength;
  if (correlationId === undefined || !take(L.metadata)) return undefined;
  const metaCorrelationId = again(correlationId, idFrom, idLength);
  if (metaCorrelationId === undefined || !take(L.requestId)) return undefined;
  const requestId = again(correlationId, idFrom, idLength);
  if (requestId === undefined || !take(L.clientIp)) return undefined;
  const clientIp = cached(K.clientIp, true);
  if (clientIp === undefined || !take(L.clientPort)) return undefined;
  const clientPort = value();
  if (clientPort === undefined) return undefined;
  const r = routeMembers();
  if (r === undefined) return undefined;
  const timestamp = cached(K.timestamp, true);
  if (timestamp === undefined || !take(L.traceparent)) return undefined;
  const traceparent = value();
  if (traceparent === undefined || !take(L.method)) return undefined;
  const method = cached(K.method, true);
  if (method === undefined || !take(L.uri)) return undefined;
  const uri = cached(K.uri, true);
  if (uri === undefined || !take(L.headers)) return undefined;
  const headers: Record<string, string[]> = {};
  if (at < end && b[at] === 0x7d) at++;
  else
    for (let position = 0; ; position++) {
      const kept = position < KEPT_HEADERS;
      const name = kept ? (cached(keptNames[position]!, false) as string | undefined) : quoted();
      // `__proto__` would set the prototype by assignment; JSON.parse makes it an own member
      if (name === undefined || name === '__proto__' || !take(L.nameEnd)) return undefined;
      const list: string[] = [];
      if (at < end && b[at] === 0x5d) at++;
      else
        for (let first = kept; ; first = false) {
          const v = first ? (cached(keptValues[position]!, false) as string | undefined) : quoted();
          if (v === undefined || at >= end) return undefined;
          list.push(v);
          const c = b[at++];
          if (c === 0x5d) break;
          if (c !== 0x2c) return undefined;
        }
      // a repeated name: the last list wins, in the first one's place (as JSON.parse does)
      headers[name] = list;
      if (at >= end) return undefined;
      const c = b[at++];
      if (c === 0x7d) break;
      if (c !== 0x2c) return undefined;
    }
  if (at !== end - 1 || b[at] !== 0x7d) return undefined;
  // Built as literals in JSON.parse's member order; the types are whatever the text held (the
  // SDK's handlers get what JSON.parse would have given them, checked or not).
  return {
    correlation_id: correlationId,
    metadata: {
      correlation_id: metaCorrelationId,
      request_id: requestId,
      client_ip: clientIp,
      client_port: clientPort,
      server_name: r.serverName,
      protocol: r.protocol,
      tls_version: r.tlsVersion,
      tls_cipher: r.tlsCipher,
      route_id: r.routeId,
      upstream_id: r.upstreamId,
      timestamp,
      traceparent,
    },
    method,
    uri,
    headers,
  } as unknown as RequestHeadersEvent;
}

/** Buffer's latin1 slice as toString('latin1', start, end) ends up calling it (not in @types/node; the range is the frame's). */
type SlicingBuffer = Uint8Array & { latin1Slice(start: number, end: number): string };

/**
 * Whether the last `parseRequestHeadersPayload` read its payload by hand, i.e. every string of the
 * event it returned is printable ASCII without a quote or backslash (the SDK then writes the plain
 * allow for its correlation id without checking the id again).
 */
export let lastPayloadPlain = false;

/**
 * A request_headers frame's JSON payload (`payload[start, end)`), as parseJsonPayload gives it:
 * the gateway's layout read by hand, anything else by JSON.parse; undefined when it is not JSON.
 */
export function parseRequestHeadersPayload(payload: Buffer, start: number, end: number): unknown {
  const event = decodeRequestHeadersJson(payload, start, end);
  lastPayloadPlain = event !== undefined;
  if (event !== undefined) return event;
  try {
    return JSON.parse(payload.toString('utf8', start, end));
  } catch {
    return undefined;
  }
}
