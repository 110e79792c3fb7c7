// Correlation ids (sentinel-reference.md §3.4): reuse X-Trace-Id / X-Correlation-Id /
// X-Request-Id, else generate a TinyFlake (11 Base58 chars) or a UUID v4.
import { randomBytes, randomFillSync, randomUUID } from 'node:crypto';

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const INCOMING = ['x-trace-id', 'x-correlation-id', 'x-request-id'] as const;

/** 3 chars of (unix seconds mod 58^3) then 8 chars of 48 random bits, left-padded with '1'. */
export function tinyflake(nowMs = Date.now(), random: Buffer = randomBytes(6)): string {
  const secs = Math.floor(nowMs / 1000) % 195112;
  const rnd = random.readUIntBE(0, 6);
  return encode(secs, 3) + encode(rnd, 8);
  function encode(n: number, width: number): string {
    let s = '';
    while (n > 0) {
      s = BASE58[n % 58]! + s;
      n = Math.floor(n / 58);
    }
    if (s.length > width) s = s.slice(-width);
    return s.padStart(width, '1');
  }

}

// Generated TinyFlakes, per request: the 3 time characters are cached for the second, the 8
// random ones are a slice of a pooled Base58 text (256 ids' worth of random bytes per crypto call,
// encoded once per refill), so an id is one slice and one concatenation. `tinyflake()` above built
// each id from 13 string concatenations: with the correlation id a TinyFlake whether tracing is on
// or off, that was ~1,300 instructions a request (docs/tracing.md "Session 12").
const FLAKES = 256;
const BASE58_CODES = Uint8Array.from(BASE58, (c) => c.charCodeAt(0));
const flakeBytes = Buffer.allocUnsafeSlow(6 * FLAKES);
const flakeWords = new DataView(flakeBytes.buffer, flakeBytes.byteOffset, flakeBytes.length);
const flakeAscii = Buffer.allocUnsafeSlow(8 * FLAKES);
let flakeText = '';
let flakeNext = FLAKES;
let flakeSecs = -1;
let flakePrefix = '';
const ZERO6 = Buffer.alloc(6);

/**
 * The 8 random characters of a TinyFlake for each 6 bytes of `bytes` (big-endian 48 bits, as
 * `tinyflake(now, random)` reads them), written to `out` at 8 bytes per id. Exported for the tests.
 */
export function base58Randoms(bytes: DataView, count: number, out: Uint8Array): void {
  for (let i = 0; i < count; i++) {
    let n = bytes.getUint16(6 * i) * 0x100000000 + bytes.getUint32(6 * i + 2);
    for (let d = 7; d >= 0; d--) {
      const q = Math.floor(n / 58);
      out[8 * i + d] = BASE58_CODES[n - q * 58]!;
      n = q;
    }
  }
}

/** A TinyFlake for `nowMs`: the same format and distribution as `tinyflake(nowMs, randomBytes(6))`. */
export function nextTinyflake(nowMs: number): string {
  const secs = Math.floor(nowMs / 1000) % 195112;
  if (secs !== flakeSecs) {
    flakePrefix = tinyflake(secs * 1000, ZERO6).slice(0, 3);
    flakeSecs = secs;
  }
  if (flakeNext === FLAKES) {
    randomFillSync(flakeBytes);
    base58Randoms(flakeWords, FLAKES, flakeAscii);
    flakeText = flakeAscii.toString('latin1');
    flakeNext = 0;
  }
  const at = 8 * flakeNext++;
  return flakePrefix + flakeText.slice(at, at + 8);
}

export type TraceIdFormat = 'tinyflake' | 'uuid';

export function traceIdFormat(v: string | undefined): TraceIdFormat {
  const s = (v ?? '').toLowerCase();
  return s === 'uuid' || s === 'uuid4' || s === 'uuidv4' ? 'uuid' : 'tinyflake';
}

const MAX_INCOMING_ID = 128;
// Printable ASCII except '#': agent filters derive `<id>#2`, `<id>#3` for a second filter of the
// same agent (plugins/agents/filter.ts), so a client id with '#' could collide with another
// request's derived id. Such ids are replaced by a generated one.
const SAFE_ID = /^[\x21-\x22\x24-\x7e]+$/;

/** The first usable id the client sent (X-Trace-Id, X-Correlation-Id, X-Request-Id), if any. */
export function incomingTraceId(headers: Record<string, string | string[] | undefined>): string | undefined {
  for (const name of INCOMING) {
    const v = headers[name];
    const s = Array.isArray(v) ? v[0] : v;
    // Only reuse ids that are safe to echo into headers and logs.
    if (s && s.length <= MAX_INCOMING_ID && SAFE_ID.test(s)) return s;
  }
  return undefined;
}

export function pickTraceId(headers: Record<string, string | string[] | undefined>, format: TraceIdFormat): string {
  return incomingTraceId(headers) ?? (format === 'uuid' ? randomUUID() : nextTinyflake(Date.now()));
}
