// Correlation ids (sentinel-reference.md §3.4): reuse X-Trace-Id / X-Correlation-Id /
// X-Request-Id, else generate a TinyFlake (11 Base58 chars) or a UUID v4.
import { randomBytes, randomUUID } from 'node:crypto';

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

// Ids are generated in batches of random bytes: one crypto call per 256 ids on the hot path.
let pool = Buffer.alloc(0);
let poolOffset = 0;
function nextRandom6(): Buffer {
  if (poolOffset + 6 > pool.length) {
    pool = randomBytes(6 * 256);
    poolOffset = 0;
  }
  const b = pool.subarray(poolOffset, poolOffset + 6);
  poolOffset += 6;
  return b;
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
  return incomingTraceId(headers) ?? (format === 'uuid' ? randomUUID() : tinyflake(Date.now(), nextRandom6()));
}
