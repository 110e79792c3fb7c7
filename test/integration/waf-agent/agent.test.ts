// sentinel-waf as a real process on a Unix socket, driven with the proxy-side protocol client:
// SQLi/XSS/traversal blocked with the X-WAF-* headers, clean traffic allowed, body attacks
// blocked on the last chunk, path exclusions, detection-only mode, Configure, audit lines.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AgentClient } from '../../../src/agent-protocol/client.ts';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import type { AgentReply } from '../../../src/agent-protocol/messages.ts';
import { requestMetadata } from './request-metadata.ts';
import { until } from '../../helpers/until.ts';
import { startWafAgentProcess, type WafAgentProcess } from '../../helpers/waf-probes.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sentinel-waf-'));

interface Agent {
  agent: WafAgentProcess;
  client: AgentClient;
  /** The agent's audit lines so far. */
  stdout: string[];
}

async function startAgent(name: string, args: string[]): Promise<Agent> {
  const socketPath = join(tmp, `${name}.sock`);
  const agent = await startWafAgentProcess(socketPath, args);
  const client = new AgentClient({
    id: name,
    socketPath,
    connections: 1,
    connectTimeoutMs: 2000,
    reconnectIntervalMs: 200,
    maxConcurrentCalls: 10,
  });
  return { agent, client, stdout: agent.stdout };
}

async function stopAgent(a: Agent | undefined): Promise<void> {
  if (!a) return;
  await a.client.close();
  await a.agent.stop();
}

let seq = 0;

const baseHeaders = {
  host: ['app.test'],
  'user-agent': ['Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0'],
  accept: ['text/html,application/xhtml+xml'],
};

async function requestHeaders(a: Agent, uri: string, headers: Record<string, string[]> = {}, method = 'GET'): Promise<{ id: string; reply: AgentReply }> {
  const id = `req-${++seq}`;
  const payload = { correlation_id: id, metadata: requestMetadata(id), method, uri, headers: { ...baseHeaders, ...headers } };
  const reply = await a.client.call(MessageType.RequestHeaders, id, payload, { timeoutMs: 10_000 });
  return { id, reply };
}

async function bodyChunk(a: Agent, id: string, data: string, index: number, last: boolean): Promise<AgentReply> {
  const payload = {
    correlation_id: id,
    data: Buffer.from(data).toString('base64'),
    is_last: last,
    total_size: null,
    chunk_index: index,
    bytes_received: data.length,
  };
  return a.client.call(MessageType.RequestBodyChunk, id, payload, { timeoutMs: 10_000 });
}

function assertBlocked(reply: AgentReply): void {
  assert.equal(reply.decision.kind, 'block', `expected a block, got ${JSON.stringify(reply.decision)}`);
  if (reply.decision.kind !== 'block') return;
  assert.equal(reply.decision.status, 403);
  // The proxy-side parser lower-cases header names.
  assert.equal(reply.decision.headers['x-waf-blocked'], 'true');
  assert.match(reply.decision.headers['x-waf-rule'] ?? '', /^9\d{5}$/);
  assert.ok(Number(reply.decision.headers['x-waf-score']) >= 5, 'score reaches the threshold');
}

describe('sentinel-waf blocking at PL1', () => {
  let a: Agent | undefined;
  before(async () => {
    a = await startAgent('block', ['--paranoia-level', '1', '--exclude-paths', '/health', '--exclusion', 'path=/search:942100,942190']);
  });
  after(() => stopAgent(a));

  test('clean GET is allowed', async () => {
    const { reply } = await requestHeaders(a!, '/products?id=42&sort=name');
    assert.equal(reply.decision.kind, 'allow');
  });

  const attacks: [string, string][] = [
    ['SQLi in the query', "/items?id=1'%20OR%20'1'='1"],
    ['UNION SELECT', '/items?id=1%20UNION%20SELECT%20password%20FROM%20users'],
    ['XSS script tag', '/search?q=%3Cscript%3Ealert(1)%3C/script%3E'],
    ['path traversal', '/files?name=../../../etc/passwd'],
    ['command injection', '/ping?host=127.0.0.1%3Bcat%20/etc/passwd'],
  ];
  for (const [name, uri] of attacks) {
    test(`${name} is blocked with X-WAF headers`, async () => {
      const { reply } = await requestHeaders(a!, uri);
      assertBlocked(reply);
      assert.ok(reply.ruleIds.length > 0);
      assert.ok(reply.tags.includes('waf-blocked'));
    });
  }

  test('XSS in a header is blocked', async () => {
    const { reply } = await requestHeaders(a!, '/', { referer: ['javascript:alert(document.cookie)//<script>alert(1)</script>'] });
    assertBlocked(reply);
  });

  test('an excluded path is not inspected', async () => {
    const { reply } = await requestHeaders(a!, "/health?id=1'%20OR%20'1'='1");
    assert.equal(reply.decision.kind, 'allow');
  });

  test('a body attack is allowed on the first chunk and blocked on the last', async () => {
    const body = 'comment=' + encodeURIComponent("x' UNION SELECT username, password FROM users--");
    const { id, reply } = await requestHeaders(
      a!,
      '/comments',
      { 'content-type': ['application/x-www-form-urlencoded'], 'content-length': [String(body.length)] },
      'POST',
    );
    assert.equal(reply.decision.kind, 'allow');
    const first = await bodyChunk(a!, id, body.slice(0, 20), 0, false);
    assert.equal(first.decision.kind, 'allow');
    assert.equal(first.needsMore, true);
    const last = await bodyChunk(a!, id, body.slice(20), 1, true);
    assertBlocked(last);
  });

  test('each block writes one JSON audit line with rule ids and truncated data', async () => {
    const before = a!.stdout.length;
    await requestHeaders(a!, '/items?id=1%20UNION%20SELECT%20password%20FROM%20users');
    await until('the audit line', () => a!.stdout.length > before);
    const line = JSON.parse(a!.stdout.at(-1)!) as { decision: string; rules: { id: number; data: string }[]; inbound_score: number };
    assert.equal(line.decision, 'block');
    assert.ok(line.rules.some((r) => r.id >= 942000 && r.id < 943000), 'an SQLi rule is named');
    assert.ok(line.rules.every((r) => r.data.length <= 203));
    assert.ok(line.inbound_score >= 5);
  });
});

describe('sentinel-waf detection-only, reconfigured at run time', () => {
  let a: Agent | undefined;
  before(async () => {
    a = await startAgent('detect', ['--detect-only']);
  });
  after(() => stopAgent(a));

  test('an attack is allowed with X-WAF-Detected request headers', async () => {
    const { reply } = await requestHeaders(a!, '/items?id=1%20UNION%20SELECT%20password%20FROM%20users');
    assert.equal(reply.decision.kind, 'allow');
    const detected = reply.requestHeaderOps.find((o) => o.name.toLowerCase() === 'x-waf-detected');
    assert.ok(detected && detected.op !== 'remove' && /\b942\d{3}\b/.test(detected.value));
  });

  test('a Configure event switches to blocking', async () => {
    const configure = await a!.client.call(MessageType.Configure, 'cfg-1', { correlation_id: 'cfg-1', agent_id: 'detect', config: { mode: 'blocking', 'paranoia-level': 1 }, config_version: '2' }, { timeoutMs: 60_000 });
    assert.equal(configure.decision.kind, 'allow');
    const { reply } = await requestHeaders(a!, '/items?id=1%20UNION%20SELECT%20password%20FROM%20users');
    assertBlocked(reply);
  });

  test('an invalid configuration is rejected and the old one kept', async () => {
    const configure = await a!.client.call(MessageType.Configure, 'cfg-2', { correlation_id: 'cfg-2', agent_id: 'detect', config: { 'paranoia-level': 9 }, config_version: '3' }, { timeoutMs: 10_000 });
    assert.equal(configure.decision.kind, 'block');
    const { reply } = await requestHeaders(a!, '/items?id=1%20UNION%20SELECT%20password%20FROM%20users');
    assertBlocked(reply);
  });
});

after(() => rmSync(tmp, { recursive: true, force: true }));

describe('sentinel-waf --extra-rules', () => {
  let a: Agent | undefined;
  before(async () => {
    a = await startAgent('extra', ['--workers', '1', '--paranoia-level', '1', '--extra-rules', 'base64,headers']);
  });
  after(() => stopAgent(a));

  test('a base64-encoded SQLi argument is blocked by the base64 set', async () => {
    const payload = encodeURIComponent(Buffer.from("1' UNION SELECT password FROM users--").toString('base64'));
    const before = a!.stdout.length;
    const { reply } = await requestHeaders(a!, `/search?data=${payload}`);
    assertBlocked(reply);
    if (reply.decision.kind === 'block') assert.equal(reply.decision.headers['x-waf-rule'], '990101');
    // stdout and the agent socket are two pipes: the reply may arrive before the audit line
    await until('the audit line', () => a!.stdout.length > before);
    const audit = JSON.parse(a!.stdout.at(-1) ?? '{}') as { rules?: { id: number }[] };
    assert.ok(audit.rules?.some((r) => r.id === 990101), 'the audit line names the extra rule');
  });

  test('SQLi in a header the CRS does not read is blocked by the headers set', async () => {
    const { reply } = await requestHeaders(a!, '/', { 'x-forwarded-host': ["1' or '1'='1"] });
    assertBlocked(reply);
  });

  test('a JWT and a UUID pass', async () => {
    const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
    const { reply } = await requestHeaders(a!, '/me?id=550e8400-e29b-41d4-a716-446655440000', { authorization: [`Bearer ${jwt}`] });
    assert.equal(reply.decision.kind, 'allow');
  });
});
