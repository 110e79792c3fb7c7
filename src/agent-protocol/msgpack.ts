// A MessagePack codec for the agent protocol's negotiated "msgpack" encoding (sentinel-reference.md
// §2.4): exactly the types the JSON payloads need, per the MessagePack spec
// (https://github.com/msgpack/msgpack/blob/master/spec.md):
//   nil, bool, positive/negative fixint, (u)int 8/16/32/64 (64-bit only within the safe integer
//   range), float32 (decode only) / float64, fixstr/str8/16/32 (UTF-8), bin8/16/32 (decoded to a
//   Buffer; body data stays base64 strings as in the JSON shapes), fixarray/array16/32,
//   fixmap/map16/32.
// Ext types are rejected. Encoding follows JSON.stringify where the two differ in meaning:
// undefined/function members of objects are skipped, non-finite numbers become nil, toJSON() is
// honoured. Decoding is defensive (the bytes come from another process): truncation, trailing
// bytes, unknown type bytes, impossible lengths and deep nesting throw MsgpackError.

export class MsgpackError extends Error {}

const MAX_DEPTH = 512;

class Writer {
  private buf = Buffer.allocUnsafe(256);
  private pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  head(type: number, size: 1 | 2 | 4, v: number): void {
    this.ensure(1 + size);
    this.buf[this.pos++] = type;
    if (size === 1) this.buf.writeUInt8(v, this.pos);
    else if (size === 2) this.buf.writeUInt16BE(v, this.pos);
    else this.buf.writeUInt32BE(v, this.pos);
    this.pos += size;
  }
  i(type: number, size: 1 | 2 | 4, v: number): void {
    this.ensure(1 + size);
    this.buf[this.pos++] = type;
    if (size === 1) this.buf.writeInt8(v, this.pos);
    else if (size === 2) this.buf.writeInt16BE(v, this.pos);
    else this.buf.writeInt32BE(v, this.pos);
    this.pos += size;
  }
  u64(type: number, v: bigint): void {
    this.ensure(9);
    this.buf[this.pos++] = type;
    if (type === 0xcf) this.buf.writeBigUInt64BE(v, this.pos);
    else this.buf.writeBigInt64BE(v, this.pos);
    this.pos += 8;
  }
  f64(v: number): void {
    this.ensure(9);
    this.buf[this.pos++] = 0xcb;
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }
  str(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    if (n < 32) this.u8(0xa0 | n);
    else if (n < 0x100) this.head(0xd9, 1, n);
    else if (n < 0x10000) this.head(0xda, 2, n);
    else this.head(0xdb, 4, n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, 'utf8');
  }
  bin(b: Uint8Array): void {
    const n = b.length;
    if (n < 0x100) this.head(0xc4, 1, n);
    else if (n < 0x10000) this.head(0xc5, 2, n);
    else this.head(0xc6, 4, n);
    this.ensure(n);
    this.buf.set(b, this.pos);
    this.pos += n;
  }
  done(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function writeInt(w: Writer, v: number): void {
  if (v >= 0) {
    if (v < 0x80) w.u8(v);
    else if (v < 0x100) w.head(0xcc, 1, v);
    else if (v < 0x10000) w.head(0xcd, 2, v);
    else if (v < 0x100000000) w.head(0xce, 4, v);
    else w.u64(0xcf, BigInt(v));
  } else {
    if (v >= -32) w.u8(v & 0xff);
    else if (v >= -0x80) w.i(0xd0, 1, v);
    else if (v >= -0x8000) w.i(0xd1, 2, v);
    else if (v >= -0x80000000) w.i(0xd2, 4, v);
    else w.u64(0xd3, BigInt(v));
  }
}

function writeValue(w: Writer, v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new MsgpackError('value nested too deeply');
  switch (typeof v) {
    case 'string':
      return w.str(v);
    case 'number':
      if (Number.isSafeInteger(v)) return writeInt(w, v);
      if (!Number.isFinite(v)) return w.u8(0xc0);
      return w.f64(v);
    case 'boolean':
      return w.u8(v ? 0xc3 : 0xc2);
    case 'bigint':
      if (v >= 0n && v <= 0xffffffffffffffffn) return v <= BigInt(Number.MAX_SAFE_INTEGER) ? writeInt(w, Number(v)) : w.u64(0xcf, v);
      if (v < 0n && v >= -0x8000000000000000n) return v >= BigInt(Number.MIN_SAFE_INTEGER) ? writeInt(w, Number(v)) : w.u64(0xd3, v);
      throw new MsgpackError('bigint outside the 64-bit range');
    case 'undefined':
    case 'function':
    case 'symbol':
      return w.u8(0xc0);
    case 'object':
      break;
  }
  if (v === null) return w.u8(0xc0);
  if (v instanceof Uint8Array) return w.bin(v);
  if (Array.isArray(v)) {
    const n = v.length;
    if (n < 16) w.u8(0x90 | n);
    else if (n < 0x10000) w.head(0xdc, 2, n);
    else w.head(0xdd, 4, n);
    for (const item of v) writeValue(w, item, depth + 1);
    return;
  }
  const o = v as Record<string, unknown> & { toJSON?: () => unknown };
  if (typeof o.toJSON === 'function') return writeValue(w, o.toJSON(), depth + 1);
  const keys = Object.keys(o).filter((k) => {
    const t = typeof o[k];
    return t !== 'undefined' && t !== 'function' && t !== 'symbol';
  });
  const n = keys.length;
  if (n < 16) w.u8(0x80 | n);
  else if (n < 0x10000) w.head(0xde, 2, n);
  else w.head(0xdf, 4, n);
  for (const k of keys) {
    w.str(k);
    writeValue(w, o[k], depth + 1);
  }
}

export function encodeMsgpack(value: unknown): Buffer {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.done();
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw new MsgpackError(`truncated at byte ${this.pos}`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  uint(size: 1 | 2 | 4): number {
    this.need(size);
    const v = size === 1 ? this.buf.readUInt8(this.pos) : size === 2 ? this.buf.readUInt16BE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += size;
    return v;
  }
  int(size: 1 | 2 | 4): number {
    this.need(size);
    const v = size === 1 ? this.buf.readInt8(this.pos) : size === 2 ? this.buf.readInt16BE(this.pos) : this.buf.readInt32BE(this.pos);
    this.pos += size;
    return v;
  }
  big(signed: boolean): number {
    this.need(8);
    const v = signed ? this.buf.readBigInt64BE(this.pos) : this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw new MsgpackError(`64-bit integer ${v} outside the safe integer range`);
    return Number(v);
  }
  bytes(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  str(n: number): string {
    return this.bytes(n).toString('utf8');
  }
}

function readArray(r: Reader, n: number, depth: number): unknown[] {
  // Every element takes at least one byte: a length beyond what is left is a lie, not an allocation.
  r.need(n);
  const out = new Array<unknown>(n);
  for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1);
  return out;
}

function readMap(r: Reader, n: number, depth: number): Record<string, unknown> {
  r.need(n * 2);
  const out: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const k = readValue(r, depth + 1);
    if (typeof k !== 'string' && typeof k !== 'number') throw new MsgpackError('map keys must be strings or integers');
    const key = String(k);
    const value = readValue(r, depth + 1);
    // Own property, never the prototype (as JSON.parse does for "__proto__").
    if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  return out;
}

function readValue(r: Reader, depth: number): unknown {
  if (depth > MAX_DEPTH) throw new MsgpackError('value nested too deeply');
  const t = r.u8();
  if (t < 0x80) return t;
  if (t >= 0xe0) return t - 0x100;
  if ((t & 0xe0) === 0xa0) return r.str(t & 0x1f);
  if ((t & 0xf0) === 0x90) return readArray(r, t & 0x0f, depth);
  if ((t & 0xf0) === 0x80) return readMap(r, t & 0x0f, depth);
  switch (t) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return Buffer.from(r.bytes(r.uint(1)));
    case 0xc5:
      return Buffer.from(r.bytes(r.uint(2)));
    case 0xc6:
      return Buffer.from(r.bytes(r.uint(4)));
    case 0xca: {
      r.need(4);
      const v = r.buf.readFloatBE(r.pos);
      r.pos += 4;
      return v;
    }
    case 0xcb: {
      r.need(8);
      const v = r.buf.readDoubleBE(r.pos);
      r.pos += 8;
      return v;
    }
    case 0xcc:
      return r.uint(1);
    case 0xcd:
      return r.uint(2);
    case 0xce:
      return r.uint(4);
    case 0xcf:
      return r.big(false);
    case 0xd0:
      return r.int(1);
    case 0xd1:
      return r.int(2);
    case 0xd2:
      return r.int(4);
    case 0xd3:
      return r.big(true);
    case 0xd9:
      return r.str(r.uint(1));
    case 0xda:
      return r.str(r.uint(2));
    case 0xdb:
      return r.str(r.uint(4));
    case 0xdc:
      return readArray(r, r.uint(2), depth);
    case 0xdd:
      return readArray(r, r.uint(4), depth);
    case 0xde:
      return readMap(r, r.uint(2), depth);
    case 0xdf:
      return readMap(r, r.uint(4), depth);
    default:
      // 0xc1 (never used), ext 0xc7-0xc9 / 0xd4-0xd8: not part of the agent protocol's data model.
      throw new MsgpackError(`unsupported type byte 0x${t.toString(16)} at byte ${r.pos - 1}`);
  }
}

/** Decodes exactly one value filling `buf`; throws MsgpackError on anything malformed. */
export function decodeMsgpack(buf: Buffer): unknown {
  const r = new Reader(buf);
  const v = readValue(r, 0);
  if (r.pos !== buf.length) throw new MsgpackError(`${buf.length - r.pos} trailing bytes after the value`);
  return v;
}
