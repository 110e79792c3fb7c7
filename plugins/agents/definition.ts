// Decoded `agents { agent "id" {} }`, `filter type "agent"`, `waf { body-inspection }` and
// `limits` keys -> the immutable settings the agent filters use (defaults applied once).
import { isAbsolute, resolve } from 'node:path';
import type { BreakerSettings } from '../../src/agent-protocol/agent-breaker.ts';
import { IN_PROCESS_PROGRAMS } from './in-process.ts';
import type { AgentConfig, WafConfig } from './schema.ts';

export type AgentBlock = AgentConfig & { id: string };

export type EventKind = 'request_headers' | 'request_body' | 'response_headers' | 'response_body' | 'request_complete' | 'websocket_frame' | 'guardrail';

const EVENT_ALIASES: Record<string, EventKind> = {
  request_headers: 'request_headers',
  'request-headers': 'request_headers',
  request_body: 'request_body',
  'request-body': 'request_body',
  response_headers: 'response_headers',
  'response-headers': 'response_headers',
  response_body: 'response_body',
  'response-body': 'response_body',
  log: 'request_complete',
  request_complete: 'request_complete',
  'request-complete': 'request_complete',
  websocket_frame: 'websocket_frame',
  'websocket-frame': 'websocket_frame',
  guardrail: 'guardrail',
};

export type BodyMode = { kind: 'buffer' } | { kind: 'stream' } | { kind: 'hybrid'; bufferBytes: number };

export interface AgentDefinition {
  id: string;
  type: string;
  socketPath: string;
  /** `in-process "program"`: run that agent program inside the gateway (no socket) */
  inProcess: string | undefined;
  events: ReadonlySet<EventKind>;
  timeoutMs: number;
  chunkTimeoutMs: number;
  /** the agent block's own failure-mode (Sentinel ignores it for filters; kept for reporting) */
  failureMode: 'open' | 'closed';
  maxRequestBodyBytes: number | undefined;
  requestBodyMode: BodyMode;
  /** response bodies larger than this are not inspected (closed -> 502, open -> agent skipped) */
  maxResponseBodyBytes: number;
  responseBodyMode: BodyMode;
  maxConcurrentCalls: number;
  /** `protocol-version`: 2 (default) binary UDS, 1 legacy length-prefixed JSON */
  protocolVersion: 1 | 2;
  /** `encoding`: 'msgpack' offers MessagePack in the v2 handshake */
  encoding: 'json' | 'msgpack';
  breaker: BreakerSettings;
  config: unknown;
  pool: {
    connections: number;
    connectTimeoutMs: number;
    reconnectIntervalMs: number;
    healthCheckIntervalMs: number;
  };
}

export function parseFailureMode(v: unknown): 'open' | 'closed' | undefined {
  if (typeof v !== 'string') return undefined;
  const s = v.toLowerCase().replace(/_/g, '-');
  if (s === 'open' || s === 'fail-open') return 'open';
  if (s === 'closed' || s === 'fail-closed') return 'closed';
  return undefined;
}

function parseProtocolVersion(v: string | number | undefined, path: string, errors: string[]): 1 | 2 {
  if (v === undefined) return 2;
  const s = String(v).trim().toLowerCase();
  if (s === '1' || s === 'v1') return 1;
  if (s === '2' || s === 'v2') return 2;
  errors.push(`${path}: unsupported protocol version ${JSON.stringify(v)} (expected 1, "v1", 2 or "v2")`);
  return 2;
}

function parseBodyMode(v: string | undefined, path: string, errors: string[]): BodyMode {
  if (v === undefined || v === 'buffer') return { kind: 'buffer' };
  if (v === 'stream') return { kind: 'stream' };
  if (v === 'hybrid') return { kind: 'hybrid', bufferBytes: 64 * 1024 };
  const m = /^hybrid:(\d+)$/.exec(v);
  if (m) return { kind: 'hybrid', bufferBytes: Number(m[1]) };
  errors.push(`${path}: invalid body mode "${v}" (expected buffer, stream, hybrid or hybrid:<bytes>)`);
  return { kind: 'buffer' };
}

/**
 * Semantic checks + defaults. Returns the definition and the problems found (each prefixed with
 * its KDL path); the core's compile step should turn the problems into config errors.
 */
export function defineAgent(raw: AgentBlock, baseDir = process.cwd()): { definition: AgentDefinition; errors: string[] } {
  const path = `agents > agent "${raw.id}"`;
  const errors: string[] = [];
  if (raw.grpc || raw.http) errors.push(`${path}: only unix-socket agents are supported by this gateway (the ${raw.grpc ? 'grpc' : 'http'} transport is not implemented; see docs/agents.md)`);
  const socketValue: unknown = raw['unix-socket']?.path;
  const socket = typeof socketValue === 'string' ? socketValue : undefined;
  const inProcess = raw['in-process'];
  if (inProcess !== undefined && !IN_PROCESS_PROGRAMS.includes(inProcess)) errors.push(`${path} > in-process: unknown program "${inProcess}" (known: ${IN_PROCESS_PROGRAMS.join(', ')})`);
  if (inProcess !== undefined && socket) errors.push(`${path}: give either unix-socket or in-process, not both`);
  if (!socket && !raw.grpc && !raw.http && inProcess === undefined) errors.push(`${path}: needs unix-socket "/path" (or in-process "sentinel-waf")`);
  const events = new Set<EventKind>();
  for (const e of raw.events ?? ['request_headers']) {
    const k = EVENT_ALIASES[e];
    if (k) events.add(k);
    else errors.push(`${path} > events: unknown event "${e}" (expected one of ${Object.keys(EVENT_ALIASES).join(', ')})`);
  }
  const failureMode = raw['failure-mode'] === undefined ? 'open' : parseFailureMode(raw['failure-mode']);
  if (failureMode === undefined) errors.push(`${path} > failure-mode: expected "open" or "closed", got "${raw['failure-mode']}"`);
  if (raw.encoding === 'msgpack' && parseProtocolVersion(raw['protocol-version'], '', []) === 1) {
    errors.push(`${path} > encoding: MessagePack needs protocol v2 (v1 has no handshake to negotiate it)`);
  }
  const cb = raw['circuit-breaker'];
  const pool = raw.pool;
  const definition: AgentDefinition = {
    id: raw.id,
    type: raw.type ?? raw.id,
    socketPath: socket ? (isAbsolute(socket) ? socket : resolve(baseDir, socket)) : '',
    inProcess,
    events,
    timeoutMs: raw['timeout-ms'] ?? 1000,
    chunkTimeoutMs: raw['chunk-timeout-ms'] ?? 5000,
    failureMode: failureMode ?? 'open',
    maxRequestBodyBytes: raw['max-request-body-bytes'],
    requestBodyMode: parseBodyMode(raw['request-body-mode'], `${path} > request-body-mode`, errors),
    maxResponseBodyBytes: raw['max-response-body-bytes'] ?? 1024 * 1024,
    responseBodyMode: parseBodyMode(raw['response-body-mode'], `${path} > response-body-mode`, errors),
    maxConcurrentCalls: raw['max-concurrent-calls'] ?? 100,
    protocolVersion: parseProtocolVersion(raw['protocol-version'], `${path} > protocol-version`, errors),
    encoding: raw.encoding === 'msgpack' ? 'msgpack' : 'json',
    breaker: {
      failureThreshold: cb?.['failure-threshold'] ?? 5,
      successThreshold: cb?.['success-threshold'] ?? 2,
      openMs: (cb?.['timeout-seconds'] ?? 30) * 1000,
      halfOpenMaxRequests: cb?.['half-open-max-requests'] ?? 1,
    },
    config: raw.config,
    pool: {
      connections: pool?.['connections-per-agent'] ?? 4,
      connectTimeoutMs: pool?.['connect-timeout-ms'] ?? 5000,
      reconnectIntervalMs: pool?.['reconnect-interval-ms'] ?? 5000,
      healthCheckIntervalMs: pool?.['health-check-interval-ms'] ?? 10_000,
    },
  };
  return { definition, errors };
}

/** Settings of one `filter "id" { type "agent" ... }`. */
export interface AgentFilterSettings {
  id: string;
  agent: string;
  phase: 'request' | 'response' | 'both' | undefined;
  timeoutMs: number | undefined;
  failureMode: 'open' | 'closed' | undefined;
  inspectBody: boolean | undefined;
  /** inspect bodies outside the content-type allowlist; undefined = when failing closed */
  inspectUnknownTypes: boolean | undefined;
  maxBodyBytes: number | undefined;
  /** a request body over the limit: 413 or forwarded uninspected; undefined = by the failure mode */
  bodyOverLimit: 'reject' | 'forward' | undefined;
}

/** Whether the filter sends request bodies to its agent (the filter's `wants(m, 'request_body')`). */
export function sendsRequestBodies(s: AgentFilterSettings, def: AgentDefinition): boolean {
  return s.phase !== 'response' && (s.inspectBody === true || def.events.has('request_body'));
}

/** What a request body over the agent's limit gets: the filter's `body-over-limit`, else its failure mode's (closed 413). */
export function overLimitAnswer(s: AgentFilterSettings, failureMode: 'open' | 'closed'): 'reject' | 'forward' {
  return s.bodyOverLimit ?? (failureMode === 'closed' ? 'reject' : 'forward');
}

/** Whether a body outside the content-type allowlist goes to the agent: the filter's `inspect-unknown-content-types`, else when failing closed. */
export function inspectsUnknownTypes(s: AgentFilterSettings, failureMode: 'open' | 'closed'): boolean {
  return s.inspectUnknownTypes ?? failureMode === 'closed';
}

export function defineAgentFilter(id: string, config: Record<string, unknown>): AgentFilterSettings {
  const fm = config['failure-mode'];
  const failureMode = parseFailureMode(fm);
  if (fm !== undefined && failureMode === undefined) throw new Error(`filters > filter "${id}" > failure-mode: expected "open" or "closed", got ${JSON.stringify(fm)}`);
  if (typeof config.agent !== 'string') throw new Error(`filters > filter "${id}": an agent filter needs agent "<id>"`);
  return {
    id,
    agent: config.agent,
    phase: config.phase as AgentFilterSettings['phase'],
    timeoutMs: config['timeout-ms'] as number | undefined,
    failureMode,
    inspectBody: config['inspect-body'] as boolean | undefined,
    inspectUnknownTypes: config['inspect-unknown-content-types'] as boolean | undefined,
    maxBodyBytes: config['max-body-bytes'] as number | undefined,
    bodyOverLimit: config['body-over-limit'] as AgentFilterSettings['bodyOverLimit'],
  };
}

export const DEFAULT_INSPECTED_CONTENT_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data', 'application/json', 'application/xml', 'text/xml'];

/** Request body inspection policy shared by all agent filters of a generation. */
export interface BodyPolicy {
  enabled: boolean;
  /** bytes buffered for agents (larger: closed -> 413, open -> agent skipped) */
  maxInspectionBytes: number;
  /** content-type prefixes that are inspected */
  contentTypes: readonly string[];
  decompress: boolean;
  maxDecompressionRatio: number;
  /** absolute cap on decompressed bytes */
  maxDecompressedBytes: number;
  /** hard cap for buffering a body that cannot be inspected but was already read (the request limit) */
  maxBodyBytes: number;
}

export interface LimitsLike {
  'max-body-size-bytes'?: number;
  'max-body-inspection-bytes'?: number;
  'max-decompression-ratio'?: number;
  'max-decompressed-size-bytes'?: number;
}

export function defineBodyPolicy(waf: WafConfig | undefined, limits: LimitsLike | undefined): BodyPolicy {
  const bi = waf?.['body-inspection'];
  const maxInspectionBytes = bi?.['max-inspection-bytes'] ?? limits?.['max-body-inspection-bytes'] ?? 1024 * 1024;
  return {
    enabled: bi?.['inspect-request-body'] ?? true,
    maxInspectionBytes,
    contentTypes: (bi?.['content-types'] ?? DEFAULT_INSPECTED_CONTENT_TYPES).map((c) => c.toLowerCase()),
    decompress: bi?.decompress ?? false,
    maxDecompressionRatio: bi?.['max-decompression-ratio'] ?? limits?.['max-decompression-ratio'] ?? 100,
    maxDecompressedBytes: Math.min(10 * maxInspectionBytes, limits?.['max-decompressed-size-bytes'] ?? 100 * 1024 * 1024),
    maxBodyBytes: limits?.['max-body-size-bytes'] ?? 10 * 1024 * 1024,
  };
}
