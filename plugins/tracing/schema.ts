// `observability { tracing { ... } }` (sentinel-reference.md §1.13). The settings are checked
// (and defaulted) by settings.ts; this is only the KDL shape.
import { Type } from 'typebox';
import { Block, Duration } from '../../src/config/types-helpers.ts';

/**
 * `backend "otlp" { endpoint "http://collector:4318" }`: the type is the node's argument.
 * `protocol` (an extension, named like OTEL_EXPORTER_OTLP_PROTOCOL) picks the OTLP/HTTP encoding.
 */
const TracingBackendSchema = Block(
  {
    type: Type.String(),
    endpoint: Type.Optional(Type.String()),
    protocol: Type.Optional(Type.Union([Type.Literal('http/protobuf'), Type.Literal('http/json')], { default: 'http/protobuf' })),
  },
  { argKey: 'type' },
);

export const TracingSchema = Block({
  enabled: Type.Optional(Type.Boolean({ default: true })),
  backend: Type.Optional(TracingBackendSchema),
  'sampling-rate': Type.Optional(Type.Number({ minimum: 0, maximum: 1, default: 0.01 })),
  'service-name': Type.Optional(Type.String({ default: 'sentinel' })),
  // Extensions (not in Sentinel): the export queue and batching.
  'max-queue-size': Type.Optional(Type.Integer({ minimum: 1, default: 2048 })),
  'max-export-batch-size': Type.Optional(Type.Integer({ minimum: 1, default: 512 })),
  'scheduled-delay': Type.Optional(Duration),
  'export-timeout': Type.Optional(Duration),
  // Extension: the OTLP/HTTP requests in a worker thread (#true) or on the request thread (#false).
  'export-thread': Type.Optional(Type.Boolean({ default: false })),
});

/** The keys the tracing feature adds to the config (its manifest's `schema`). */
export const TracingConfigKeys = { observability: { tracing: Type.Optional(TracingSchema) } };
declare module '../../src/config/schema.ts' {
  interface ObservabilityKeys {
    tracing: (typeof TracingConfigKeys)['observability']['tracing'];
  }
}
