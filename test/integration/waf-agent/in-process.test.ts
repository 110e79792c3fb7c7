// `agent "waf" { in-process "sentinel-waf" }`: the WAF engine inside the gateway, no socket.
// Two real gateways in front of one real upstream: one with the in-process WAF, one with the
// sentinel-waf agent process on a Unix socket, same CRS and settings. The same requests (clean
// and attacks in the query, headers, form and JSON bodies) must get the same status and the same
// X-WAF-Rule from both, attacks must not reach the upstream, and a bad in-process config is a
// clean failure (fail-closed 503), not a crash.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { request, type Reply } from '../../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { freePort } from '../../helpers/ports.ts';
import { notHungTurning, START_MS, until } from '../../helpers/until.ts';
import { crsDir } from '../../unit/waf-regex/crs-rules.ts';
import { startWafAgentProcess, type WafAgentProcess } from '../../helpers/waf-probes.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'sw-inproc-'));
const socketPath = join(tmp, 'waf.sock');

const wafConfig = `config { crs-dir "${crsDir}"; paranoia-level 1; exclude-paths "/health" }`;

function gatewayConfig(upstream: string, transport: string, timeoutMs = 20_000): string {
  return simpleConfig(upstream, {
    route: 'filters "waf"',
    top: `
agents {
  agent "waf" {
    ${transport}
    events "request_headers" "request_body"
    timeout-ms ${timeoutMs}
  }
}
filters { filter "waf" { type "agent"; agent "waf"; failure-mode "closed" } }
waf { body-inspection { content-types "application/json" "application/x-www-form-urlencoded" } }
`,
  });
}

const browser = {
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0',
  accept: 'text/html,application/xhtml+xml',
};

interface Case {
  name: string;
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  attack: boolean;
}

const cases: Case[] = [
  { name: 'clean GET with a query', path: '/products/search?q=blue+running+shoes&size=42', attack: false },
  { name: 'clean JSON POST', method: 'POST', path: '/api/orders', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ order: 7, items: [{ sku: 'A-1', qty: 2 }], note: 'leave at the door' }), attack: false },
  { name: 'clean form POST', method: 'POST', path: '/account', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=Alice+Martin&city=Lyon', attack: false },
  { name: 'excluded path', path: "/health?x=1'+OR+'1'='1", attack: false },
  { name: 'SQLi in the query', path: "/items?id=1'+OR+'1'='1", attack: true },
  { name: 'UNION SELECT', path: '/items?id=1%20UNION%20SELECT%20password%20FROM%20users', attack: true },
  { name: 'XSS in the query', path: '/search?q=%3Cscript%3Ealert(1)%3C/script%3E', attack: true },
  { name: 'path traversal', path: '/download?file=../../../../etc/passwd', attack: true },
  { name: 'XSS in the Referer header', path: '/', headers: { referer: '<script>alert(document.cookie)</script>' }, attack: true },
  { name: 'XSS in a JSON body', method: 'POST', path: '/api/comments', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ q: '<script>alert(document.cookie)</script>' }), attack: true },
  { name: 'SQLi in a form body', method: 'POST', path: '/login', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: "user=admin'--&pass=1' OR '1'='1", attack: true },
];

function send(base: string, c: Case): Promise<Reply> {
  return request(`${base}${c.path}`, { method: c.method ?? 'GET', headers: { ...browser, ...(c.headers ?? {}), ...(c.body ? { 'content-length': String(Buffer.byteLength(c.body)) } : {}) }, body: c.body, timeoutMs: 30_000 });
}

async function untilServing(base: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    // bounded by event-loop time: the in-process gateway's first answer waits for its CRS compile,
    // which runs on this process's loop (a wall-clock timer would count it, and a loaded machine's share)
    const r = await notHungTurning(`${base}/ready-check`, request(`${base}/ready-check`, { headers: browser })).catch(() => undefined);
    if (r?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`gateway at ${base} never answered 200 (last ${r?.status})`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

describe('in-process sentinel-waf against the socket agent', () => {
  let upstream: TestUpstream;
  let inProc: Awaited<ReturnType<typeof gatewayFrom>>;
  let viaSocket: Awaited<ReturnType<typeof gatewayFrom>>;
  let agent: WafAgentProcess | undefined;

  before(async () => {
    upstream = await startUpstream();
    agent = await startWafAgentProcess(socketPath, ['--workers', '1', '--exclude-paths', '/health']);
    inProc = await gatewayFrom(gatewayConfig(upstream.address, 'in-process "sentinel-waf"\n    ' + wafConfig));
    viaSocket = await gatewayFrom(gatewayConfig(upstream.address, `unix-socket "${socketPath}"`));
    await untilServing(inProc.url());
    await untilServing(viaSocket.url());
  });

  after(async () => {
    await inProc?.gw.close();
    await viaSocket?.gw.close();
    await upstream?.close();
    await agent?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const c of cases) {
    test(`${c.name}: same verdict in-process and over the socket`, async () => {
      const seenBefore = upstream.seen.length;
      const a = await send(inProc.url(), c);
      const b = await send(viaSocket.url(), c);
      assert.equal(a.status, b.status, `in-process ${a.status} vs socket ${b.status}`);
      assert.equal(a.headers['x-waf-rule'], b.headers['x-waf-rule']);
      assert.equal(a.headers['x-waf-score'], b.headers['x-waf-score']);
      if (c.attack) {
        assert.equal(a.status, 403);
        assert.equal(a.headers['x-waf-blocked'], 'true');
        assert.match(String(a.headers['x-waf-rule']), /^9\d{5}$/);
        assert.equal(upstream.seen.length, seenBefore, 'a blocked request never reaches the upstream');
      } else {
        assert.equal(a.status, 200);
        assert.equal(upstream.seen.length, seenBefore + 2);
      }
    });
  }

  test('concurrent clean and attack requests are answered correctly', async () => {
    const batch = Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? cases[4]! : { ...cases[0]!, path: `/products/search?q=shoes&page=${i}` }));
    const replies = await Promise.all(batch.map((c) => send(inProc.url(), c)));
    replies.forEach((r, i) => assert.equal(r.status, batch[i]!.attack ? 403 : 200));
  });
});

describe('in-process sentinel-waf: built before the gateway serves (session 24)', () => {
  // Before: the listeners opened and /_/ready answered 200 while the engine was still being
  // imported and the CRS compiled, so the first requests waited for the build and, past the
  // agent's timeout-ms, were refused (fail-closed 504); a build that failed left a gateway that
  // answered every request 503 (fail-open: let every request through uninspected).
  test('a gateway process opens its listener only once its in-process WAF is built: its first answer is a verdict, not a timeout', async () => {
    const upstream = await startUpstream();
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'sw-inproc-first-'));
    const file = join(dir, 'first-answer.kdl');
    writeFileSync(file, gatewayConfig(upstream.address, 'in-process "sentinel-waf"\n    ' + wafConfig, 1).replace('127.0.0.1:0', `127.0.0.1:${port}`));
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'sentinel.mjs'), 'run', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SENTINEL_CONFIG: '' } });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      // Asked as soon as the port takes a connection (before: ~1 s of engine import and CRS
      // compile after it did, so with a 1 ms agent timeout the first answers were 504s).
      let first: Reply | undefined;
      await until(
        () => `a first answer on port ${port} (stderr: ${stderr})`,
        async () => {
          first = await send(`http://127.0.0.1:${port}`, cases[0]!).catch(() => undefined);
          return first !== undefined || child.exitCode !== null;
        },
        START_MS,
        5,
      );
      assert.equal(first?.status, 200, `first answer ${first?.status}: ${first?.body}`);
      assert.equal((await send(`http://127.0.0.1:${port}`, cases[4]!)).status, 403);
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
      await upstream.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the first request after start is inspected, not timed out, even with a 1 ms agent timeout', async () => {
    const upstream = await startUpstream();
    const g = await gatewayFrom(gatewayConfig(upstream.address, 'in-process "sentinel-waf"\n    ' + wafConfig, 1));
    try {
      const clean = await send(g.url(), cases[0]!);
      assert.equal(clean.status, 200);
      const attack = await send(g.url(), cases[4]!);
      assert.equal(attack.status, 403);
      assert.equal(attack.headers['x-waf-blocked'], 'true');
    } finally {
      await g.gw.close();
      await upstream.close();
    }
  });

  test('a config it cannot load fails the start with the agent named', async () => {
    const upstream = await startUpstream();
    try {
      await assert.rejects(
        gatewayFrom(gatewayConfig(upstream.address, `in-process "sentinel-waf"\n    config { crs-dir "${join(tmp, 'no-such-crs')}" }`, 2000)),
        /agent waf: in-process sentinel-waf failed to start: .*no-such-crs/,
      );
      assert.equal(upstream.seen.length, 0);
    } finally {
      await upstream.close();
    }
  });

  test('a reload to a config it cannot load is refused and the running generation keeps inspecting', async () => {
    const upstream = await startUpstream();
    const good = gatewayConfig(upstream.address, 'in-process "sentinel-waf"\n    ' + wafConfig);
    const g = await gatewayFrom(good);
    try {
      const before = g.gw.current.number;
      await assert.rejects(g.gw.reload(gatewayConfig(upstream.address, `in-process "sentinel-waf"\n    config { crs-dir "${join(tmp, 'no-such-crs')}" }`)), /failed to start/);
      assert.equal(g.gw.current.number, before, 'the generation was not swapped');
      assert.equal((await send(g.url(), cases[0]!)).status, 200);
      assert.equal((await send(g.url(), cases[4]!)).status, 403);
    } finally {
      await g.gw.close();
      await upstream.close();
    }
  });
});
