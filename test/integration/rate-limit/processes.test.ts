// Two gateway processes (bin/sentinel.mjs run) sharing one redis-server enforce one combined
// limit: nothing but Redis connects them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';
import { freePort, startRedis, type RedisServer } from '../../helpers/redis.ts';
import { slidingWindowMismatches, timedCall, type TimedCall } from '../../helpers/rate-limit.ts';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sentinel-rl-proc-'));
let up: TestUpstream;
let redis: RedisServer;
const procs: ChildProcess[] = [];

before(async () => {
  up = await startUpstream();
  redis = await startRedis();
});

after(async () => {
  for (const p of procs) {
    if (p.exitCode === null && p.signalCode === null) {
      const exited = once(p, 'exit');
      p.kill('SIGTERM');
      await exited;
    }
  }
  await up.close();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function startGatewayProcess(name: string, port: number): Promise<string> {
  const file = join(dir, `${name}.kdl`);
  writeFileSync(
    file,
    `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:${port}" } }
routes { route "limited" { matches { path-prefix "/" }; upstream "backend"; filters "rl" } }
upstreams { upstream "backend" { target "${up.address}" } }
filters { filter "rl" { type "rate-limit"; max-rps 5; burst 0; backend "redis"; redis-url "${redis.url}"; redis-timeout-ms 1000 } }
observability { logging { level "warn"; access-log { enabled #false } } }
`,
  );
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'sentinel.mjs'), 'run', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  procs.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  // Starting a process that compiles TypeScript takes a while on a busy machine (over 60 s at load
  // ~25, two starting at once): poll, bounded to 180 s.
  const deadline = Date.now() + 180_000;
  for (let i = 0; Date.now() < deadline; i++) {
    if (child.exitCode !== null) throw new Error(`gateway ${name} exited: ${stderr}`);
    const ok = await request(`${url}/ready-probe-${i}`, { timeoutMs: 1000, headers: { 'x-probe': '1' } }).then(
      () => true,
      () => false,
    );
    if (ok) return url;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`gateway ${name} did not listen on ${url} within 180 s: ${stderr}`);
}

test('two gateway processes sharing one Redis admit the limit once, not twice', async (t) => {
  const [a, b] = await Promise.all([startGatewayProcess('a', await freePort()), startGatewayProcess('b', await freePort())]);
  // The readiness probes above used up the window: start from an empty one.
  await new Promise((r) => setTimeout(r, 1100));
  const calls: TimedCall[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < 30; i++) {
    calls.push(await timedCall(async () => {
      const status = (await request(`${i % 2 ? a : b}/x`)).status;
      statuses.push(status);
      return status === 200;
    }));
  }
  const ok = statuses.filter((s) => s === 200).length;
  assert.equal(ok + statuses.filter((s) => s === 429).length, 30, statuses.join(','));
  t.diagnostic(`${ok} of 30 allowed in ${calls[29]!.answered - calls[0]!.sent} ms (limit 5/s across both processes)`);
  // Sliding 1 s window in Redis: 5 in any second, whichever process asks.
  assert.deepEqual(slidingWindowMismatches(calls, 5, 1000), [], `statuses ${statuses.join(',')}`);
});
