// `agents { agent "id" { ... } }`, `filter type "agent"` and `waf { }` (§1.10, §1.11, §1.8).
import { Type, type Static } from 'typebox';
import { Block, Enum, Duration, Named } from '../../src/config/types-helpers.ts';
import { CircuitBreakerSchema } from '../health/schema.ts';

const Transport = (argKey: string) =>
  Block(
    {
      [argKey]: Type.String(),
      tls: Type.Optional(Type.Boolean()),
      'tls-insecure': Type.Optional(Type.Boolean()),
      'ca-cert': Type.Optional(Type.String()),
      'client-cert': Type.Optional(Type.String()),
      'client-key': Type.Optional(Type.String()),
    },
    { argKey },
  );

export const AgentPoolSchema = Block({
  'connections-per-agent': Type.Optional(Type.Integer({ minimum: 1, default: 4 })),
  'load-balance-strategy': Type.Optional(Type.String()),
  'connect-timeout-ms': Type.Optional(Type.Integer({ minimum: 1, default: 5000 })),
  'reconnect-interval-ms': Type.Optional(Type.Integer({ minimum: 1, default: 5000 })),
  'max-reconnect-attempts': Type.Optional(Type.Integer({ minimum: 0 })),
  'drain-timeout-ms': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-concurrent-per-connection': Type.Optional(Type.Integer({ minimum: 1 })),
  'health-check-interval-ms': Type.Optional(Type.Integer({ minimum: 1 })),
});

export const AgentSchema = Block({
  type: Type.Optional(Type.String()),
  'unix-socket': Type.Optional(Transport('path')),
  // Sentinel-TS extension: a known agent program run inside the gateway (plugins/agents/in-process.ts)
  'in-process': Type.Optional(Type.String()),
  grpc: Type.Optional(Transport('address')),
  http: Type.Optional(Transport('url')),
  events: Type.Optional(Type.Array(Type.String())),
  'timeout-ms': Type.Optional(Type.Integer({ exclusiveMinimum: 0, default: 1000 })),
  'failure-mode': Type.Optional(Type.String()),
  'circuit-breaker': Type.Optional(CircuitBreakerSchema),
  'max-request-body-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'max-response-body-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  'request-body-mode': Type.Optional(Type.String()),
  'response-body-mode': Type.Optional(Type.String()),
  'chunk-timeout-ms': Type.Optional(Type.Integer({ exclusiveMinimum: 0, default: 5000 })),
  'max-concurrent-calls': Type.Optional(Type.Integer({ minimum: 1, default: 100 })),
  config: Type.Optional(Type.Unknown()),
  pool: Type.Optional(AgentPoolSchema),
  'protocol-version': Type.Optional(Type.Union([Type.Integer(), Type.String()])),
  // Sentinel-TS extension: offer MessagePack payloads in the v2 handshake (default JSON only).
  encoding: Type.Optional(Enum(['json', 'msgpack'] as const)),
});
export type AgentConfig = Static<typeof AgentSchema>;

export const AgentFilterProperties = {
  agent: Type.Optional(Type.String()),
  // No default: when unset, the agent's `events` alone decide which phases it sees.
  phase: Type.Optional(Enum(['request', 'response', 'both'] as const)),
  'timeout-ms': Type.Optional(Type.Integer({ exclusiveMinimum: 0 })),
  'failure-mode': Type.Optional(Type.String()),
  'inspect-body': Type.Optional(Type.Boolean()),
  // (ours) request bodies whose content type is not in waf { body-inspection { content-types } }
  // (or that have none) still go to the agent; default: on when this filter fails closed
  'inspect-unknown-content-types': Type.Optional(Type.Boolean()),
  'max-body-bytes': Type.Optional(Type.Integer({ minimum: 0 })),
  // (ours) a request body over the agent's limit: "reject" (413) or "forward" (uninspected);
  // default: the failure mode's (closed 413, open forward, as the reference)
  'body-over-limit': Type.Optional(Enum(['reject', 'forward'] as const)),
};

export const WafSchema = Block({
  engine: Type.Optional(Type.String({ default: 'coraza' })),
  mode: Type.Optional(Enum(['off', 'detection', 'detect', 'prevention', 'prevent', 'block'] as const, { default: 'prevention' })),
  'audit-log': Type.Optional(Type.Boolean({ default: true })),
  ruleset: Type.Optional(
    Block({
      'crs-version': Type.Optional(Type.String()),
      'custom-rules-dir': Type.Optional(Type.String()),
      'paranoia-level': Type.Optional(Type.Integer({ minimum: 1, maximum: 4, default: 1 })),
      'anomaly-threshold': Type.Optional(Type.Integer({ minimum: 1, default: 5 })),
      exclusion: Type.Optional(
        Type.Array(Block({ id: Type.String(), scope: Type.Optional(Type.String()), 'rule-ids': Type.Optional(Type.Array(Type.String())) }, { argKey: 'id' }), { kdl: 'repeat' }),
      ),
    }),
  ),
  'body-inspection': Type.Optional(
    Block({
      'inspect-request-body': Type.Optional(Type.Boolean({ default: true })),
      'inspect-response-body': Type.Optional(Type.Boolean({ default: false })),
      'max-inspection-bytes': Type.Optional(Type.Integer({ minimum: 0, default: 1048576 })),
      'content-types': Type.Optional(Type.Array(Type.String())),
      decompress: Type.Optional(Type.Boolean({ default: false })),
      'max-decompression-ratio': Type.Optional(Type.Number({ exclusiveMinimum: 0, default: 100 })),
    }),
  ),
});
export type WafConfig = Static<typeof WafSchema>;
export { Duration };

/** The keys the agents feature adds to the config (its manifest's `schema`). */
export const AgentsConfigKeys = { top: { agents: Named('agent', AgentSchema), waf: Type.Optional(WafSchema) } };
declare module '../../src/config/schema.ts' {
  interface TopLevelKeys {
    agents: (typeof AgentsConfigKeys)['top']['agents'];
    waf: (typeof AgentsConfigKeys)['top']['waf'];
  }
}
