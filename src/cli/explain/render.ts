// The human form of an explain report (the --json form is the report itself).
import type { ExplainSettings, ExplainValue } from '../../pipeline/feature.ts';
import type { Candidate, ExplainReport } from './report.ts';

function value(v: ExplainValue): string {
  if (v === null) return '-';
  if (Array.isArray(v)) return v.length === 0 ? '(none)' : v.map((x) => value(x as ExplainValue)).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function settings(s: ExplainSettings, indent: string): string[] {
  const keys = Object.keys(s);
  const width = Math.max(0, ...keys.map((k) => k.length));
  return keys.map((k) => `${indent}${k.padEnd(width)}  ${value(s[k]!)}`);
}

function wsInspection(w: NonNullable<NonNullable<ExplainReport['route']>['websocket_inspection']>): string {
  if (!w.active) return `no effect: ${w.reason}`;
  const how = w.whole_messages ? `whole messages (fragments reassembled, at most ${w.max_message_bytes} bytes)` : `frame by frame (frames of at most ${w.max_frame_bytes} bytes)`;
  return `${how}, at most ${w.max_fragments} fragments per message; shown to ${w.filters.join(', ')}`;
}

function candidateLine(c: Candidate, idWidth: number): string {
  const head = `${c.route.padEnd(idWidth)}  priority ${String(c.priority).padStart(4)}  specificity ${String(c.specificity).padStart(5)}  `;
  switch (c.status) {
    case 'matched':
      return `  MATCH ${head}all conditions hold`;
    case 'not-reached':
      return `  ----- ${head}not evaluated (an earlier route matched)${c.would_match ? '; it would match too: shadowed' : ''}`;
    case 'other-listener':
      return `  skip  ${head}served on listener ${c.failed!.expected}, not ${c.failed!.actual}`;
    case 'failed': {
      const f = c.failed!;
      return `  no    ${head}${f.condition} ${JSON.stringify(f.expected)} failed: request has ${f.actual === null ? '(none)' : JSON.stringify(f.actual)}`;
    }
  }
}

export function renderReport(r: ExplainReport): string {
  const out: string[] = [];
  out.push(`config     ${r.config} (${r.warnings} warning${r.warnings === 1 ? '' : 's'}${r.warnings ? '; "sentinel lint" lists them' : ''})`);
  out.push(`listener   ${r.listener.id} (${r.listener.address}, ${r.listener.protocol})`);
  out.push(`request    ${r.request.method} ${r.request.target}`);
  for (const [n, v] of r.request.headers) out.push(`           ${n}: ${v}${r.request.host_defaulted && n === 'Host' && v === r.request.headers[0]![1] ? '   (no Host given: the listener address, as curl would send)' : ''}`);
  if (r.front_door) {
    out.push('');
    out.push(r.front_door.kind ? `refused by the front door: ${r.front_door.status} ${r.front_door.message} (${r.front_door.kind})` : `answered by the front door: ${r.front_door.status} ${r.front_door.message}`);
    out.push('no route is consulted.');
    return out.join('\n') + '\n';
  }
  const n = r.normalised!;
  out.push(`normalised host ${JSON.stringify(n.host)}, path ${JSON.stringify(n.path)}${n.query ? `, query ${JSON.stringify(n.query)}` : ''}`);
  if (r.probe) {
    out.push('');
    out.push(`answered by the listener's ${r.probe} probe before routing (disable-probes #true turns it off).`);
    return out.join('\n') + '\n';
  }
  out.push('');
  out.push('candidates, in evaluation order (priority, then specificity, then config order):');
  const idWidth = Math.max(0, ...r.candidates.map((c) => c.route.length));
  for (const c of r.candidates) out.push(candidateLine(c, idWidth));
  if (r.candidates.length === 0) out.push('  (no routes)');
  out.push('');
  if (r.ambiguous_query) {
    const a = r.ambiguous_query;
    const list = (v: string[]) => (v.length === 0 ? '(absent)' : v.map((x) => JSON.stringify(x)).join(', '));
    out.push(`refused right after matching: ${a.status} Bad Request (${a.kind}); no route serves it`);
    out.push(`  the routes read query parameter ${JSON.stringify(a.param)}: ${list(a.values)}${a.values_split_on_semicolon ? `; with ";" also a separator: ${list(a.values_split_on_semicolon)}` : ''}`);
    const agree = (v: string[]) => v.every((x) => x === a.values[0]);
    const oneReading = agree(a.values) && (a.values_split_on_semicolon === null || (a.values_split_on_semicolon.length === a.values.length && agree(a.values_split_on_semicolon)));
    // one reading of the name itself: another name in the query reads as it (session 31 audit)
    if (oneReading) out.push(`  another spelling of ${JSON.stringify(a.param)} in the query reads as it with another value (PHP drops leading spaces, ends a name at a NUL, reads "." and " " as "_"; ASP.NET ignores case)`);
    else out.push('  an upstream may read another value than the routes did (PHP, Rails, Django take the last; Rack and older Python split on ";")');
    return out.join('\n') + '\n';
  }
  if (!r.route) {
    out.push(`no route matches: the gateway answers ${r.not_found!.status} "${r.not_found!.message}" (the listener has no default-route).`);
    return out.join('\n') + '\n';
  }
  const d = r.route;
  out.push(r.served_by!.via === 'match' ? `route "${d.id}"` : `no route matches: the listener's default-route "${d.id}" serves it`);
  const core: Record<string, ExplainValue> = {
    'service-type': d.service_type,
    conditions: d.conditions.length ? d.conditions.map((c) => `${c.condition} ${c.expected}`) : ['(none: matches everything)'],
    ...(d.listeners ? { listeners: d.listeners } : {}),
    ...(d.allow_from ? { 'allow-from': `${d.allow_from.addresses.join(', ')}${d.allow_from.allowed === null ? ' (give --client-ip to check a client)' : d.allow_from.allowed ? ` (client ${d.allow_from.client_ip} allowed)` : ` (client ${d.allow_from.client_ip} refused: 403)`}` } : {}),
    ...(d.builtin ? { 'builtin-handler': d.builtin } : {}),
    websocket: d.websocket,
    ...(d.websocket_allowed_origins ? { 'websocket-allowed-origins': d.websocket_allowed_origins.join(', ') } : {}),
    ...(d.websocket_inspection ? { 'websocket-inspection': wsInspection(d.websocket_inspection) } : {}),
    'failure-mode': d.failure_mode,
    'max-body-bytes': d.max_body_bytes,
    ...(d.body_buffer_bytes !== undefined ? { 'max-body-buffer-bytes': d.body_buffer_bytes === 0 ? '0 (bodies stream to the upstream as they arrive)' : d.body_buffer_bytes } : {}),
    ...(d.forward_method_override ? { 'forward-method-override': `${d.forward_method_override.join(' ')} (on POST only)` } : {}),
    ...(d.get_body ? { 'get-body': `${d.get_body} (a body on GET, HEAD, DELETE, OPTIONS and the other bodiless methods is forwarded)` } : {}),
    ...(d.timeout_secs !== null ? { 'timeout-secs': d.timeout_secs } : {}),
    ...(d.request_headers ? { 'request-headers': d.request_headers } : {}),
    ...(d.response_headers ? { 'response-headers': d.response_headers } : {}),
  };
  out.push(...settings(core, '  '));
  for (const x of r.refusals) out.push(`  => answered ${x.status} before the filters: ${x.reason}`);
  const moves = r.method_overrides?.refused ?? [];
  if (moves.length > 0) {
    const list = moves.map((m) => `${m.method === '*' ? 'any other method' : m.method} (${m.route === null ? 'no route' : `route ${m.route}`})`).join(', ');
    out.push(`  method overrides: a _method in the query, a form or a JSON body naming ${list} is refused 400 (method_override); such a body over max-body-buffer-bytes 413`);
  }
  out.push('');
  out.push(d.filters.length ? 'filters, in order:' : 'filters: none');
  d.filters.forEach((f, i) => {
    out.push(`  ${i + 1}. ${f.id} (${f.type})`);
    out.push(...settings(f.settings, '       '));
  });
  for (const s of d.sections) {
    out.push('');
    out.push(`${s.title}:`);
    out.push(...settings(s.settings, '  '));
  }
  return out.join('\n') + '\n';
}
