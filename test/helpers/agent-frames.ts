// Agent-protocol v2 frames written by hand for raw clients (tests, and the benches' socket client),
// independently of the gateway's own encoder in src/agent-protocol/frames.ts.

/** One v2 frame: 4-byte big-endian length (type byte included), the type byte, the JSON body. */
export function frame(type: number, json: string): Buffer {
  const body = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length + 1, 0);
  out[4] = type;
  body.copy(out, 5);
  return out;
}
