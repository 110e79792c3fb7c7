// Audit events (sentinel-reference.md §3.3): one JSON object per event, written by the gateway
// to the audit file/stdout and to syslog (src/server/gateway.ts adds `timestamp` when the event
// has none). Every emitter builds its request events here, so they carry the same fields.

/** The event types the gateway emits (docs/core.md "Audit log" lists when). */
export const AUDIT_EVENT_TYPES = [
  'blocked',
  'agent_decision',
  'waf_match',
  'waf_block',
  'rate_limit_exceeded',
  'auth_event',
  'config_change',
  'cert_reload',
  'circuit_breaker_change',
  'cache_purge',
  'admin_action',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export type AuditSink = (event: Record<string, unknown>) => void;

/** What a request-scoped event says about the request (a RequestContext has all of it). */
export interface AuditRequest {
  readonly traceId: string;
  readonly method: string;
  readonly path: string;
  readonly clientIp: string;
  readonly routeId?: string | undefined;
}

/**
 * `trace_id, event_type, method, path, client_ip, route_id?` and the event's own fields;
 * fields that are undefined are left out (the reference's `?` fields).
 */
export function requestAuditEvent(r: AuditRequest, eventType: AuditEventType, fields: Record<string, unknown> = {}): Record<string, unknown> {
  const event: Record<string, unknown> = { trace_id: r.traceId, event_type: eventType, method: r.method, path: r.path, client_ip: r.clientIp };
  if (r.routeId !== undefined) event.route_id = r.routeId;
  for (const k in fields) if (fields[k] !== undefined) event[k] = fields[k];
  return event;
}
