// W3C Trace Context for the tracing plugin (docs/tracing.md "Propagation", "Sampling"): reading a
// client's `traceparent`, random trace and span ids, and the parent-based ratio sampling decision.
// Pure and allocation-light: this runs on every request while tracing is on, sampled or not
// (table-tested in test/unit/tracing/trace-context.test.ts).

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

const HEX_BYTE = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Eight hex digits of a 32-bit word. */
function hex32(w: number): string {
  return HEX_BYTE[w >>> 24]! + HEX_BYTE[(w >>> 16) & 255]! + HEX_BYTE[(w >>> 8) & 255]! + HEX_BYTE[w & 255]!;
}

/** A random 32-bit word (Math.random, as the OpenTelemetry SDK's id generator: ids are not secrets). */
function word(): number {
  return (Math.random() * 4294967296) >>> 0;
}

/** A random span id: 16 hex digits, never all zeros. */
export function newSpanId(): string {
  const hi = word();
  const lo = word();
  return hex32(hi) + hex32(hi === 0 && lo === 0 ? 1 : lo);
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

  /** A new random root trace id and its sampling decision. */
  newTrace(): { traceId: string; sampled: boolean } {
    const w0 = word();
    const w1 = word();
    const w2 = word();
    let w3 = word();
    if ((w0 | w1 | w2 | w3) === 0) w3 = 1; // an all-zero trace id is invalid
    return { traceId: hex32(w0) + hex32(w1) + hex32(w2) + hex32(w3), sampled: this.sampleWords(w0, w1, w2, w3) };
  }
}
