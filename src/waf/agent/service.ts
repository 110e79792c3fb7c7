// The WAF agent's request handling, independent of the socket: one engine transaction per
// correlation id, fed by the agent protocol events, answered with allow/block decisions and
// one JSON audit line per decided request.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { allow, block, type Decision } from '../../agent-sdk/index.ts';
import type {
  RequestBodyChunkEvent,
  RequestCompleteEvent,
  RequestHeadersEvent,
  ResponseBodyChunkEvent,
  ResponseHeadersEvent,
} from '../../agent-sdk/index.ts';
import { RequestHeadersMessage } from '../../agent-protocol/messages.ts';
import { extraRulesText } from '../extra/index.ts';
import { splitExclusions } from '../tune/index.ts';
import { defaultCrsDir, loadWaf, type Intervention, type MatchedRule, type Transaction, type Waf } from '../index.ts';
import { stdoutLines } from './audit-writer.ts';
import { PendingTransactions } from './pending.ts';
import type { WafAgentConfig } from './config.ts';

/** Rules that only evaluate or report the anomaly score (not a detection of their own). */
const SCORING_RULES = /^9(?:49|59|80)\d{3}$/;
const MAX_DATA = 200;
const NO_DETECTIONS: readonly MatchedRule[] = Object.freeze([]);

export interface AuditLine {
  ts: string;
  correlation_id: string;
  decision: 'block' | 'allow' | 'detect';
  phase: string;
  client_ip: string;
  method: string;
  uri: string;
  status?: number;
  inbound_score: number;
  outbound_score: number;
  /** `var`: the first matched variable (e.g. "ARGS:q"), what `sentinel-waf tune` excludes. */
  rules: { id: number; msg: string; data: string; var?: string; severity?: number; tags: string[] }[];
}

interface Pending {
  tx: Transaction;
  clientIp: string;
  method: string;
  uri: string;
  bodyBytes: number;
  responseBodyBytes: number;
  inspectResponse: boolean;
  audited: boolean;
}

export function buildWaf(c: WafAgentConfig): Waf {
  const rulesDir = c.rulesDir ?? join(c.crsDir ?? defaultCrsDir(), 'rules');
  // A missing exclusions file is an empty one: the agent may start before `tune` wrote it.
  const excl = c.exclusionsFile && existsSync(c.exclusionsFile) ? splitExclusions(readFileSync(c.exclusionsFile, 'utf8'), c.exclusionsFile) : { before: '', after: '' };
  return loadWaf({
    directives: `${extraRulesText(c.extraRules, rulesDir)}${excl.before}`,
    afterDirectives: excl.after,
    mode: c.mode,
    crsDir: c.crsDir,
    rulesDir: c.rulesDir,
    paranoiaLevel: c.paranoiaLevel,
    inboundThreshold: c.inboundThreshold,
    outboundThreshold: c.outboundThreshold,
    exclusions: {
      ruleIds: c.disabledRuleIds,
      tags: c.disabledTags,
      scoped: c.exclusions.map((e) => ({ pathPrefix: e.path, host: e.host, ruleIds: e.ruleIds, tags: e.tags })),
    },
  });
}

export class WafService {
  private readonly pending = new PendingTransactions<Pending>(10_000, 5 * 60_000);
  private warnedLateEvent = false;

  constructor(
    private waf: Waf,
    private config: WafAgentConfig,
    private readonly audit: (line: AuditLine) => void = (l) => stdoutLines().write(JSON.stringify(l)),
  ) {}

  /** Swaps in a new configuration and rule set (in-flight requests finish on the old one). */
  reconfigure(waf: Waf, config: WafAgentConfig): void {
    this.waf = waf;
    this.config = config;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  onRequestHeaders(ev: RequestHeadersEvent): Decision {
    const excluded = this.config.excludePaths;
    if (excluded.length > 0) {
      const path = ev.uri.split('?')[0]!;
      if (excluded.some((p) => path.startsWith(p))) return allow().tag('waf-excluded-path');
    }
    const headers = headerList(ev);
    const tx = this.waf.newTransaction({
      clientIp: ev.metadata.client_ip,
      clientPort: ev.metadata.client_port,
      serverPort: 0,
      method: ev.method,
      uri: ev.uri,
      protocol: normaliseProtocol(ev.metadata.protocol),
      headerList: headers,
    });
    const it = tx.processRequestHeaders();
    if (it) return this.finish(ev.correlation_id, this.pendingOf(ev, tx), it, 'request_headers');
    if (this.config.inspectRequestBody && declaresBody(headers)) {
      this.pending.set(ev.correlation_id, this.pendingOf(ev, tx));
      return allow();
    }
    // No body to wait for: phase 2 runs now so argument rules see the query string.
    const body = tx.processRequestBody();
    // With request-side-only the decision ends the transaction: it is kept for later events only
    // when some can come.
    if (!this.config.requestSideOnly) {
      const p = this.pendingOf(ev, tx);
      this.pending.set(ev.correlation_id, p);
      return this.decide(ev.correlation_id, p, body, 'request_headers');
    }
    if (body !== undefined || tx.loggedMatches !== 0 || this.config.auditAll) return this.decide(ev.correlation_id, this.pendingOf(ev, tx), body, 'request_headers');
    // Nothing that logs matched (a benign request): decide() would add no header, and after the
    // logging phases write an audit line only if one of those logged. No Pending record for it.
    this.pending.delete(ev.correlation_id);
    tx.processLogging();
    if (tx.loggedMatches !== 0) this.writeAudit(ev.correlation_id, this.pendingOf(ev, tx), 'allow', 'request_headers');
    return allow();
  }

  /** The record of a transaction kept between events or audited. */
  private pendingOf(ev: RequestHeadersEvent, tx: Transaction): Pending {
    return {
      tx,
      clientIp: ev.metadata.client_ip,
      method: ev.method,
      uri: ev.uri,
      bodyBytes: 0,
      responseBodyBytes: 0,
      inspectResponse: this.config.inspectResponseBody,
      audited: false,
    };
  }

  onRequestBodyChunk(ev: RequestBodyChunkEvent): Decision {
    const p = this.pending.get(ev.correlation_id);
    if (!p) return allow();
    const data = Buffer.from(ev.data, 'base64');
    const room = this.config.maxBodyBytes - p.bodyBytes;
    // A body past max-body-size is refused when blocking, as SecRequestBodyLimitAction Reject does
    // past SecRequestBodyLimit: its first bytes inspected and the rest let through, an attack padded
    // past the agent's limit reached the upstream wherever the gateway sends more (session 25).
    if (data.length > room && p.tx.engineMode === 'On') return this.finish(ev.correlation_id, p, { status: 413, ruleId: 0, action: 'deny' }, 'request_body');
    if (room > 0) {
      const it = p.tx.appendRequestBody(data.length > room ? data.subarray(0, room) : data);
      p.bodyBytes += Math.min(room, data.length);
      if (it) return this.finish(ev.correlation_id, p, it, 'request_body');
    }
    if (!ev.is_last) return allow().needsMore();
    return this.decide(ev.correlation_id, p, p.tx.processRequestBody(), 'request_body');
  }

  onResponseHeaders(ev: ResponseHeadersEvent): Decision {
    const p = this.pending.get(ev.correlation_id);
    if (!p) return this.lateEvent('response_headers');
    const headers = listPairs(ev.headers);
    const it = p.tx.processResponseHeaders(ev.status, headers);
    if (it) return this.finish(ev.correlation_id, p, it, 'response_headers');
    if (!p.inspectResponse || !p.tx.inspectsResponseBody) return this.decide(ev.correlation_id, p, p.tx.processResponseBody(), 'response_headers');
    return allow();
  }

  onResponseBodyChunk(ev: ResponseBodyChunkEvent): Decision {
    const p = this.pending.get(ev.correlation_id);
    if (!p) return allow();
    const data = Buffer.from(ev.data, 'base64');
    const room = this.config.maxBodyBytes - p.responseBodyBytes;
    if (room > 0) {
      p.tx.appendResponseBody(data.length > room ? data.subarray(0, room) : data);
      p.responseBodyBytes += Math.min(room, data.length);
    }
    if (!ev.is_last) return allow().needsMore();
    return this.decide(ev.correlation_id, p, p.tx.processResponseBody(), 'response_body');
  }

  onRequestComplete(ev: RequestCompleteEvent): Decision {
    const p = this.pending.get(ev.correlation_id);
    if (!p) return this.lateEvent('request_complete');
    this.pending.delete(ev.correlation_id);
    p.tx.processLogging();
    if (!p.audited) this.writeAudit(ev.correlation_id, p, 'allow', 'complete', ev.status);
    return allow();
  }

  /** An event for a transaction the request-side decision already ended: the config contradicts the subscriptions. */
  private lateEvent(name: string): Decision {
    if (this.config.requestSideOnly && !this.warnedLateEvent) {
      this.warnedLateEvent = true;
      process.stderr.write(`sentinel-waf: received ${name} although request-side-only is set: response phases and completion audit lines are skipped; subscribe only request_headers and request_body, or turn request-side-only off\n`);
    }
    return allow();
  }

  /** Allow (with detection headers) or block, and audit when rules matched. */
  private decide(id: string, p: Pending, it: Intervention | undefined, phase: string): Decision {
    if (it) return this.finish(id, p, it, phase);
    const detections = this.detections(p.tx);
    let decision = allow();
    if (detections.length > 0) {
      if (!p.audited && p.tx.engineMode !== 'On') this.writeAudit(id, p, 'detect', phase);
      decision = decision
        .addRequestHeader('X-WAF-Detected', detections.map((m) => m.id).join(','))
        .addRequestHeader('X-WAF-Score', String(this.score(p.tx).inbound))
        .tag('waf-detected')
        .ruleId(...detections.map((m) => String(m.id)));
    }
    // The request-side decision is the last event this transaction sees: end it as
    // onRequestComplete does (without the response status, which nobody sends).
    if (this.config.requestSideOnly && phase.startsWith('request')) {
      this.pending.delete(id);
      p.tx.processLogging();
      if (!p.audited) this.writeAudit(id, p, 'allow', phase);
    }
    return decision;
  }

  private finish(id: string, p: Pending, it: Intervention, phase: string): Decision {
    p.tx.processLogging();
    this.pending.delete(id);
    const detections = this.detections(p.tx);
    const first = detections[0]?.id ?? it.ruleId;
    const score = this.score(p.tx);
    this.writeAudit(id, p, 'block', phase, it.status);
    const status = it.action === 'deny' || it.action === 'drop' ? it.status : 403;
    return block(status, 'Forbidden', {
      'X-WAF-Blocked': 'true',
      'X-WAF-Rule': String(first),
      'X-WAF-Score': String(phase.startsWith('response') ? score.outbound : score.inbound),
    })
      .tag('waf-blocked')
      .ruleId(...detections.map((m) => String(m.id)))
      .reasonCode('WAF_BLOCKED');
  }

  private detections(tx: Transaction): readonly MatchedRule[] {
    // A benign request has no logged match: no list and no filter pass (asked twice a decision).
    if (tx.loggedMatches === 0) return NO_DETECTIONS;
    return tx.matchedRules().filter((m) => !SCORING_RULES.test(String(m.id)) && m.id >= 900000 && m.severity !== undefined);
  }

  private score(tx: Transaction): { inbound: number; outbound: number } {
    return {
      inbound: Number(tx.getTx('blocking_inbound_anomaly_score') ?? 0) || 0,
      outbound: Number(tx.getTx('blocking_outbound_anomaly_score') ?? 0) || 0,
    };
  }

  private writeAudit(id: string, p: Pending, decision: AuditLine['decision'], phase: string, status?: number): void {
    const rules = this.detections(p.tx);
    if (decision === 'allow' && rules.length === 0 && !this.config.auditAll) return;
    p.audited = true;
    const score = this.score(p.tx);
    const line: AuditLine = {
      ts: new Date().toISOString(),
      correlation_id: id,
      decision: decision === 'allow' && rules.length > 0 ? 'detect' : decision,
      phase,
      client_ip: p.clientIp,
      method: p.method,
      uri: truncate(p.uri, 512),
      inbound_score: score.inbound,
      outbound_score: score.outbound,
      rules: rules.map((m) => ({
        id: m.id,
        msg: m.msg,
        data: truncate(m.logdata || (m.matched[0] ? `${m.matched[0].variable}: ${m.matched[0].value}` : ''), MAX_DATA),
        ...(m.matched[0] ? { var: truncate(m.matched[0].variable, MAX_DATA) } : {}),
        ...(m.severity === undefined ? {} : { severity: m.severity }),
        tags: m.tags.filter((t) => t.startsWith('attack-') || t.startsWith('paranoia-level/')),
      })),
    };
    if (status !== undefined) line.status = status;
    this.audit(line);
  }
}

/**
 * A request_headers event's headers as the engine's flat list (name, value, name, value, ...):
 * `ev.headers` flattened in its order. One array a request, not one a header (the pairs were 8
 * arrays for a browser GET's 7 headers). In-process the event is the gateway's
 * RequestHeadersMessage: when every raw name is already in the agent form (lower case, as Node
 * gives them) the list is read from the raw headers, without the agent-form object and its lists
 * (toHeaderValues).
 */
export function headerList(ev: RequestHeadersEvent): string[] {
  if (!(ev instanceof RequestHeadersMessage)) return flatList(ev.headers);
  const raw = ev.rawHeaders;
  const out: string[] = [];
  for (const name in raw) {
    const v = raw[name];
    if (v === undefined) continue;
    if (!lowerCase(name)) return flatList(ev.headers);
    if (typeof v === 'string') out.push(name, v);
    else if (Array.isArray(v)) for (const x of v) out.push(name, String(x));
    else out.push(name, String(v));
  }
  return out;
}

/** No upper-case ASCII letter (toLowerCase would keep the name as it is: it is its own agent-form key). */
function lowerCase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) return false;
    // outside ASCII, toLowerCase has its own rules: let it decide
    if (c > 0x7f) return name === name.toLowerCase();
  }
  return true;
}

/** A `content-length` other than "0" or a `transfer-encoding` in a flat header list (a loop: no closure per event). */
export function declaresBody(headers: readonly string[]): boolean {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const k = headers[i]!;
    if ((k === 'content-length' && headers[i + 1] !== '0') || k === 'transfer-encoding') return true;
  }
  return false;
}

/** Agent-form headers (name -> values) as one flat list, in order. */
function flatList(headers: Record<string, string[]>): string[] {
  const out: string[] = [];
  for (const name of Object.keys(headers)) for (const v of headers[name]!) out.push(name, v);
  return out;
}

/** Agent-form headers (name -> values) as (name, value) pairs, in order. */
function listPairs(headers: Record<string, string[]>): [string, string][] {
  const out: [string, string][] = [];
  for (const name of Object.keys(headers)) for (const v of headers[name]!) out.push([name, v]);
  return out;
}

function truncate(s: string, n: number): string {
  // Latin1 "binary" strings may hold UTF-8 bytes; the audit line is JSON text either way.
  return s.length > n ? `${s.slice(0, n)}...` : s;
}

/** The proxy reports "HTTP/1.1", "HTTP/2" or "h2"; CRS expects the HTTP/x form. */
export function normaliseProtocol(p: string): string {
  // the gateway's own labels (protocolLabel) as they are: no regex and no new string per event
  if (p === 'HTTP/1.1' || p === 'HTTP/2.0' || p === 'HTTP/1.0') return p;
  if (/^HTTP\//i.test(p)) return p.toUpperCase();
  if (p === 'h2' || p === 'h2c') return 'HTTP/2.0';
  if (p === 'h3') return 'HTTP/3.0';
  return p || 'HTTP/1.1';
}
