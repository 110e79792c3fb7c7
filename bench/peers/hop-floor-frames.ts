// Agent-protocol v2 framing shared by the floor's proxy and agent (bench/hop-floor.ts): a frame is
// u32 BE length (payload + 1) · u8 type · payload. Plain JavaScript once transpiled (no imports).

/** Called once per whole frame; the payload is buf[start, end). */
export type OnFrame = (buf: Buffer, type: number, start: number, end: number) => void;

/**
 * A 'data' listener that splits a byte stream into frames, keeping a partial frame for the next
 * chunk; `done` runs after the frames of each chunk (the agent writes its replies there).
 */
export function frameSplitter(onFrame: OnFrame, done?: () => void): (chunk: Buffer) => void {
  let rest: Buffer | undefined;
  return (chunk) => {
    const buf = rest ? Buffer.concat([rest, chunk]) : chunk;
    rest = undefined;
    let at = 0;
    while (buf.length - at >= 4) {
      const length = buf.readUInt32BE(at);
      if (buf.length - at < 4 + length) break;
      onFrame(buf, buf[at + 4]!, at + 5, at + 4 + length);
      at += 4 + length;
    }
    if (at < buf.length) rest = buf.subarray(at);
    done?.();
  };
}
