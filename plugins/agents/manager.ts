// Agent clients per generation, shared across reloads: a client (its connections, breaker and
// concurrency permits) is keyed by everything that affects the wire (socket, pool, limits,
// breaker, config block). A reload whose agent block did not change acquires the same client;
// the old generation's release then only drops a reference. A changed block gets a new client
// and the old one closes when the last generation using it is disposed.
import { AgentClient } from '../../src/agent-protocol/client.ts';
import { InProcessAgent, type AgentTransport } from './in-process.ts';
import type { Metrics } from '../../src/metrics/registry.ts';
import type { AgentDefinition } from './definition.ts';
import { AgentMetrics } from './metrics.ts';
import type { AuditSink } from '../../src/logging/audit.ts';

interface Shared {
  client: AgentTransport;
  refs: number;
}

// Per Metrics object (one per gateway process; tests may run several gateways in one process).
const registries = new WeakMap<Metrics, Map<string, Shared>>();

function fingerprint(def: AgentDefinition): string {
  return JSON.stringify({
    socket: def.socketPath,
    inProcess: def.inProcess ?? null,
    // An in-process program is built for its subscriptions (sentinel-waf ends a transaction at
    // the request-side decision when nothing later is sent): other events, another engine.
    events: def.inProcess === undefined ? null : [...def.events].sort(),
    protocol: def.protocolVersion,
    encoding: def.encoding,
    pool: def.pool,
    max: def.maxConcurrentCalls,
    breaker: def.breaker,
    config: def.config ?? null,
  });
}

export class AgentManager {
  readonly metrics: AgentMetrics;
  private readonly clients = new Map<string, { key: string; shared: Shared }>();
  private released = false;

  constructor(
    private readonly defs: ReadonlyMap<string, AgentDefinition>,
    private readonly registryMetrics: Metrics,
    /** the gateway's audit sink (agent breaker changes); the same function for every generation */
    private readonly audit?: AuditSink,
  ) {
    this.metrics = new AgentMetrics(registryMetrics);
  }

  definition(id: string): AgentDefinition | undefined {
    return this.defs.get(id);
  }

  /** The client for agent `id` (created or reused on first use in this generation). */
  client(id: string): AgentTransport {
    const have = this.clients.get(id);
    if (have) return have.shared.client;
    const def = this.defs.get(id);
    if (!def) throw new Error(`unknown agent "${id}"`);
    let registry = registries.get(this.registryMetrics);
    if (!registry) registries.set(this.registryMetrics, (registry = new Map()));
    const key = `${id}\u0000${fingerprint(def)}`;
    let shared = registry.get(key);
    if (!shared) {
      const client: AgentTransport = def.inProcess !== undefined ? new InProcessAgent(id, def.inProcess, def.config, def.events) : new AgentClient({
        id,
        socketPath: def.socketPath,
        connections: def.pool.connections,
        connectTimeoutMs: def.pool.connectTimeoutMs,
        reconnectIntervalMs: def.pool.reconnectIntervalMs,
        maxConcurrentCalls: def.maxConcurrentCalls,
        protocolVersion: def.protocolVersion,
        encoding: def.encoding,
        breaker: def.breaker,
        config: def.config,
        pingIntervalMs: def.pool.healthCheckIntervalMs,
        hooks: this.metrics.clientHooks(this.audit),
      });
      client.start();
      shared = { client, refs: 0 };
      registry.set(key, shared);
    }
    shared.refs += 1;
    this.clients.set(id, { key, shared });
    return shared.client;
  }

  /** The client of agent `id` if this generation has one (never creates it). */
  peek(id: string): AgentTransport | undefined {
    return this.clients.get(id)?.shared.client;
  }

  /** Per-agent connection and call counters (leak checks, the config builtin). */
  stats(): Record<string, { connections: number; pendingReplies: number; permitsInUse: number; queued: number }> {
    const out: Record<string, { connections: number; pendingReplies: number; permitsInUse: number; queued: number }> = {};
    for (const [id, { shared }] of this.clients) {
      const c = shared.client;
      out[id] = { connections: c.openConnections, pendingReplies: c.pendingReplies, permitsInUse: c.load.inUse, queued: c.load.queued };
    }
    return out;
  }

  /** Opens the connections of every agent now, so the first requests do not pay for it. */
  warm(): void {
    for (const id of this.defs.keys()) this.client(id);
  }

  /** Drops this generation's references; clients nobody uses any more are closed. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const registry = registries.get(this.registryMetrics);
    const closing: Promise<void>[] = [];
    for (const { key, shared } of this.clients.values()) {
      shared.refs -= 1;
      if (shared.refs <= 0) {
        registry?.delete(key);
        closing.push(shared.client.close());
      }
    }
    this.clients.clear();
    await Promise.all(closing);
  }
}
