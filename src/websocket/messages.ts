// What frame inspection asks the agents about, pure (no sockets): one unit per frame, or (route
// `websocket-inspect-messages`, the default) one unit per whole message, so a pattern split
// across the fragments of a message is seen in one piece. A unit keeps its frames exactly as
// received: an allowed unit is forwarded byte for byte, fragment boundaries and mask keys
// included. Limits (bytes and fragments per message) are the parser's: it checks them on each
// header, before a payload is held (frames.ts).
import type { RawRoute } from '../config/schema.ts';
import { CloseCode, FrameProtocolError, Opcode, isControl, type Frame } from './frames.ts';
import { TokenBucket } from '../server/token-bucket.ts';

/**
 * Largest frame payload accepted when frames are inspected one by one (Sentinel's default max frame
 * size), and the default largest message when whole messages are (websocket-max-message-bytes).
 */
export const WS_MAX_FRAME_BYTES = 1024 * 1024;

/**
 * Upper bound of `websocket-max-message-bytes`. A whole message is held per direction until its
 * last fragment and goes to each agent as one event, base64 in JSON (4/3 of its size): 4 MiB keeps
 * that under the agent protocol's 10 MiB v1 message and 16 MiB v2 frame with room to spare.
 */
export const WS_MAX_MESSAGE_BYTES_LIMIT = 4 * 1024 * 1024;

/**
 * Default `websocket-max-fragments`: frames in one data message on an inspected route (more: 1009).
 * 1 MiB (the default message limit) in 1024 fragments is 1 KiB each; senders that fragment use 4-16 KiB.
 */
export const WS_MAX_FRAGMENTS = 1024;

/**
 * Default `websocket-max-messages-per-second`: units (messages, control frames) a client may send
 * on an inspected session, each one agent call (more: 1008). A bucket of ten seconds' worth, so a
 * burst at connect (subscriptions) passes; chat, editors and games send tens a second.
 */
export const WS_MAX_MESSAGES_PER_SECOND = 100;
/** The bucket holds this many seconds of the rate. */
export const WS_MESSAGE_BURST_SECONDS = 10;

/** A route's frame-inspection limits, as the frame parser takes them (more of any: 1009). */
export interface MessageInspection {
  /** reassemble a fragmented message and inspect it once (websocket-inspect-messages) */
  wholeMessages: boolean;
  /** payload bytes of one frame: the message limit when whole (a frame is part of its message), else 1 MiB */
  maxFrameBytes: number;
  /** payload bytes of one message, all fragments together (websocket-max-message-bytes); undefined frame by frame */
  maxMessageBytes: number | undefined;
  /** frames of one data message (websocket-max-fragments) */
  maxFragments: number;
  /** units a client may send a second, each one agent call (websocket-max-messages-per-second); 0: unbounded */
  maxMessagesPerSecond: number;
}

/** A route's frame-inspection settings with their defaults (the session runs them, explain shows them). */
export function messageInspection(route: Pick<RawRoute, 'websocket-inspect-messages' | 'websocket-max-fragments' | 'websocket-max-message-bytes' | 'websocket-max-messages-per-second'>): MessageInspection {
  const wholeMessages = route['websocket-inspect-messages'] ?? true;
  const maxMessageBytes = wholeMessages ? (route['websocket-max-message-bytes'] ?? WS_MAX_FRAME_BYTES) : undefined;
  return {
    wholeMessages,
    maxFrameBytes: maxMessageBytes ?? WS_MAX_FRAME_BYTES,
    maxMessageBytes,
    maxFragments: route['websocket-max-fragments'] ?? WS_MAX_FRAGMENTS,
    maxMessagesPerSecond: route['websocket-max-messages-per-second'] ?? WS_MAX_MESSAGES_PER_SECOND,
  };
}

/**
 * The client's units on an inspected session (docs/security.md, "Session 26 audit"): each is an
 * agent call (~130 µs of gateway CPU with an echo, 7 bytes of wire for a one-byte message), and no
 * request rate limit counts them. A token bucket of WS_MESSAGE_BURST_SECONDS of the rate, full at
 * the upgrade.
 */
export class MessageRate {
  private readonly bucket: TokenBucket;
  /**
   * `client`: the client address's bucket for this route (server/client-budgets.ts, session 27),
   * charged the same: a new session's full burst no longer means the client's.
   */
  constructor(
    perSecond: number,
    private readonly client?: TokenBucket,
  ) {
    this.bucket = new TokenBucket(perSecond * WS_MESSAGE_BURST_SECONDS, perSecond);
  }

  /** Counts one unit; the rate it went over (the session's first), or undefined while both last. */
  take(): 'session' | 'client' | undefined {
    if (!this.bucket.take()) return 'session';
    if (this.client && !this.client.take()) return 'client';
    return undefined;
  }
}

export interface InspectUnit {
  /** text/binary for a data message (never continuation when whole), or the control frame's opcode */
  readonly opcode: number;
  /** true for a whole message; a lone fragment (frame by frame) carries its own fin */
  readonly fin: boolean;
  /** the unmasked payload: the fragments' payloads joined */
  readonly payload: Buffer;
  /** the frames as received, in order (one, unless a fragmented message was reassembled) */
  readonly frames: readonly Frame[];
}

/** A frame on its own (frame-by-frame inspection, control frames, unfragmented messages). */
export function frameUnit(frame: Frame): InspectUnit {
  return { opcode: frame.opcode, fin: frame.fin, payload: frame.payload, frames: [frame] };
}

/**
 * Frames -> units, whole messages: a control frame or an unfragmented data frame is a unit at once
 * (control frames interleaved in a fragmented message are not held back behind it, RFC 6455
 * §5.4); the fragments of a message are held until the one with fin, then make one unit. Throws
 * FrameProtocolError (1002) on a continuation without a message, or a new data frame before fin
 * (the parser refuses both first; the assembler does not trust its input to have been checked).
 */
export class MessageAssembler {
  private held: Frame[] = [];
  private bytes = 0;

  /** frames held for an incomplete message */
  get heldFrames(): number {
    return this.held.length;
  }

  /** payload bytes held for an incomplete message */
  get heldBytes(): number {
    return this.bytes;
  }

  /** The unit `frame` completes, or undefined while a message is still open. */
  push(frame: Frame): InspectUnit | undefined {
    if (isControl(frame.opcode)) return frameUnit(frame);
    if (frame.opcode === Opcode.Continuation) {
      if (this.held.length === 0) throw new FrameProtocolError('continuation frame without a message to continue', CloseCode.ProtocolError);
    } else if (this.held.length > 0) {
      throw new FrameProtocolError('new data frame while a fragmented message is open', CloseCode.ProtocolError);
    } else if (frame.fin) {
      return frameUnit(frame);
    }
    this.held.push(frame);
    this.bytes += frame.payload.length;
    if (!frame.fin) return undefined;
    const frames = this.held;
    const payload = Buffer.concat(
      frames.map((f) => f.payload),
      this.bytes,
    );
    this.held = [];
    this.bytes = 0;
    return { opcode: frames[0]!.opcode, fin: true, payload, frames };
  }
}
