// W3C Trace Context for the tracing plugin (docs/tracing.md "Propagation", "Sampling"): reading a
// client's `traceparent`, random trace and span ids, and the parent-based ratio sampling decision.
// Pure and allocation-light: this runs on every request while tracing is on, sampled or not
// (table-tested in test/unit/tracing/trace-context.test.ts).
import { randomFillSync } from 'node:crypto';

/** The client's `traceparent`, when it is valid. */
export interface RemoteParent {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

const ZERO = 48; // '0'

/** Whether `s[from, to)` is lowercase hex (W3C: "lowercase hex") and not all zeros. */
function hexNotZero(s: string, from: number, to: number): boolean {
  let nonZero = false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === ZERO) continue;
    if (!((c > ZERO && c <= 57) || (c >= 97 && c <= 102))) return false;
    nonZero = true;
  }
  return nonZero;
}

function isHex(s: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= ZERO && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

/**
 * A `traceparent` header as W3C Trace Context level 1 reads it: `vv-<32 hex>-<16 hex>-ff`, version
 * `ff` invalid, version `00` exactly 55 characters, a later version possibly longer (its extra
 * fields after a `-` are ignored), all-zero ids invalid. Anything else (several headers joined
 * with a comma included) is no parent: a new trace starts.
 */
export function parseTraceparent(header: string | string[] | undefined): RemoteParent | undefined {
  if (typeof header !== 'string') return undefined;
  const v = header.trim();
  if (v.length < 55 || v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return undefined;
  if (!isHex(v, 0, 2) || v.startsWith('ff')) return undefined;
  if (v.length > 55 && (v.startsWith('00') || v.charCodeAt(55) !== 45)) return undefined;
  if (!hexNotZero(v, 3, 35) || !hexNotZero(v, 36, 52) || !isHex(v, 53, 55)) return undefined;
  const flags = parseInt(v.slice(53, 55), 16);
  return { traceId: v.slice(3, 35), spanId: v.slice(36, 52), sampled: (flags & 1) === 1 };
}

/** `00-<trace id>-<span id>-<01|00>` */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

// Ids come from a pool of random bytes and its hex text: a span id is a slice of that text (V8
// keeps a slice of 13 characters or more as a view, no copy), a trace id's sampling words are read
// from the same bytes. Building ids from Math.random words cost a dozen string concatenations
// each (and the garbage collector then copies those rope pieces); a pool refill is one
// randomFillSync and one hex conversion for 128 trace ids' worth.
// The words and the all-zero checks read the bytes through a DataView, which TurboFan inlines:
// Buffer#readUInt32BE validates its offset through a wrapped validator call each time, and
// comparing a sliced id with a zero string went through V8's runtime (String::SlowEquals); both
// showed in a perf profile of the unsampled path (docs/tracing.md "Session 10").
const POOL_BYTES = 2048;
const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
const words = new DataView(pool.buffer, pool.byteOffset, POOL_BYTES);
let poolHex = '';
let poolOffset = POOL_BYTES;

/** The offset of `n` fresh random bytes in `pool` (their hex is poolHex at twice the offset). */
function take(n: number): number {
  if (poolOffset + n > POOL_BYTES) {
    randomFillSync(pool);
    poolHex = pool.toString('hex');
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += n;
  return at;
}

/** where the last newSpanId() came from in `pool` (read back by lastSpanIdHi/Lo before the next take) */
let lastSpanAt = 0;

/** A random span id: 16 hex digits, never all zeros. */
export function newSpanId(): string {
  for (;;) {
    const at = take(8);
    if ((words.getUint32(at) | words.getUint32(at + 4)) !== 0) {
      lastSpanAt = at;
      return poolHex.slice(at * 2, at * 2 + 16);
    }
  }
}

// Ids as numbers for the protobuf encoder, so it writes bytes instead of decoding hex (decoding the
// ids of a sampled request's three spans from their sliced hex strings was ~7,400 instructions,
// the encoder's largest item: docs/tracing.md "Session 17"). An 8-byte id is three small integers,
// its bytes 0-2 and 3-5 (24 bits each) and 6-7 (16 bits): V8 keeps small integers in the object
// itself, where two 32-bit words would each be a heap number.

/** An 8-byte id's first part (bytes 0-2) from its two big-endian 32-bit words. */
export function idPartA(hi: number): number {
  return hi >>> 8;
}
/** bytes 3-5 */
export function idPartB(hi: number, lo: number): number {
  return ((hi & 0xff) << 16) | (lo >>> 16);
}
/** bytes 6-7 */
export function idPartC(lo: number): number {
  return lo & 0xffff;
}

/** The big-endian words of the span id the last newSpanId() returned. */
export function lastSpanIdHi(): number {
  return words.getUint32(lastSpanAt);
}
export function lastSpanIdLo(): number {
  return words.getUint32(lastSpanAt + 4);
}

/** A trace id as six parts (bytes 0-7 as a, b, c; 8-15 as d, e, f). */
export class TraceIdParts {
  constructor(
    readonly a: number,
    readonly b: number,
    readonly c: number,
    readonly d: number,
    readonly e: number,
    readonly f: number,
  ) {}
  static ofWords(w0: number, w1: number, w2: number, w3: number): TraceIdParts {
    return new TraceIdParts(idPartA(w0), idPartB(w0, w1), idPartC(w1), idPartA(w2), idPartB(w2, w3), idPartC(w3));
  }
  /** from 32 hex digits (validated: a client's traceparent) */
  static ofHex(hex: string): TraceIdParts {
    return TraceIdParts.ofWords(hexWord(hex, 0), hexWord(hex, 8), hexWord(hex, 16), hexWord(hex, 24));
  }
}

/** Eight hex digits of `hex` from `from` as a 32-bit number (validated hex). */
export function hexWord(hex: string, from: number): number {
  return parseInt(hex.slice(from, from + 8), 16);
}

// Root ids: a request without a parent gets its trace id and its own span id as the text of the
// unsampled `traceparent`, `00-<trace id>-<span id>-00`, one entry of a pool text built 64 entries
// at a time (the hex written into a template whose dashes never change, then one latin1 string).
// The header the upstream gets is then a slice of that text, and the two ids are slices of the
// slice, taken only when something reads them (the access log): formatting the header per request
// was a template string of 55 characters, a cons string that the header-value check flattened
// again (docs/tracing.md "Session 12").
// The hex is written four digits at a time: each random 32-bit word gives eight digits, its low
// and its high nibbles (`r & 0x0f0f0f0f`, `r >>> 4 & 0x0f0f0f0f`, one nibble per byte lane),
// turned into ASCII in the lanes at once and stored as one little-endian word. A digit per table
// byte (two loads and two stores a byte) was the larger part of the unsampled path's own cost
// (docs/tracing.md "Session 13").
// The random words are drawn for 16 texts at once: one randomFillSync costs ~15,000 instructions
// whatever its size (Node's job object, OpenSSL's DRBG call) plus ~3 a byte, so filling 1,536
// bytes per text was ~300 instructions a request; 24 KiB per 1,024 roots is ~90 (docs/tracing.md
// "Session 19"). The text stays 64 entries: it lives until its last slice is dropped, and a
// larger one would outlive a scavenge and be promoted.
const ROOT_LEN = 55;
const ROOT_WORDS = 6; // 4 trace id + 2 span id random words
const ROOTS = 64;
const RANDOM_WORDS = 16 * ROOTS * ROOT_WORDS;
const rootBytes = Buffer.allocUnsafeSlow(RANDOM_WORDS * 4);
/** the random words (allocUnsafeSlow: its own ArrayBuffer, offset 0, so aligned) */
const rootRandom = new Uint32Array(rootBytes.buffer, rootBytes.byteOffset, RANDOM_WORDS);
/** where the current text's entry 0 has its words in rootRandom (the first refill draws) */
let rootBase = RANDOM_WORDS - ROOTS * ROOT_WORDS;
const rootAscii = Buffer.alloc(ROOTS * ROOT_LEN);
const rootOut = new DataView(rootAscii.buffer, rootAscii.byteOffset, ROOTS * ROOT_LEN);
for (let r = 0; r < ROOTS; r++) rootAscii.write('00-', r * ROOT_LEN, 'latin1');
for (let r = 0; r < ROOTS; r++) rootAscii.write('-', r * ROOT_LEN + 35, 'latin1');
for (let r = 0; r < ROOTS; r++) rootAscii.write('-00', r * ROOT_LEN + 52, 'latin1');
let rootText = '';
let rootNext = ROOTS;

/**
 * Four nibbles, one per byte lane (each 0..15), as the four lowercase hex digits in the same lanes:
 * `'0' + n`, plus 39 more (`'a' - '0' - 10`) where n >= 10. No lane carries into the next.
 */
export function hexLanes(x: number): number {
  return x + 0x30303030 + (((x + 0x06060606) >>> 4) & 0x01010101) * 39;
}

/** The 16-bit value of four nibble lanes read as hex digits in lane order (lane 0 first). */
function nibbleValue(x: number): number {
  return ((x & 0xf) << 12) | (((x >>> 8) & 0xf) << 8) | (((x >>> 16) & 0xf) << 4) | ((x >>> 24) & 0xf);
}

function refillRoots(): void {
  rootBase += ROOTS * ROOT_WORDS;
  if (rootBase === RANDOM_WORDS) {
    randomFillSync(rootBytes);
    rootBase = 0;
  }
  // Written out word by word rather than in two loops over t: TurboFan did not unroll those, and
  // the constant offsets took a refill from ~26,000 to ~16,000 instructions (docs/tracing.md
  // "Session 19"). Trace id: digits 3..34, word t's low nibbles then its high nibbles (t = 0..3);
  // span id: digits 36..51 from words 4 and 5.
  for (let r = 0; r < ROOTS; r++) {
    const w = rootBase + r * ROOT_WORDS;
    const o = r * ROOT_LEN;
    let x = rootRandom[w]!;
    rootOut.setUint32(o + 3, hexLanes(x & 0x0f0f0f0f), true);
    rootOut.setUint32(o + 7, hexLanes((x >>> 4) & 0x0f0f0f0f), true);
    x = rootRandom[w + 1]!;
    rootOut.setUint32(o + 11, hexLanes(x & 0x0f0f0f0f), true);
    rootOut.setUint32(o + 15, hexLanes((x >>> 4) & 0x0f0f0f0f), true);
    x = rootRandom[w + 2]!;
    rootOut.setUint32(o + 19, hexLanes(x & 0x0f0f0f0f), true);
    rootOut.setUint32(o + 23, hexLanes((x >>> 4) & 0x0f0f0f0f), true);
    x = rootRandom[w + 3]!;
    rootOut.setUint32(o + 27, hexLanes(x & 0x0f0f0f0f), true);
    rootOut.setUint32(o + 31, hexLanes((x >>> 4) & 0x0f0f0f0f), true);
    x = rootRandom[w + 4]!;
    rootOut.setUint32(o + 36, hexLanes(x & 0x0f0f0f0f), true);
    rootOut.setUint32(o + 40, hexLanes((x >>> 4) & 0x0f0f0f0f), true);
    x = rootRandom[w + 5]!;
    rootOut.setUint32(o + 44, hexLanes(x & 0x0f0f0f0f), true);
    rootOut.setUint32(o + 48, hexLanes((x >>> 4) & 0x0f0f0f0f), true);
  }
  rootText = rootAscii.toString('latin1');
  rootNext = 0;
}

/** the pool entry of the last newRoot() */
let lastRoot = 0;

/** The trace id of the last newRoot() as numbers, from its random words (no hex decoding). */
export function lastRootTraceIdParts(): TraceIdParts {
  const w = rootBase + lastRoot * ROOT_WORDS;
  return TraceIdParts.ofWords(traceIdWord(rootRandom[w]!), traceIdWord(rootRandom[w + 1]!), traceIdWord(rootRandom[w + 2]!), traceIdWord(rootRandom[w + 3]!));
}

/**
 * Trace id word t (big-endian) of a root from its random word t: digits 8t..8t+7 are the random
 * word's low nibbles, then its high ones. (A function of its own, not a closure made per sampled
 * request.)
 */
function traceIdWord(x: number): number {
  return ((nibbleValue(x & 0x0f0f0f0f) << 16) | nibbleValue((x >>> 4) & 0x0f0f0f0f)) >>> 0;
}

/** The trace id of an unsampled root `traceparent` (see newRoot). */
export function rootTraceId(traceparent: string): string {
  return traceparent.slice(3, 35);
}

/** The span id of an unsampled root `traceparent` (see newRoot). */
export function rootSpanId(traceparent: string): string {
  return traceparent.slice(36, 52);
}

/** A new random root trace. */
export interface Root {
  /** `00-<trace id>-<span id>-00`: the unsampled traceparent naming the root's own (server) span */
  readonly traceparent: string;
  readonly sampled: boolean;
}

/**
 * Trace-id ratio sampling, the same decision as the OpenTelemetry SDK's TraceIdRatioBasedSampler
 * (the XOR of the trace id's four 32-bit words below `floor(rate * 0xffffffff)`; everything at
 * rate 1), so a trace id gets the same answer here as in any SDK with the same rate.
 */
export class RatioSampler {
  private readonly upperBound: number;
  constructor(rate: number) {
    const r = Number.isNaN(rate) ? 0 : Math.min(1, Math.max(0, rate));
    this.upperBound = r === 1 ? 0x100000000 : Math.floor(r * 0xffffffff);
  }

  /** The decision for a trace id given as its four words (big-endian). */
  sampleWords(w0: number, w1: number, w2: number, w3: number): boolean {
    return (w0 ^ w1 ^ w2 ^ w3) >>> 0 < this.upperBound;
  }

  /** The decision for a trace id given as 32 hex digits. */
  sample(traceId: string): boolean {
    const w = (i: number) => parseInt(traceId.slice(i, i + 8), 16);
    return this.sampleWords(w(0), w(8), w(16), w(24));
  }

  /** the decision for the root of the last rootTraceparent() */
  lastSampled = false;

  /** A new random root trace (trace id and span id never all zeros) and its sampling decision. */
  newRoot(): Root {
    const traceparent = this.rootTraceparent();
    return { traceparent, sampled: this.lastSampled };
  }

  /**
   * newRoot() without an object per request (the request path's form): the root's traceparent,
   * its decision in `lastSampled`. An unsampled request allocated the `Root` besides its
   * traceparent slice and its trace (docs/tracing.md "Session 18").
   */
  rootTraceparent(): string {
    for (;;) {
      if (rootNext === ROOTS) refillRoots();
      const r = rootNext++;
      const w = rootBase + r * ROOT_WORDS;
      const a = rootRandom[w]!;
      const b = rootRandom[w + 1]!;
      const c = rootRandom[w + 2]!;
      const d = rootRandom[w + 3]!;
      // all-zero ids are invalid (an id's digits are all 0 exactly when its words are)
      if ((a | b | c | d) === 0 || (rootRandom[w + 4]! | rootRandom[w + 5]!) === 0) continue;
      // The SDK's words are the trace id's digits 8j..8j+7; digits 8j..8j+3 are word j's low
      // nibbles, 8j+4..8j+7 its high ones, so the XOR of the four words is built from the XOR
      // of the random words, nibble lane by nibble lane.
      const x = a ^ b ^ c ^ d;
      const xored = traceIdWord(x);
      const o = r * ROOT_LEN;
      lastRoot = r;
      this.lastSampled = xored < this.upperBound;
      return rootText.slice(o, o + ROOT_LEN);
    }
  }
}
