// RFC 6455 framing, pure (no sockets): a streaming parser that keeps each frame's exact bytes
// (so an allowed frame is forwarded byte for byte), an encoder, close payloads, and a cheap
// boundary tracker for raw relaying (knows whether a direction sits between two frames, so a
// close frame can be injected without corrupting the stream).

export const Opcode = {
  Continuation: 0x0,
  Text: 0x1,
  Binary: 0x2,
  Close: 0x8,
  Ping: 0x9,
  Pong: 0xa,
} as const;

export type OpcodeName = 'continuation' | 'text' | 'binary' | 'close' | 'ping' | 'pong';

const NAMES: Record<number, OpcodeName> = { 0: 'continuation', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

export function opcodeName(opcode: number): OpcodeName | undefined {
  return NAMES[opcode];
}

export function isControl(opcode: number): boolean {
  return (opcode & 0x8) !== 0;
}

/** Close codes used by the gateway (RFC 6455 §7.4.1). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  PolicyViolation: 1008,
  TooBig: 1009,
  InternalError: 1011,
} as const;

export interface Frame {
  fin: boolean;
  /** RSV1..3 as bits 2..0 (RSV1 = 4) */
  rsv: number;
  opcode: number;
  masked: boolean;
  /** unmasked payload */
  payload: Buffer;
  /** the frame exactly as it was received (header, mask key, masked payload) */
  raw: Buffer;
}

export interface FrameHeader {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  headerLength: number;
  payloadLength: number;
}

/** Why a byte stream is refused: invalid framing, or over a limit (`kind` names the metric reason). */
export class FrameProtocolError extends Error {
  readonly kind: 'protocol' | 'too_big' | 'too_many_fragments';
  constructor(
    message: string,
    readonly closeCode: number,
    kind?: 'too_many_fragments',
  ) {
    super(message);
    this.kind = kind ?? (closeCode === CloseCode.TooBig ? 'too_big' : 'protocol');
  }
}

/**
 * Decodes a frame header from `buf` (which starts at a frame boundary). undefined = more bytes
 * needed. Throws FrameProtocolError for a 64-bit length with the top bit set or beyond 2^53.
 */
export function readHeader(buf: Buffer): FrameHeader | undefined {
  if (buf.length < 2) return undefined;
  const b0 = buf[0]!;
  const b1 = buf[1]!;
  const masked = (b1 & 0x80) !== 0;
  let len = b1 & 0x7f;
  let offset = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    const high = buf.readUInt32BE(2);
    if (high & 0x80000000) throw new FrameProtocolError('64-bit payload length with the most significant bit set', CloseCode.ProtocolError);
    if (high > 0x1fffff) throw new FrameProtocolError('payload length beyond 2^53', CloseCode.TooBig);
    len = high * 2 ** 32 + buf.readUInt32BE(6);
    offset = 10;
  }
  if (masked) offset += 4;
  if (buf.length < offset) return undefined;
  return { fin: (b0 & 0x80) !== 0, rsv: (b0 >> 4) & 0x7, opcode: b0 & 0xf, masked, headerLength: offset, payloadLength: len };
}

/** XOR with the 4-byte key, in place. */
export function applyMask(data: Buffer, key: Buffer): void {
  for (let i = 0; i < data.length; i++) data[i]! ^= key[i & 3]!;
}

export interface ParserOptions {
  /** payload bytes allowed in one frame (larger: 1009) */
  maxFrameBytes: number;
  /** true: frames must be masked (client -> server); false: must not be; undefined: either */
  requireMask?: boolean;
  /** RSV1 allowed (permessage-deflate negotiated) */
  allowRsv1?: boolean;
  /** frames allowed in one data message, the first one included (more: 1009); undefined = no cap */
  maxFragments?: number;
  /** payload bytes allowed in one data message, all fragments together (more: 1009); undefined = no cap */
  maxMessageBytes?: number;
}

/** Chunks -> frames; keeps partial frames between pushes; enforces RFC 6455 §5 rules. */
export class FrameParser {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private header: FrameHeader | undefined;
  /** a fragmented data message is open (continuations expected) */
  private inMessage = false;
  /** frames and payload bytes of the current data message (checked on each header, before its payload is held) */
  private fragments = 0;
  private messageBytes = 0;
  private failed: FrameProtocolError | undefined;

  constructor(private readonly opts: ParserOptions) {}

  /** bytes held for an incomplete frame */
  get buffered(): number {
    return this.bytes;
  }

  /** Complete frames in `chunk` (with what was held back); throws FrameProtocolError. */
  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.bytes += chunk.length;
    }
    const out: Frame[] = [];
    try {
      for (;;) {
        if (!this.header) {
          const h = readHeader(this.peek(14));
          if (!h) break;
          this.validate(h);
          this.header = h;
        }
        const total = this.header.headerLength + this.header.payloadLength;
        if (this.bytes < total) break;
        const h = this.header;
        this.header = undefined;
        const raw = this.take(total);
        const payload = Buffer.from(raw.subarray(h.headerLength));
        if (h.masked) applyMask(payload, raw.subarray(h.headerLength - 4, h.headerLength));
        out.push({ fin: h.fin, rsv: h.rsv, opcode: h.opcode, masked: h.masked, payload, raw });
      }
    } catch (err) {
      if (err instanceof FrameProtocolError) this.failed = err;
      throw err;
    }
    return out;
  }

  private validate(h: FrameHeader): void {
    const rsvAllowed = this.opts.allowRsv1 ? 0x4 : 0;
    if (h.rsv & ~rsvAllowed) throw new FrameProtocolError('reserved bits set without a negotiated extension', CloseCode.ProtocolError);
    if (opcodeName(h.opcode) === undefined) throw new FrameProtocolError(`reserved opcode 0x${h.opcode.toString(16)}`, CloseCode.ProtocolError);
    if (this.opts.requireMask === true && !h.masked) throw new FrameProtocolError('client frame is not masked', CloseCode.ProtocolError);
    if (this.opts.requireMask === false && h.masked) throw new FrameProtocolError('server frame is masked', CloseCode.ProtocolError);
    if (isControl(h.opcode)) {
      if (!h.fin) throw new FrameProtocolError('fragmented control frame', CloseCode.ProtocolError);
      if (h.payloadLength > 125) throw new FrameProtocolError('control frame payload over 125 bytes', CloseCode.ProtocolError);
      if (h.rsv !== 0) throw new FrameProtocolError('reserved bits on a control frame', CloseCode.ProtocolError);
      return;
    }
    if (h.payloadLength > this.opts.maxFrameBytes) throw new FrameProtocolError(`frame payload of ${h.payloadLength} bytes exceeds ${this.opts.maxFrameBytes}`, CloseCode.TooBig);
    if (h.opcode === Opcode.Continuation) {
      if (!this.inMessage) throw new FrameProtocolError('continuation frame without a message to continue', CloseCode.ProtocolError);
      if (h.rsv !== 0) throw new FrameProtocolError('reserved bits on a continuation frame', CloseCode.ProtocolError);
      this.fragments++;
      this.messageBytes += h.payloadLength;
    } else if (this.inMessage) {
      throw new FrameProtocolError('new data frame while a fragmented message is open', CloseCode.ProtocolError);
    } else {
      this.fragments = 1;
      this.messageBytes = h.payloadLength;
    }
    const { maxFragments, maxMessageBytes } = this.opts;
    if (maxFragments !== undefined && this.fragments > maxFragments) throw new FrameProtocolError(`message of more than ${maxFragments} fragments`, CloseCode.TooBig, 'too_many_fragments');
    if (maxMessageBytes !== undefined && this.messageBytes > maxMessageBytes) throw new FrameProtocolError(`message payload over ${maxMessageBytes} bytes`, CloseCode.TooBig);
    this.inMessage = !h.fin;
  }

  /** Up to n leading bytes without consuming them (copies only when the first chunk is shorter). */
  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (!first) return Buffer.alloc(0);
    if (first.length >= n || this.chunks.length === 1) return first;
    return Buffer.concat(this.chunks, Math.min(n, this.bytes));
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    this.bytes -= n;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.chunks[0]!;
      if (c.length <= need) {
        parts.push(c);
        this.chunks.shift();
        need -= c.length;
      } else {
        parts.push(c.subarray(0, need));
        this.chunks[0] = c.subarray(need);
        need = 0;
      }
    }
    return Buffer.concat(parts, n);
  }
}

export interface EncodeOptions {
  opcode: number;
  payload?: Buffer | string;
  /** default true */
  fin?: boolean;
  rsv?: number;
  /** a 4-byte key, or true for a random one (client -> server frames must be masked) */
  mask?: Buffer | boolean;
}

/** One frame on the wire; the shortest length encoding is used. */
export function encodeFrame(o: EncodeOptions): Buffer {
  const payload = typeof o.payload === 'string' ? Buffer.from(o.payload) : (o.payload ?? Buffer.alloc(0));
  const key = o.mask === true ? randomMask() : o.mask === false || o.mask === undefined ? undefined : o.mask;
  const len = payload.length;
  const extended = len < 126 ? 0 : len < 0x10000 ? 2 : 8;
  const headerLength = 2 + extended + (key ? 4 : 0);
  const out = Buffer.allocUnsafe(headerLength + len);
  out[0] = ((o.fin ?? true) ? 0x80 : 0) | (((o.rsv ?? 0) & 0x7) << 4) | (o.opcode & 0xf);
  const maskBit = key ? 0x80 : 0;
  if (extended === 0) out[1] = maskBit | len;
  else if (extended === 2) {
    out[1] = maskBit | 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = maskBit | 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  payload.copy(out, headerLength);
  if (key) {
    key.copy(out, 2 + extended, 0, 4);
    applyMask(out.subarray(headerLength), key);
  }
  return out;
}

function randomMask(): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE((Math.random() * 0x100000000) >>> 0, 0);
  return b;
}

/** Close frame payload: 2-byte code + UTF-8 reason, the reason cut to fit 125 bytes. */
export function closePayload(code: number, reason = ''): Buffer {
  let r = Buffer.from(reason);
  if (r.length > 123) {
    // cut on a character boundary
    r = Buffer.from(r.subarray(0, 123).toString('utf8').replace(/\uFFFD+$/, ''));
  }
  const out = Buffer.allocUnsafe(2 + r.length);
  out.writeUInt16BE(code, 0);
  r.copy(out, 2);
  return out;
}

/** Code and reason of a close payload (1005 "no status" when empty). */
export function parseClosePayload(payload: Buffer): { code: number; reason: string } {
  if (payload.length < 2) return { code: 1005, reason: '' };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
}

/**
 * Follows frame boundaries in a relayed byte stream without keeping payloads: header bytes are
 * held until complete, payload bytes are only counted. `atBoundary` is true between frames.
 * Malformed headers stop the tracking (`lost`): the stream is relayed raw and nothing is injected.
 */
export class BoundaryTracker {
  private remaining = 0;
  private headerBuf: Buffer | undefined;
  lost = false;

  get atBoundary(): boolean {
    return !this.lost && this.remaining === 0 && this.headerBuf === undefined;
  }

  push(chunk: Buffer): void {
    if (this.lost) return;
    let off = 0;
    while (off < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - off);
        this.remaining -= n;
        off += n;
        continue;
      }
      const view = this.headerBuf ? Buffer.concat([this.headerBuf, chunk.subarray(off, off + 14)]) : chunk.subarray(off, off + 14);
      let h: FrameHeader | undefined;
      try {
        h = readHeader(view);
      } catch {
        this.lost = true;
        return;
      }
      if (!h) {
        this.headerBuf = Buffer.from(view);
        return;
      }
      const fromHeld = this.headerBuf?.length ?? 0;
      this.headerBuf = undefined;
      off += h.headerLength - fromHeld;
      this.remaining = h.payloadLength;
    }
  }
}
