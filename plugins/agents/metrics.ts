// The agent metrics (sentinel_agent_*, sentinel_decompression_*), get-or-created on the
// process-wide registry so reloads reuse them.
import type { Metrics } from '../../src/metrics/registry.ts';
import type { AgentClientHooks } from '../../src/agent-protocol/client.ts';
import type { AuditSink } from '../../src/logging/audit.ts';
import type { CounterCell, FastCounter, FastHistogram, HistogramCell } from '../../src/metrics/fast.ts';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class AgentMetrics {
  /** per-call metrics: cells resolved once per agent (cells()), no label lookups per call */
  readonly latency: FastHistogram;
  readonly timeouts;
  readonly decisions: FastCounter;
  readonly errors;
  readonly protocolErrors;
  readonly connections;
  readonly reconnects;
  readonly breakerState;
  readonly bufferedBytes;
  readonly decompression;
  readonly decompressionRatio;

  constructor(m: Metrics) {
    this.latency = m.fastHistogram('sentinel_agent_latency_seconds', 'Agent call latency by agent and event', ['agent', 'event'], LATENCY_BUCKETS);
    this.timeouts = m.counter('sentinel_agent_timeouts_total', 'Agent calls that timed out', ['agent', 'event']);
    this.decisions = m.fastCounter('sentinel_agent_requests_total', 'Agent call outcomes (allow, block, redirect, challenge, error, timeout, circuit_open, skipped)', ['agent', 'decision']);
    this.errors = m.counter('sentinel_agent_errors_total', 'Failed agent calls by kind', ['agent', 'event', 'kind']);
    this.protocolErrors = m.counter('sentinel_agent_protocol_errors_total', 'Invalid or unexpected data received from agents', ['agent', 'kind']);
    this.connections = m.gauge('sentinel_agent_connections', 'Open connections per agent', ['agent']);
    this.reconnects = m.counter('sentinel_agent_connect_attempts_total', 'Agent connection attempts by result', ['agent', 'result']);
    this.breakerState = m.gauge('sentinel_circuit_breaker_state', 'Circuit breaker state (0 closed, 1 open, 2 half-open)', ['component', 'route']);
    this.bufferedBytes = m.histogram('sentinel_agent_body_buffered_bytes', 'Request body bytes buffered for agent inspection', ['route'], [256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304]);
    this.decompression = m.counter('sentinel_decompression_total', 'Body decompressions for inspection by encoding and result', ['encoding', 'result']);
    this.decompressionRatio = m.histogram('sentinel_decompression_ratio', 'Decompressed/compressed size of inspected bodies', [], [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]);
  }

  private readonly perAgent = new Map<string, AgentCells>();

  /** The per-call cells of one agent (shared by every filter of it). */
  cells(agent: string): AgentCells {
    let c = this.perAgent.get(agent);
    if (!c) this.perAgent.set(agent, (c = new AgentCells(this, agent)));
    return c;
  }

  /** `audit`: breaker changes also go to the audit log (circuit_breaker_change, component agent:<id>) */
  clientHooks(audit?: AuditSink): AgentClientHooks {
    const last = new Map<string, string>();
    return {
      protocolIssue: (agent, kind) => this.protocolErrors.inc({ agent, kind }),
      connections: (agent, open) => this.connections.set({ agent }, open),
      reconnect: (agent, ok) => this.reconnects.inc({ agent, result: ok ? 'ok' : 'failed' }),
      breaker: (agent, state) => {
        this.breakerState.set({ component: `agent:${agent}`, route: '' }, state === 'closed' ? 0 : state === 'open' ? 1 : 2);
        const from = last.get(agent) ?? 'closed';
        last.set(agent, state);
        if (from !== state) audit?.({ event_type: 'circuit_breaker_change', component: `agent:${agent}`, agent_id: agent, from, to: state });
      },
    };
  }
}

/** One agent's latency and decision cells, by event and by decision. */
export class AgentCells {
  private readonly latencies = new Map<string, HistogramCell>();
  private readonly decisionCounts = new Map<string, CounterCell>();

  constructor(
    private readonly metrics: AgentMetrics,
    readonly agent: string,
  ) {}

  latency(event: string): HistogramCell {
    let c = this.latencies.get(event);
    if (!c) this.latencies.set(event, (c = this.metrics.latency.child(this.agent, event)));
    return c;
  }

  decision(kind: string): CounterCell {
    let c = this.decisionCounts.get(kind);
    if (!c) this.decisionCounts.set(kind, (c = this.metrics.decisions.child(this.agent, kind)));
    return c;
  }
}
