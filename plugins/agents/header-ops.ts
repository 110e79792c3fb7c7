// Header operations decided by agents (set / add / remove), applied to the request sent upstream
// or to the response sent downstream. Not the route policies' header operations
// (src/server/headers.ts applyHeaderOps): agents' operations skip the framing headers.
import type { HeaderMap } from '../../src/pipeline/types.ts';
import type { HeaderOp } from '../../src/agent-protocol/messages.ts';
import { GATEWAY_OWNED } from '../../src/server/headers.ts';

// The core owns message framing; agents must not be able to desynchronise it (GATEWAY_OWNED:
// also the connection-specific names Node refuses to write on an HTTP/2 stream).
/** A block's own headers without the framing ones (names are lower-cased by the reply parser). */
export function withoutFramingHeaders(headers: Record<string, string>): Record<string, string> {
  let out: Record<string, string> | undefined;
  for (const name in headers) {
    if (!GATEWAY_OWNED.has(name)) continue;
    out ??= { ...headers };
    delete out[name];
  }
  return out ?? headers;
}

export function applyAgentHeaderOps(headers: HeaderMap, ops: readonly HeaderOp[]): void {
  for (const op of ops) {
    if (GATEWAY_OWNED.has(op.name)) continue;
    if (op.op === 'remove') delete headers[op.name];
    else if (op.op === 'set') headers[op.name] = op.value;
    else {
      const prev = headers[op.name];
      headers[op.name] = prev === undefined ? op.value : Array.isArray(prev) ? [...prev, op.value] : [prev, op.value];
    }
  }
}
