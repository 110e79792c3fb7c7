// The tuning workflow end to end, on real processes: sentinel-waf blocks (false positives
// stand-in: SQLi-looking values in one argument on one path), its audit lines go to a file,
// `sentinel-waf tune --from audit.log --out exclusions.conf` proposes exclusions by rule, path and
// argument with counts, and the running agent picks the file up (file watch) without a restart:
// the excluded (path, argument) passes, the same value elsewhere is still blocked. It runs with one
// engine process and with two (--workers 2): each worker polls the file and reloads on its own, so
// the test waits for every worker's reload and sends concurrent calls over one connection per worker.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AgentClient } from '../../../src/agent-protocol/client.ts';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import type { AgentReply } from '../../../src/agent-protocol/messages.ts';
import { startWafAgentProcess, type WafAgentProcess } from '../../helpers/waf-probes.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const bin = join(repoRoot, 'bin', 'sentinel-waf.mjs');
let tmp = '';
let exclusions = '';
let agent: WafAgentProcess | undefined;
let client: AgentClient | undefined;

/** How often `line` appears in the agent's stderr from `from` on (one line per worker). */
function count(line: string, from = 0): number {
  return (agent?.stderr() ?? '').slice(from).split(line).length - 1;
}

async function waitFor(what: () => boolean, ms: number, label: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!what()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}; stderr:\n${agent?.stderr() ?? ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let seq = 0;
async function get(uri: string): Promise<AgentReply> {
  const id = `t-${++seq}`;
  const metadata = { correlation_id: id, request_id: id, client_ip: '192.0.2.20', client_port: 50000, server_name: 'app.test', protocol: 'HTTP/1.1', tls_version: null, tls_cipher: null, route_id: 'r', upstream_id: 'u', timestamp: new Date().toISOString(), traceparent: null };
  const headers = { host: ['app.test'], 'user-agent': ['Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0'], accept: ['text/html'] };
  const reply = await client!.call(MessageType.RequestHeaders, id, { correlation_id: id, metadata, method: 'GET', uri, headers }, { timeoutMs: 10_000 });
  await client!.call(MessageType.RequestComplete, id, { correlation_id: id, status: reply.decision.kind === 'block' ? 403 : 200, duration_ms: 1, request_body_size: 0, response_body_size: 0, upstream_attempts: 1, error: null }, { timeoutMs: 10_000 }).catch(() => undefined);
  return reply;
}

/** The same verdict from every worker: `n` concurrent calls spread over the pool's connections. */
async function allGet(uri: string, n: number): Promise<string[]> {
  return (await Promise.all(Array.from({ length: n }, () => get(uri)))).map((r) => r.decision.kind);
}

for (const workers of [1, 2]) describe(`sentinel-waf tune (--workers ${workers}): audit log -> exclusions -> reload`, () => {
  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'sentinel-waf-tune-'));
    exclusions = join(tmp, 'exclusions.conf');
    const socketPath = join(tmp, 'waf.sock');
    agent = await startWafAgentProcess(socketPath, ['--exclusions-file', exclusions, '--workers', String(workers)]);
    // One connection per worker: the primary hands accepted connections to the workers in turn.
    client = new AgentClient({ id: 'tune', socketPath, connections: workers, connectTimeoutMs: 2000, reconnectIntervalMs: 200, maxConcurrentCalls: 10 });
    client.start();
    await waitFor(() => client!.openConnections === workers, 10_000, `${workers} agent connection(s)`);
  });
  after(async () => {
    await client?.close();
    await agent?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  const FP = "/search?q=1'%20OR%20'1'='1&page=2";

  test('proposes per-path, per-argument exclusions with counts, and the agent applies them live', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await get(FP)).decision.kind, 'block');
    assert.equal((await get("/reports?filter=1'%20OR%20'1'='1")).decision.kind, 'block');
    await waitFor(() => agent!.stdout.filter((l) => l.startsWith('{')).length >= 4, 5000, 'four audit lines');
    const audit = join(tmp, 'audit.log');
    writeFileSync(audit, `${agent!.stdout.join('\n')}\n`);

    const tune = spawnSync(process.execPath, [bin, 'tune', '--from', audit, '--out', exclusions], { encoding: 'utf8' });
    assert.equal(tune.status, 0, tune.stderr);
    const text = readFileSync(exclusions, 'utf8');
    assert.match(text, /# rule 942100 on ARGS:q at \/search: 3 hits/);
    assert.match(text, /SecRule REQUEST_FILENAME "@streq \/search" "id:\d+,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetById=942100;ARGS:q"/);
    assert.match(text, /ctl:ruleRemoveTargetById=942100;ARGS:filter/);
    assert.match(tune.stderr, /4 audit lines, \d+ exclusion\(s\) proposed/);

    // No restart: the agent sees the new file (polling, 1 s) and rebuilds its rules.
    await waitFor(() => count('rules reloaded') >= workers, 15_000, `the reload in ${workers} worker(s)`);
    assert.equal(agent!.proc.exitCode, null, 'the agent was not restarted');
    assert.deepEqual(await allGet(FP, 4 * workers), Array(4 * workers).fill('allow'), 'the excluded argument on its path passes in every worker');
    assert.equal((await get("/search?other=1'%20OR%20'1'='1")).decision.kind, 'block', 'another argument on that path is still inspected');
    assert.equal((await get("/elsewhere?q=1'%20OR%20'1'='1")).decision.kind, 'block', 'the argument on another path is still inspected');
  });

  test('a broken exclusions file keeps the previous rules (SIGHUP reload)', async () => {
    writeFileSync(exclusions, 'SecRule REQUEST_FILENAME "@streq /x" "id:10100,phase:1,pass,nolog,bogusaction"\n');
    const before = agent!.stderr().length;
    agent!.proc.kill('SIGHUP');
    await waitFor(() => count('failed, the previous rules stay', before) >= workers, 15_000, `the failed reload in ${workers} worker(s)`);
    assert.deepEqual(await allGet(FP, 4 * workers), Array(4 * workers).fill('allow'), 'the previous (tuned) rules still apply in every worker');
  });
});

test('sentinel-waf tune without --from is a usage error', () => {
  const r = spawnSync(process.execPath, [bin, 'tune'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--from AUDIT_LOG is required/);
});

test('sentinel-waf tune --extra-rules hpp (or SENTINEL_WAF_EXTRA_RULES) writes ARGS_JOINED beside ARGS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-waf-tune-hpp-'));
  try {
    const audit = join(dir, 'audit.log');
    writeFileSync(audit, `${JSON.stringify({ decision: 'block', uri: '/notes?q=x', rules: [{ id: 942100, var: 'ARGS:q', tags: ['attack-sqli', 'paranoia-level/1'] }] })}\n`);
    const env = { ...process.env, SENTINEL_WAF_EXTRA_RULES: '' };
    const off = spawnSync(process.execPath, [bin, 'tune', '--from', audit], { encoding: 'utf8', env });
    assert.equal(off.status, 0, off.stderr);
    assert.doesNotMatch(off.stdout, /ARGS_JOINED/);
    for (const [args, e] of [[['--extra-rules', 'base64,hpp'], env], [[], { ...env, SENTINEL_WAF_EXTRA_RULES: 'all' }]] as const) {
      const on = spawnSync(process.execPath, [bin, 'tune', '--from', audit, ...args], { encoding: 'utf8', env: e });
      assert.equal(on.status, 0, on.stderr);
      assert.match(on.stdout, /ctl:ruleRemoveTargetById=942100;ARGS:q"/);
      assert.match(on.stdout, /ctl:ruleRemoveTargetById=990131;ARGS_JOINED:q"/);
    }
    const bad = spawnSync(process.execPath, [bin, 'tune', '--from', audit, '--extra-rules', 'nope'], { encoding: 'utf8', env });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /unknown extra rule set "nope"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
