// The agent protocol's negotiated "msgpack" payload encoding (sentinel-reference.md §2.4), on
// @msgpack/msgpack (docs/architecture.md, "MessagePack: @msgpack/msgpack"). This module only pins
// the library to the protocol's data model, which is JSON's:
// * encode: objects become maps keyed by their field names, Uint8Array/Buffer become bin, safe
//   integers the smallest int type (the bytes rmp_serde::to_vec_named writes), other numbers
//   float64; members whose value is undefined are skipped. A value JSON would transform or drop
//   (toJSON() such as Date, functions, symbols, bigint) is first normalised the way JSON.stringify
//   does, so both encodings carry the same message; plain data (everything the gateway and the SDK
//   build themselves) never takes that slower path.
// * decode: ext types (including the timestamp extension) are refused, as are lengths beyond one
//   frame, trailing bytes, truncation and "__proto__" keys; bin decodes to a Uint8Array view of the
//   frame; 64-bit integers decode to numbers (exact within ±2^53).
// Every failure is a MsgpackError.
import { Decoder, Encoder, type ExtensionCodecType } from '@msgpack/msgpack';

export class MsgpackError extends Error {}

const MAX_DEPTH = 512;
/** No length inside a payload can exceed the frame holding it (frames.ts MAX_FRAME_BYTES, 16 MiB). */
const MAX_LENGTH = 16 * 1024 * 1024;

/** Thrown from the encoder's extension hook when the value needs JSON normalisation first. */
const NEEDS_NORMALISING = new Error('value needs JSON normalisation');

const protocolTypes: ExtensionCodecType<undefined> = {
  // Called for every non-primitive before it is written (functions, symbols and bigints too): plain
  // objects, arrays and byte views pass; anything JSON would rewrite takes the normalising path.
  tryToEncode(object) {
    if (typeof object !== 'object' || object === null) throw NEEDS_NORMALISING;
    if (ArrayBuffer.isView(object)) return null;
    if (typeof (object as { toJSON?: unknown }).toJSON === 'function') throw NEEDS_NORMALISING;
    // NaN and ±Infinity are numbers to the encoder (it would write float64 NaN); JSON writes null.
    if (Array.isArray(object)) {
      for (let i = 0; i < object.length; i++) {
        const x: unknown = object[i];
        if (typeof x === 'number' && x - x !== 0) throw NEEDS_NORMALISING;
      }
      return null;
    }
    const o = object as Record<string, unknown>;
    for (const k in o) {
      const x = o[k];
      if (typeof x === 'number' && x - x !== 0) throw NEEDS_NORMALISING;
    }
    return null;
  },
  decode(_data, type) {
    throw new MsgpackError(`ext type ${type} is not part of the agent protocol`);
  },
};

const ENCODER_OPTIONS = { extensionCodec: protocolTypes, ignoreUndefined: true, maxDepth: MAX_DEPTH } as const;
let encoder = new Encoder(ENCODER_OPTIONS);
/** The encoder's buffer only grows (to twice the largest message); one that grew past this is dropped. */
const KEEP_ENCODER_BUFFER = 1024 * 1024;
const decoder = new Decoder({
  extensionCodec: protocolTypes,
  maxStrLength: MAX_LENGTH,
  maxBinLength: MAX_LENGTH,
  maxArrayLength: MAX_LENGTH,
  maxMapLength: MAX_LENGTH,
  maxExtLength: MAX_LENGTH,
});

/** JSON.stringify's view of a value (toJSON, dropped members, non-finite numbers as null), bytes kept. */
function normalise(v: unknown, inArray: boolean, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new MsgpackError('value nested too deeply');
  if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && typeof (v as { toJSON?: unknown }).toJSON === 'function') v = (v as { toJSON: () => unknown }).toJSON();
  switch (typeof v) {
    case 'number':
      return Number.isFinite(v) ? v : null;
    case 'bigint':
      // JSON.stringify throws on any bigint; one that fits a number is written as the integer.
      if (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
      throw new MsgpackError('bigint outside the safe integer range');
    case 'undefined':
    case 'function':
    case 'symbol':
      return inArray ? null : undefined;
    case 'object':
      break;
    default:
      return v;
  }
  if (v === null || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) return v.map((x) => normalise(x, true, depth + 1));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v)) {
    const x = normalise((v as Record<string, unknown>)[k], false, depth + 1);
    if (x !== undefined) out[k] = x;
  }
  return out;
}

/**
 * Encodes `value` into the encoder's shared buffer: the view is valid until the next call, so the
 * caller copies it (encodeFrame writes it straight into the frame).
 */
export function encodeMsgpackShared(value: unknown): Uint8Array {
  try {
    const out = encoder.encodeSharedRef(value);
    if (out.buffer.byteLength > KEEP_ENCODER_BUFFER) encoder = new Encoder(ENCODER_OPTIONS);
    return out;
  } catch (err) {
    if (err !== NEEDS_NORMALISING) throw new MsgpackError(err instanceof Error ? err.message : String(err));
  }
  try {
    const out = encoder.encodeSharedRef(normalise(value, true, 0));
    if (out.buffer.byteLength > KEEP_ENCODER_BUFFER) encoder = new Encoder(ENCODER_OPTIONS);
    return out;
  } catch (err) {
    throw err instanceof MsgpackError ? err : new MsgpackError(err instanceof Error ? err.message : String(err));
  }
}

export function encodeMsgpack(value: unknown): Buffer {
  return Buffer.from(encodeMsgpackShared(value));
}

/** Decodes exactly one value filling `buf`; throws MsgpackError on anything malformed. */
export function decodeMsgpack(buf: Uint8Array): unknown {
  try {
    return decoder.decode(buf);
  } catch (err) {
    if (err instanceof MsgpackError) throw err;
    throw new MsgpackError(err instanceof Error ? err.message : String(err));
  }
}
