// WafService's transaction lifetime. With no event after the request-side decision subscribed
// (request_headers + request_body only, the usual WAF config), the decision must end the
// transaction: nothing else will, and kept transactions pile up to the 10,000-entry limit. With
// request_complete subscribed, the transaction stays until it, as before. The CRS is real (PL1).
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import type { RequestBodyChunkEvent, RequestHeadersEvent } from '../../../src/agent-sdk/index.ts';
import { defaultConfig, type WafAgentConfig } from '../../../src/waf/agent/config.ts';
import { requestSideOnly } from '../../../src/waf/agent/in-process.ts';
import { buildWaf, WafService, type AuditLine } from '../../../src/waf/agent/service.ts';
import { wafFromText, type Waf } from '../../../src/waf/index.ts';
import { crsDir } from '../waf-regex/crs-rules.ts';

let waf: Waf;
const config: WafAgentConfig = { ...defaultConfig(), crsDir };

before(() => {
  waf = buildWaf(config);
});

let seq = 0;
function headers(method: string, uri: string, host: string, extra: Record<string, string[]> = {}): RequestHeadersEvent {
  const id = `req-${++seq}`;
  return {
    correlation_id: id,
    metadata: { correlation_id: id, request_id: id, client_ip: '192.0.2.7', client_port: 40000, server_name: null, protocol: 'HTTP/1.1', tls_version: null, tls_cipher: null, route_id: 'r', upstream_id: null, timestamp: '2026-12-05T00:00:00Z', traceparent: null },
    method,
    uri,
    headers: { host: [host], 'user-agent': ['Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0'], accept: ['text/html'], ...extra },
  };
}

function body(id: string, text: string): RequestBodyChunkEvent {
  const b = Buffer.from(text);
  return { correlation_id: id, data: b.toString('base64'), is_last: true, total_size: b.length, chunk_index: 0, bytes_received: b.length };
}

function service(opts: { requestSideOnly: boolean; auditAll?: boolean }): { svc: WafService; audit: AuditLine[] } {
  const audit: AuditLine[] = [];
  const svc = new WafService(waf, { ...config, auditAll: opts.auditAll ?? false, requestSideOnly: opts.requestSideOnly }, (l) => audit.push(l));
  return { svc, audit };
}

const json = JSON.stringify({ order: 7, items: [{ sku: 'A-1', qty: 2 }] });
const jsonHeaders = { 'content-type': ['application/json'], 'content-length': [String(Buffer.byteLength(json))] };

describe('WafService transaction lifetime', () => {
  test('request side only: a GET decided at its headers leaves nothing pending', () => {
    const { svc, audit } = service({ requestSideOnly: true });
    for (let i = 0; i < 5; i++) assert.equal(svc.onRequestHeaders(headers('GET', `/search?q=shoes&page=${i}`, 'shop.example')).toWire('x').decision, 'allow');
    assert.equal(svc.inFlight, 0);
    assert.equal(audit.length, 0, 'clean requests are not audited without audit-all');
  });

  test('request side only: a JSON POST ends at its last body chunk, not at its headers', () => {
    const { svc } = service({ requestSideOnly: true });
    const h = headers('POST', '/api/orders', 'shop.example', jsonHeaders);
    svc.onRequestHeaders(h);
    assert.equal(svc.inFlight, 1, 'waiting for the body');
    assert.equal(svc.onRequestBodyChunk(body(h.correlation_id, json)).toWire('x').decision, 'allow');
    assert.equal(svc.inFlight, 0);
  });

  test('request side only: a detection below the threshold is reported and audited at the decision', () => {
    const { svc, audit } = service({ requestSideOnly: true });
    // 920350: the Host header is a numeric IP address (score 3, threshold 5: detected, allowed).
    const h = headers('GET', '/search?q=shoes', '192.0.2.1:8080');
    const wire = svc.onRequestHeaders(h).toWire(h.correlation_id) as { decision: string; request_headers?: { name?: string; value?: string }[] };
    assert.equal(wire.decision, 'allow');
    assert.match(JSON.stringify(wire), /X-WAF-Detected/);
    assert.equal(svc.inFlight, 0);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.decision, 'detect');
    assert.equal(audit[0]!.phase, 'request_headers');
    assert.deepEqual(audit[0]!.rules.map((r) => r.id), [920350]);
    // A request_complete that arrives anyway finds nothing and audits nothing twice.
    svc.onRequestComplete({ correlation_id: h.correlation_id, status: 200, duration_ms: 1, request_body_size: 0, response_body_size: 0, upstream_attempts: 1, error: null });
    assert.equal(audit.length, 1);
  });

  test('request side only with audit-all: a clean request gets its allow line at the decision', () => {
    const { svc, audit } = service({ requestSideOnly: true, auditAll: true });
    svc.onRequestHeaders(headers('GET', '/search?q=shoes', 'shop.example'));
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.decision, 'allow');
  });

  test('request side only: a rule that logs only in the logging phase is audited at the decision, without a detection header', () => {
    // The decision is taken before phases 3-5 run (nothing logged yet: no X-WAF-Detected), then
    // the logging phases run and their logged match gets the request's audit line.
    const late = wafFromText(`SecRuleEngine On\nSecRule REQUEST_METHOD "@streq GET" "id:900990,phase:5,pass,log,severity:2,msg:'late'"\nSecRule ARGS:early "@streq 1" "id:900991,phase:2,pass,log,severity:2,msg:'early'"`);
    const audit: AuditLine[] = [];
    const svc = new WafService(late, { ...config, auditAll: false, requestSideOnly: true }, (l) => audit.push(l));
    const wire = svc.onRequestHeaders(headers('GET', '/search?q=shoes', 'shop.example')).toWire('x');
    assert.equal(wire.decision, 'allow');
    assert.doesNotMatch(JSON.stringify(wire), /X-WAF-Detected/);
    assert.equal(svc.inFlight, 0);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.decision, 'detect');
    assert.equal(audit[0]!.phase, 'request_headers');
    assert.equal(audit[0]!.uri, '/search?q=shoes');
    assert.equal(audit[0]!.client_ip, '192.0.2.7');
    assert.deepEqual(audit[0]!.rules.map((r) => r.id), [900990]);
    // a match before the decision: the header, and one line with both rules
    const wire2 = svc.onRequestHeaders(headers('GET', '/search?early=1', 'shop.example')).toWire('x');
    assert.match(JSON.stringify(wire2), /X-WAF-Detected/);
    assert.equal(audit.length, 2);
    assert.deepEqual(audit[1]!.rules.map((r) => r.id), [900991, 900990]);
    // another method: nothing matches, nothing audited
    svc.onRequestHeaders(headers('HEAD', '/search?q=shoes', 'shop.example'));
    assert.equal(audit.length, 2);
  });

  test('request side only: a blocked request leaves nothing pending', () => {
    const { svc, audit } = service({ requestSideOnly: true });
    const wire = svc.onRequestHeaders(headers('GET', "/items?id=1'+OR+'1'='1", 'shop.example')).toWire('x') as { decision: unknown };
    assert.notEqual(wire.decision, 'allow');
    assert.equal(svc.inFlight, 0);
    assert.equal(audit[0]?.decision, 'block');
  });

  test('with later events subscribed: the transaction stays until request_complete, which audits with the status', () => {
    const { svc, audit } = service({ requestSideOnly: false });
    const h = headers('GET', '/search?q=shoes', '192.0.2.1:8080');
    svc.onRequestHeaders(h);
    assert.equal(svc.inFlight, 1);
    assert.equal(audit.length, 0, 'blocking mode audits a detection at completion');
    svc.onRequestComplete({ correlation_id: h.correlation_id, status: 200, duration_ms: 1, request_body_size: 0, response_body_size: 0, upstream_attempts: 1, error: null });
    assert.equal(svc.inFlight, 0);
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.status, 200);
    assert.equal(audit[0]!.decision, 'detect');
  });
});

describe('requestSideOnly(events)', () => {
  const cases: [string[] | undefined, boolean][] = [
    [['request_headers'], true],
    [['request_headers', 'request_body'], true],
    [['request_headers', 'request_body', 'request_complete'], false],
    [['request_headers', 'response_headers'], false],
    [['request_headers', 'response_body'], false],
    [undefined, false],
  ];
  for (const [events, want] of cases) {
    test(`${events?.join(',') ?? 'unknown'} -> ${want}`, () => assert.equal(requestSideOnly(events && new Set(events)), want));
  }
});
