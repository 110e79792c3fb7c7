// Sentinel agent protocol v2, binary UDS framing (sentinel-reference.md §2.4):
//   u32 big-endian length (= payload length + 1) · u8 message type · payload (JSON)
// A zero length or a length above the limit cannot be resynchronised, so both are fatal for
// the connection; the decoder reports them and the owner closes the socket.
// Payloads are JSON, or MessagePack after a handshake that negotiated it (the handshake
// itself is always JSON).
import { decodeMsgpack, encodeMsgpackShared } from './msgpack.ts';
import { RequestHeadersMessage, encodeRequestHeadersJson, lastJsonOneByte, plainEvent } from './messages.ts';

export type Encoding = 'json' | 'msgpack';

export const MessageType = {
  HandshakeRequest: 0x01,
  HandshakeResponse: 0x02,
  RequestHeaders: 0x10,
  RequestBodyChunk: 0x11,
  ResponseHeaders: 0x12,
  ResponseBodyChunk: 0x13,
  RequestComplete: 0x14,
  WebSocketFrame: 0x15,
  GuardrailInspect: 0x16,
  Configure: 0x17,
  AgentResponse: 0x20,
  HealthStatus: 0x30,
  MetricsReport: 0x31,
  ConfigUpdateRequest: 0x32,
  FlowControl: 0x33,
  Cancel: 0x40,
  Ping: 0x41,
  Pong: 0x42,
} as const;
export type MessageTypeCode = (typeof MessageType)[keyof typeof MessageType];

const KNOWN_TYPES = new Set<number>(Object.values(MessageType));
export function isKnownMessageType(t: number): t is MessageTypeCode {
  return KNOWN_TYPES.has(t);
}

/** Protocol maximum (16 MiB) for one frame's type byte + payload. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface Frame {
  type: number;
  payload: Buffer;
}

export class FrameError extends Error {
  constructor(
    message: string,
    readonly kind: 'zero_length' | 'oversized',
  ) {
    super(message);
  }
}

/** Encodes one frame. `payload` is serialised (JSON or MessagePack) unless it already is a Buffer. */
export function encodeFrame(type: number, payload: unknown, encoding: Encoding = 'json'): Buffer {
  if (Buffer.isBuffer(payload)) return rawFrame(type, payload);
  // MessagePack is written into the encoder's shared buffer and copied once, into the frame.
  if (encoding === 'msgpack') return rawFrame(type, encodeMsgpackShared(plainEvent(payload) ?? null));
  // Serialise straight into the frame (no intermediate buffer: this runs for every event).
  const json = JSON.stringify(payload ?? null);
  const length = Buffer.byteLength(json, 'utf8');
  const frame = Buffer.allocUnsafe(5 + length);
  frame.writeUInt32BE(length + 1, 0);
  frame.writeUInt8(type, 4);
  frame.write(json, 5, 'utf8');
  return frame;
}

function rawFrame(type: number, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + payload.length);
  frame.writeUInt32BE(payload.length + 1, 0);
  frame.writeUInt8(type, 4);
  frame.set(payload, 5);
  return frame;
}

/** The part of a socket FrameWriter uses. */
export interface FrameSink {
  readonly destroyed: boolean;
  write(chunk: Buffer): unknown;
  cork(): void;
  uncork(): void;
}

/** Marks a queued JSON part (in FrameWriter's `types`) whose text is one byte per character: written as latin1. */
const ONE_BYTE = 0x100;

/** A turn's frames up to this many bytes go out as one buffer; larger turns are written frame by frame (no big copy). */
const COALESCE_BYTES = 64 * 1024;

/**
 * Coalesces the frames written during one event-loop turn into one socket write. Every event and
 * reply used to be its own write(2) (profiled: ~17% of the gateway's CPU on the agent path at
 * 50 connections); frames queued here go out together from a setImmediate. A turn's frames are
 * copied into one buffer and handed to the socket in one write (one pass through the Writable,
 * one buffer object), or, past COALESCE_BYTES, corked frame by frame so libuv hands them to one
 * writev. `writeMessage` queues a JSON payload as its string: its frame is written straight into
 * that buffer (no Buffer per event). Order is kept; frames queued when the socket dies are
 * dropped, as an unflushed write would have been.
 */
export class FrameWriter {
  /** a frame (Buffer) or a JSON payload (string) whose header is written at flush */
  private parts: (Buffer | string)[] = [];
  /** per part: the message type of a string part (| ONE_BYTE when it is written as latin1), -1 for a Buffer */
  private types: number[] = [];
  /** per part: its bytes on the wire, header included */
  private sizes: number[] = [];
  private bytes = 0;
  private scheduled = false;
  /** between hold() and release(): frames wait for release() instead of a setImmediate */
  private held = false;

  constructor(private readonly sink: FrameSink) {}

  /**
   * Frames queued from now on wait for `release()`, which writes them (no setImmediate for them).
   * The SDK holds its writer while it handles one read's frames: a synchronous handler's replies
   * then leave in one write at the end of the read, without an Immediate per read.
   */
  hold(): void {
    this.held = true;
  }

  /** Ends `hold()` and writes what is queued now, frames queued earlier in this turn included (order kept). */
  release(): void {
    this.held = false;
    if (this.parts.length > 0) this.flush();
  }

  /** Frames wait for this turn's write (a frame queued now shares it). */
  get pending(): boolean {
    return this.scheduled;
  }

  /** Queues an encoded frame. */
  write(frame: Buffer): void {
    this.enqueue(frame, -1, frame.length);
  }

  /**
   * Serialises `payload` now (a payload that cannot be encoded throws here, before anything is
   * queued) and queues its frame for this turn's write.
   */
  writeMessage(type: number, payload: unknown, encoding: Encoding): void {
    if (encoding === 'msgpack' || Buffer.isBuffer(payload)) {
      this.write(encodeFrame(type, payload, encoding));
      return;
    }
    if (payload instanceof RequestHeadersMessage) {
      // the per-request event: hand-encoded, and printable ASCII (the usual case) is copied as latin1 without a UTF-8 length pass
      const json = encodeRequestHeadersJson(payload);
      if (lastJsonOneByte) this.enqueue(json, type | ONE_BYTE, 5 + json.length);
      else this.enqueue(json, type, 5 + Buffer.byteLength(json, 'utf8'));
      return;
    }
    const json = JSON.stringify(payload ?? null);
    this.enqueue(json, type, 5 + Buffer.byteLength(json, 'utf8'));
  }

  /** Queues a JSON payload the caller knows is one byte per character (printable ASCII), e.g. the plain allow. */
  writeOneByteJson(type: number, json: string): void {
    this.enqueue(json, type | ONE_BYTE, 5 + json.length);
  }

  private enqueue(part: Buffer | string, type: number, size: number): void {
    this.parts.push(part);
    this.types.push(type);
    this.sizes.push(size);
    this.bytes += size;
    if (this.scheduled || this.held) return;
    this.scheduled = true;
    setImmediate(this.flush);
  }

  /** Writes what is queued now (before an end(), or when order with a direct write matters). */
  readonly flush = (): void => {
    this.scheduled = false;
    const { parts, types, sizes, bytes } = this;
    if (parts.length === 0) return;
    this.parts = [];
    this.types = [];
    this.sizes = [];
    this.bytes = 0;
    if (this.sink.destroyed) return;
    if (parts.length === 1) {
      this.sink.write(frameOf(parts[0]!, types[0]!, sizes[0]!));
      return;
    }
    if (bytes > COALESCE_BYTES) {
      this.sink.cork();
      for (let i = 0; i < parts.length; i++) this.sink.write(frameOf(parts[i]!, types[i]!, sizes[i]!));
      this.sink.uncork();
      return;
    }
    const out = Buffer.allocUnsafe(bytes);
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (typeof part === 'string') writeJsonFrame(out, at, types[i]!, part, sizes[i]! - 5);
      else out.set(part, at);
      at += sizes[i]!;
    }
    this.sink.write(out);
  };
}

function frameOf(part: Buffer | string, type: number, size: number): Buffer {
  if (typeof part !== 'string') return part;
  const frame = Buffer.allocUnsafe(size);
  writeJsonFrame(frame, 0, type, part, size - 5);
  return frame;
}

function writeJsonFrame(out: Buffer, at: number, type: number, json: string, length: number): void {
  // the header by byte and the text by the buffer's own latin1/utf8 writers: writeUInt32BE's and
  // write()'s argument and encoding checks ran for every frame (the sizes were computed here)
  const n = length + 1;
  out[at] = n >>> 24;
  out[at + 1] = (n >>> 16) & 0xff;
  out[at + 2] = (n >>> 8) & 0xff;
  out[at + 3] = n & 0xff;
  out[at + 4] = type & 0xff;
  const raw = out as WritingBuffer;
  if (type & ONE_BYTE) raw.latin1Write(json, at + 5, length);
  else raw.utf8Write(json, at + 5, length);
}

/** Buffer's own writers, as write(string, offset, length, encoding) ends up calling them (not in @types/node). */
type WritingBuffer = Buffer & { latin1Write(s: string, offset: number, length: number): number; utf8Write(s: string, offset: number, length: number): number };

/** Receives one frame: its type and its payload, `buf[start, end)` (a view into the socket's chunk). */
export type FrameVisitor = (type: number, buf: Buffer, start: number, end: number) => void;

/**
 * Incremental decoder: feed socket chunks, get whole frames back. Partial frames stay buffered
 * (`bufferedBytes`) until the rest arrives; the buffer never grows past one maximal frame.
 */
export class FrameDecoder {
  /** the start of an incomplete frame left by earlier chunks, in arrival order */
  private rest: Buffer[] = [];
  private restBytes = 0;
  /** the incomplete frame's whole size (header included) once its header is in; 0 before */
  private restNeed = 0;

  constructor(private readonly maxFrameBytes = MAX_FRAME_BYTES) {}

  get bufferedBytes(): number {
    return this.restBytes;
  }

  /** Throws FrameError on a frame that can never be valid; the connection must then be dropped. */
  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    this.feed(chunk, (type, buf, start, end) => frames.push({ type, payload: buf.subarray(start, end) }));
    return frames;
  }

  /**
   * Hands each whole frame of `chunk` to `visit` as it is found, without a Frame object or a
   * Buffer view per frame (the reply path's per-frame cost at load). Frames before a broken one
   * are visited, then FrameError is thrown. Only `chunk[0, length)` is read. `transient`: the
   * chunk's memory is reused once this returns (a socket's `onread` buffer), so the start of an
   * incomplete frame is copied, not kept as a view; a visitor must not keep `buf` either.
   */
  feed(chunk: Buffer, visit: FrameVisitor, length = chunk.length, transient = false): void {
    let buf = chunk;
    let total = length;
    if (this.restBytes > 0) {
      const part = length < chunk.length ? chunk.subarray(0, length) : chunk;
      this.rest.push(transient ? Buffer.from(part) : part);
      this.restBytes += length;
      // A large frame arrives in many chunks: joined once, when it is complete.
      if (this.restNeed > 0 && this.restBytes < this.restNeed) return;
      buf = this.rest.length === 1 ? this.rest[0]! : Buffer.concat(this.rest, this.restBytes);
      total = buf.length;
      this.rest = [];
      this.restBytes = 0;
      this.restNeed = 0;
      // the joined frame is a copy of its own: what is left of it after this read may be kept as a view
      transient = false;
    }
    let at = 0;
    let need = 0;
    while (total - at >= 4) {
      const size = buf.readUInt32BE(at);
      if (size === 0) throw new FrameError('zero-length frame', 'zero_length');
      if (size > this.maxFrameBytes) throw new FrameError(`frame of ${size} bytes exceeds the ${this.maxFrameBytes}-byte limit`, 'oversized');
      if (total - at < 4 + size) {
        need = 4 + size;
        break;
      }
      visit(buf[at + 4]!, buf, at + 5, at + 4 + size);
      at += 4 + size;
    }
    if (at < total) {
      const tail = at === 0 && total === buf.length ? buf : buf.subarray(at, total);
      this.rest.push(transient ? Buffer.from(tail) : tail);
      this.restBytes = total - at;
      this.restNeed = need;
    }
  }
}

/** Parses a frame's payload in the connection's encoding; undefined when it does not decode. */
export function parsePayload(payload: Buffer, encoding: Encoding): unknown {
  if (encoding === 'json') return parseJsonPayload(payload);
  try {
    return decodeMsgpack(payload);
  } catch {
    return undefined;
  }
}

/** Parses a frame's JSON payload (`payload[start, end)`, default all of it); undefined when it is not valid JSON. */
export function parseJsonPayload(payload: Buffer, start = 0, end = payload.length): unknown {
  try {
    return JSON.parse(payload.toString('utf8', start, end));
  } catch {
    return undefined;
  }
}
