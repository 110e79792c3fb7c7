// Every audit event kind from a real gateway (docs/core.md "Audit log"): requests refused by the
// gateway itself (blocked, with the reason), agent decisions, WAF matches and blocks with the
// agent's rule ids, rate-limit rejections, mTLS client identities, config and certificate
// reloads, upstream and agent breaker changes, cache purges and admin builtin use. The events
// are read back from the audit file the gateway wrote; then the same kinds through a real
// rsyslogd (RFC 5424 MSGID = event type, WAF blocks at severity warning).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, closedPort, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { freePort } from '../../helpers/redis.ts';
import { until } from '../../helpers/until.ts';
import { startRsyslog, type Rsyslog } from '../../helpers/rsyslog.ts';
import { Pki, type Issued, type TestCa } from '../../helpers/pki.ts';
import { allow, block, runAgent, type RunningAgent } from '../../../src/agent-sdk/index.ts';
import { AUDIT_EVENT_TYPES } from '../../../src/logging/audit.ts';

type Event = Record<string, unknown>;

let dir: string;
let up: TestUpstream;
let judge: RunningAgent;
let pki: Pki;
let ca: TestCa;
let server: Issued;
let client: Issued;
/** signed by a CA the gateway does not trust: refused where client-auth is required */
let stranger: Issued;
let deadPort: number;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sau-'));
  up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=300' });
    res.end('ok');
  });
  deadPort = await closedPort();
  // The WAF-like agent: its verdict comes from a request header.
  judge = await runAgent({
    socketPath: join(dir, 'judge.sock'),
    name: 'judge',
    log: () => undefined,
    onRequestHeaders(event) {
      const verdict = event.headers['x-verdict']?.[0];
      if (verdict === 'waf-block') return block(403, 'blocked by the WAF').ruleId('942100', '942190').tag('attack-sqli').reasonCode('WAF_BLOCKED');
      if (verdict === 'waf-detect') return allow().ruleId('920350').tag('waf-detected');
      if (verdict === 'deny') return block(403, 'no');
      return allow();
    },
  });
  pki = await Pki.create();
  ca = await pki.ca('audit-ca');
  server = await ca.issue('audit-server', { cn: 'localhost', dns: ['localhost'], ip: ['127.0.0.1'], usage: 'server' });
  client = await ca.issue('audit-client', { cn: 'svc-billing', usage: 'client' });
  stranger = await (await pki.ca('other-ca')).issue('audit-stranger', { cn: 'mallory', usage: 'client' });
});

after(async () => {
  await judge?.close();
  await up?.close();
  await pki?.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(sink: string): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
limits { max-body-size-bytes 1000 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "admin" { address "127.0.0.1:0" }
  listener "mtls" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "${server.cert}"; key-file "${server.key}"; ca-file "${ca.cert}" } }
  listener "strict" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "${server.cert}"; key-file "${server.key}"; ca-file "${ca.cert}"; client-auth #true } }
}
agents {
  agent "judge" { unix-socket "${join(dir, 'judge.sock')}"; events "request_headers"; timeout-ms 2000 }
  agent "gone" { unix-socket "${join(dir, 'gone.sock')}"; events "request_headers"; timeout-ms 300; circuit-breaker { failure-threshold 2; timeout-seconds 60 }; pool { reconnect-interval-ms 100 } }
}
filters {
  filter "judge" { type "agent"; agent "judge"; failure-mode "closed" }
  filter "gone" { type "agent"; agent "gone"; failure-mode "open" }
  filter "rl" { type "rate-limit"; max-rps 0.1; burst 1 }
}
cache { enabled #true; purge-allow "10.1.1.1" }
routes {
  route "config" { listeners "admin"; matches { path "/admin/config" }; builtin-handler "config" }
  route "purge" { listeners "admin"; matches { path-prefix "/admin/purge" }; builtin-handler "cache-purge" }
  route "status-page" { listeners "admin"; matches { path-prefix "/_/status" }; builtin-handler "status-page" }
  route "private" { listeners "http"; matches { path-prefix "/private" }; upstream "backend"; allow-from "10.9.9.9" }
  route "judged" { listeners "http" "mtls"; matches { path-prefix "/judged" }; upstream "backend"; filters "judge" }
  route "agentless" { listeners "http"; matches { path-prefix "/agentless" }; upstream "backend"; filters "gone" }
  route "limited" { listeners "http"; matches { path-prefix "/limited" }; upstream "backend"; filters "rl" }
  route "cached" { listeners "http"; matches { path-prefix "/cached" }; upstream "backend"; cache { enabled #true } }
  route "dead" { listeners "http"; matches { path-prefix "/dead" }; upstream "dead" }
  route "main" { listeners "http" "mtls" "strict"; matches { path-prefix "/" }; upstream "backend" }
}
upstreams {
  upstream "backend" { target "${up.address}" }
  upstream "dead" { target "127.0.0.1:${deadPort}"; circuit-breaker { failure-threshold 1; timeout-seconds 60 } }
}
observability { logging { audit-log { ${sink} } } }
`;
}

function mtlsGet(port: number, path: string, cert: Issued | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path,
        ca: readFileSync(ca.cert),
        servername: 'localhost',
        agent: false,
        ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Traffic that produces one of every event kind. */
async function produceEvents(url: (l?: string) => string, port: (l: string) => number, reload: (text?: string) => Promise<void>, text: string): Promise<void> {
  const http = url('http');
  const admin = url('admin');
  assert.equal((await request(`${http}/private/x`)).status, 403, 'allow-from refuses');
  assert.equal((await request(`${http}/upload`, { method: 'POST', headers: { 'content-length': '5000' }, body: 'x'.repeat(5000) }).catch(() => ({ status: 413 }))).status, 413);
  assert.equal((await request(`${http}/judged/a`, { headers: { 'x-verdict': 'waf-block' } })).status, 403);
  assert.equal((await request(`${http}/judged/b`, { headers: { 'x-verdict': 'waf-detect' } })).status, 200);
  assert.equal((await request(`${http}/judged/c`, { headers: { 'x-verdict': 'deny' } })).status, 403);
  for (let i = 0; i < 3; i++) assert.equal((await request(`${http}/agentless/${i}`)).status, 200, 'failure-mode open');
  assert.equal((await request(`${http}/limited/1`)).status, 200);
  assert.equal((await request(`${http}/limited/2`)).status, 429);
  assert.equal((await request(`${http}/cached/a`)).status, 200);
  assert.equal((await request(`${http}/cached/a`, { method: 'PURGE' })).status, 403, 'not in purge-allow');
  assert.equal((await request(`${admin}/admin/purge/cached/a`, { method: 'POST' })).status, 200);
  assert.equal((await request(`${admin}/admin/config`)).status, 200);
  assert.equal((await request(`${admin}/_/status`, { headers: { accept: 'text/html' } })).status, 200);
  assert.equal((await request(`${admin}/_/status?format=json`)).status, 200, 'a JSON poll: not audited');
  // 502, or 503 when the retry finds the only target's breaker already open
  assert.match(String((await request(`${http}/dead/x`)).status), /^50[23]$/);
  assert.equal(await mtlsGet(port('mtls'), '/judged/m', client), 200);
  assert.equal(await mtlsGet(port('mtls'), '/plain', undefined), 200, 'optional client certificate');
  await assert.rejects(mtlsGet(port('strict'), '/plain', stranger), 'a certificate from another CA is refused in the handshake');
  await assert.rejects(reload('routes { not valid'));
  await reload(text);
}

function check(events: Event[]): void {
  const of = (type: string, pred: (e: Event) => boolean = () => true) => events.filter((e) => e.event_type === type && pred(e));
  const one = (type: string, pred: (e: Event) => boolean, what: string) => {
    const found = of(type, pred);
    assert.equal(found.length, 1, `${what}: ${JSON.stringify(of(type))}`);
    return found[0]!;
  };
  for (const e of events) {
    assert.ok((AUDIT_EVENT_TYPES as readonly string[]).includes(String(e.event_type)), `known type: ${JSON.stringify(e)}`);
    assert.equal(typeof e.timestamp, 'string');
  }

  const denied = one('blocked', (e) => e.reason === 'client_not_allowed', 'allow-from');
  assert.equal(denied.route_id, 'private');
  assert.equal(denied.status_code, 403);
  assert.equal(denied.path, '/private/x');
  assert.equal(denied.method, 'GET');
  assert.equal(denied.client_ip, '127.0.0.1');
  assert.equal(typeof denied.trace_id, 'string');
  assert.equal(one('blocked', (e) => e.reason === 'body_size_exceeded', 'body size').status_code, 413);
  const purgeDenied = one('blocked', (e) => e.reason === 'cache_purge_denied', 'PURGE refused');
  assert.equal(purgeDenied.route_id, 'cached');
  assert.equal(purgeDenied.method, 'PURGE');

  const wafBlock = one('waf_block', () => true, 'WAF block');
  assert.deepEqual(wafBlock.rule_ids, ['942100', '942190']);
  assert.deepEqual(wafBlock.tags, ['attack-sqli']);
  assert.equal(wafBlock.reason, 'WAF_BLOCKED');
  assert.equal(wafBlock.agent_id, 'judge');
  assert.equal(wafBlock.action, 'block');
  assert.equal(wafBlock.status_code, 403);
  assert.equal(wafBlock.route_id, 'judged');
  assert.equal(wafBlock.path, '/judged/a');
  const wafMatch = one('waf_match', () => true, 'WAF detection');
  assert.deepEqual(wafMatch.rule_ids, ['920350']);
  assert.equal(wafMatch.action, 'allow');
  assert.equal(wafMatch.path, '/judged/b');
  const decision = one('agent_decision', (e) => e.path === '/judged/c', 'agent block without rules');
  assert.equal(decision.action, 'block');
  assert.equal(decision.agent_id, 'judge');
  // one event per refused request: no extra `blocked` for what the agent or the limiter audited
  assert.equal(of('blocked', (e) => String(e.path).startsWith('/judged') || String(e.path).startsWith('/limited')).length, 0);

  const limited = one('rate_limit_exceeded', () => true, 'rate limit');
  assert.equal(limited.route_id, 'limited');
  assert.equal(limited.action, 'reject');
  assert.equal(limited.status_code, 429);
  assert.deepEqual(limited.metadata, { filter: 'rl', key: 'client-ip', limit: 1 });

  const agentBreaker = one('circuit_breaker_change', (e) => e.component === 'agent:gone' && e.to === 'open', 'agent breaker');
  assert.equal(agentBreaker.from, 'closed');
  const upstreamBreaker = one('circuit_breaker_change', (e) => e.upstream === 'dead', 'upstream breaker');
  assert.equal(upstreamBreaker.to, 'open');
  assert.equal(upstreamBreaker.target, `127.0.0.1:${deadPort}`);

  const purge = one('cache_purge', () => true, 'cache purge');
  assert.equal(purge.pattern, '/cached/a');
  assert.equal(purge.purged_entries, 1);
  assert.equal(purge.route_id, 'purge');
  assert.equal(purge.client_ip, '127.0.0.1');

  assert.deepEqual(
    of('admin_action').map((e) => [e.action, e.route_id, e.listener]),
    [
      ['config', 'config', 'admin'],
      ['status-page', 'status-page', 'admin'],
    ],
  );

  const identity = one('auth_event', (e) => e.result === 'authenticated', 'mTLS identity (the anonymous client has none)');
  assert.equal(identity.action, 'mtls');
  assert.equal(identity.result, 'authenticated');
  assert.equal(identity.user_id, 'CN=svc-billing');
  assert.equal(identity.listener, 'mtls');
  assert.equal(identity.client_ip, '127.0.0.1');
  assert.match(String((identity.metadata as Event).fingerprint256), /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  const refused = one('auth_event', (e) => e.result === 'rejected', 'refused client certificate');
  assert.equal(refused.listener, 'strict');
  assert.equal(refused.client_ip, '127.0.0.1');
  assert.match(String(refused.reason), /CERT|ISSUER|SIGNATURE/);
  assert.equal(of('auth_event').length, 2);

  const reloads = of('config_change').map((e) => e.action);
  assert.deepEqual(reloads, ['reload_started', 'reload_failed', 'reload_started', 'reload_success']);
  const ok = one('config_change', (e) => e.action === 'reload_success', 'reload success');
  assert.equal(ok.generation, 2);
  assert.equal(typeof ok.duration_ms, 'number');
  assert.match(String(one('config_change', (e) => e.action === 'reload_failed', 'reload failure').reason), /.+/);
  const cert = one('cert_reload', (e) => e.listener === 'mtls', 'certificate reload with the config reload');
  assert.equal(cert.result, 'success');
  assert.deepEqual((cert.certificates as Event[]).map((c) => c.subject), ['CN=localhost']);
  assert.equal(of('cert_reload').length, 2, 'one per TLS listener');

  const seen = new Set(events.map((e) => e.event_type));
  assert.deepEqual(
    AUDIT_EVENT_TYPES.filter((t) => !seen.has(t)),
    [],
    'every kind was produced',
  );
}

test('every audit event kind, structured, in the audit file', async () => {
  const file = join(dir, 'audit.log');
  const text = config(`file "${file}"`);
  const { gw, url } = await gatewayFrom(text);
  try {
    await produceEvents(url, (l) => gw.address(l).port, (t) => gw.reload(t), text);
  } finally {
    await gw.close(); // flushes the file
  }
  // the file sink writes asynchronously even after close: wait (bounded) for the last events (the certificate reloads)
  let events: Event[] = [];
  const read = () => (events = readFileSync(file, 'utf8').split('\n').filter((l) => l.endsWith('}')).map((l) => JSON.parse(l) as Event));
  await until('two cert_reload events', () => read().filter((e) => e.event_type === 'cert_reload').length >= 2).catch(() => undefined); // check() says what is missing
  fileEvents = events.length;
  check(events);
  assert.doesNotMatch(await gw.metrics.render(), /sentinel_audit_dropped_total\{sink="file"\} [1-9]/);
});

let rsyslog: Rsyslog | undefined;
/** how many events the same traffic wrote to the file (the syslog run waits for as many) */
let fileEvents = 0;
after(async () => {
  await rsyslog?.stop();
});

test('the same events through a real rsyslogd over TCP: MSGID is the type, WAF blocks are warnings', async () => {
  const port = await freePort();
  rsyslog = await startRsyslog(() => `module(load="imtcp")\ninput(type="imtcp" address="127.0.0.1" port="${port}" ruleset="audit")`, port);
  const host = 'sentinel-audit-kinds';
  const text = config(`syslog { address "127.0.0.1:${port}"; protocol "tcp"; facility "local4"; hostname "${host}" }`);
  const { gw, url } = await gatewayFrom(text);
  try {
    await produceEvents(url, (l) => gw.address(l).port, (t) => gw.reload(t), text);
  } finally {
    await gw.close();
  }
  // the same traffic as the file test: wait (bounded) for as many events
  const all = await rsyslog.received(host, fileEvents || 25);
  const events = all.map((r) => r.event);
  check(events);
  for (const r of all) {
    assert.equal(r.msgId, r.event.event_type);
    const severity = r.pri - 20 * 8;
    const warning = r.msgId === 'waf_block' || r.event.action === 'reload_failed' || r.event.result === 'rejected' || (r.msgId === 'circuit_breaker_change' && r.event.to === 'open');
    assert.equal(severity, warning ? 4 : 5, `${r.msgId} ${JSON.stringify(r.event)}`);
  }
});
