// WebSocket frame inspection by agents (sentinel-reference.md §2.3 WebSocketFrame, §2.2 1011).
// The gateway's session (src/websocket/session.ts) hands each frame here — or each whole message:
// a reassembled fragmented message is one event with the first frame's opcode, fin true and the
// whole payload, the reference's shape (websocket-inspect-messages, docs/websocket.md); every agent of the
// route's chain subscribed to `websocket_frame` gets it (in parallel), replies merge in chain
// order (the first drop or close wins). All frames of a session use the upgrade request's
// correlation id, so calls are serialised per session: replies are routed by correlation id.
import type { RequestContext } from '../../src/pipeline/types.ts';
import type { AgentCallError } from '../../src/agent-protocol/client.ts';
import { MessageType } from '../../src/agent-protocol/frames.ts';
import type { AgentReply, WebSocketFrameEvent } from '../../src/agent-protocol/messages.ts';
import type { InspectUnit } from '../../src/websocket/messages.ts';
import { CloseCode, opcodeName } from '../../src/websocket/frames.ts';
import type { FrameInspector, FrameVerdict } from '../../src/websocket/session.ts';
import type { CorrelationHandle } from './correlation.ts';
import type { Member } from './filter.ts';
import type { AgentMetrics } from './metrics.ts';

const ALLOW: FrameVerdict = { action: 'allow' };

/** One agent's reply -> a verdict. No websocket_decision: allow, except a block decision (closes with 1008). */
export function frameVerdict(reply: AgentReply): FrameVerdict {
  const d = reply.websocketDecision;
  if (d) return d.kind === 'close' ? { action: 'close', code: d.code, reason: d.reason } : { action: d.kind };
  if (reply.decision.kind === 'block') return { action: 'close', code: CloseCode.PolicyViolation, reason: reply.decision.body ?? 'Blocked by agent' };
  return ALLOW;
}

/** Fail-closed verdict for a failed call (Sentinel: 1011). */
export function failureVerdict(error: AgentCallError): FrameVerdict {
  return { action: 'close', code: CloseCode.InternalError, reason: error.kind === 'timeout' ? 'Agent timeout' : 'Agent unavailable' };
}

export interface FrameInspectorOptions {
  ctx: RequestContext;
  /** the chain's members subscribed to websocket_frame, in chain order */
  members: Member[];
  correlation: CorrelationHandle;
  failureMode: (m: Member) => 'open' | 'closed';
  metrics: AgentMetrics;
  /** permessage-deflate negotiated: payloads are compressed, nothing to inspect */
  deflate: boolean;
}

/** undefined when no agent wants frames, or when the session's frames cannot be inspected. */
export function createFrameInspector(o: FrameInspectorOptions): FrameInspector | undefined {
  if (o.members.length === 0) return undefined;
  if (o.deflate) {
    // As Sentinel: compressed frames are relayed uninspected.
    o.ctx.log.info({ route: o.ctx.routeId }, 'permessage-deflate negotiated: websocket frames are not inspected');
    for (const m of o.members) o.metrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
    return undefined;
  }
  return new AgentFrameInspector(o);
}

class AgentFrameInspector implements FrameInspector {
  private tail: Promise<unknown> = Promise.resolve();
  private ended = false;

  constructor(private readonly o: FrameInspectorOptions) {
    // the correlation id stays reserved for the whole session
    o.correlation.hold();
  }

  inspect(unit: InspectUnit, clientToServer: boolean, frameIndex: number): Promise<FrameVerdict> {
    const run = this.tail.then(() => this.decide(unit, clientToServer, frameIndex));
    this.tail = run.catch(() => undefined);
    return run;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    void this.tail.finally(() => this.o.correlation.release());
  }

  private async decide(frame: InspectUnit, clientToServer: boolean, frameIndex: number): Promise<FrameVerdict> {
    const { ctx, members, metrics } = this.o;
    const cid = this.o.correlation.id;
    const event: WebSocketFrameEvent = {
      correlation_id: cid,
      opcode: opcodeName(frame.opcode) ?? 'binary',
      data: frame.payload.toString('base64'),
      client_to_server: clientToServer,
      frame_index: frameIndex,
      fin: frame.fin,
      route_id: ctx.routeId ?? null,
      client_ip: ctx.clientIp,
    };
    const calls = members.map((m) => {
      const started = performance.now();
      const id = cid + m.cidSuffix;
      return m.client.call(MessageType.WebSocketFrame, id, m.cidSuffix ? { ...event, correlation_id: id } : event, { timeoutMs: m.settings.timeoutMs ?? m.def.timeoutMs }).then(
        (reply) => {
          m.cells.latency('websocket_frame').observe((performance.now() - started) / 1000);
          return { ok: true as const, reply };
        },
        (error: AgentCallError) => ({ ok: false as const, error }),
      );
    });
    // Wait for every call (they share one correlation id: none may still be in flight when the next frame goes out).
    const outcomes = await Promise.all(calls);
    for (let i = 0; i < members.length; i++) {
      const m = members[i]!;
      const outcome = outcomes[i]!;
      if (!outcome.ok) {
        const { error } = outcome;
        metrics.decisions.inc({ agent: m.def.id, decision: error.kind === 'timeout' || error.kind === 'circuit_open' ? error.kind : 'error' });
        if (error.kind === 'timeout') metrics.timeouts.inc({ agent: m.def.id, event: 'websocket_frame' });
        else metrics.errors.inc({ agent: m.def.id, event: 'websocket_frame', kind: error.kind });
        if (this.o.failureMode(m) === 'closed') {
          ctx.log.warn({ agent: m.def.id, err: error.message }, 'agent failed on a websocket frame; failure-mode closed: closing with 1011');
          return failureVerdict(error);
        }
        ctx.log.warn({ agent: m.def.id, err: error.message }, 'agent failed on a websocket frame; failure-mode open: forwarding it');
        metrics.decisions.inc({ agent: m.def.id, decision: 'skipped' });
        continue;
      }
      const verdict = frameVerdict(outcome.reply);
      m.cells.decision(verdict.action).value++;
      if (verdict.action !== 'allow') return verdict;
    }
    return ALLOW;
  }
}
