// sentinel-waf --workers 2: one socket, two engine processes behind it. Both workers do the work
// of a concurrent load (their CPU time grows), a killed worker is replaced by a new process while
// the client keeps getting answers (clean allowed, attacks blocked), SIGTERM stops everything and
// removes the socket.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AgentClient } from '../../../src/agent-protocol/client.ts';
import { MessageType } from '../../../src/agent-protocol/frames.ts';
import type { AgentReply } from '../../../src/agent-protocol/messages.ts';
import { crsDir } from '../../unit/waf-regex/crs-rules.ts';
import { requestMetadata } from './request-metadata.ts';
import { until } from '../../helpers/until.ts';

const repoRoot = join(import.meta.dirname, '..', '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'sentinel-waf-workers-'));
const socketPath = join(tmp, 'waf.sock');

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** utime + stime in clock ticks. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

let seq = 0;
function call(client: AgentClient, uri: string): Promise<AgentReply> {
  const id = `w-${++seq}`;
  const payload = {
    correlation_id: id,
    metadata: requestMetadata(id),
    method: 'GET',
    uri,
    headers: { host: ['app.test'], 'user-agent': ['Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0'], accept: ['text/html'] },
  };
  return client.call(MessageType.RequestHeaders, id, payload, { timeoutMs: 20_000 });
}

describe('sentinel-waf --workers 2', () => {
  let proc: ChildProcess;
  let clients: AgentClient[] = [];
  let client: AgentClient;
  let stderr = '';
  before(async () => {
    proc = spawn(process.execPath, [join(repoRoot, 'bin', 'sentinel-waf.mjs'), '--socket', socketPath, '--crs-dir', crsDir, '--workers', '2'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        if (stderr.includes('2 workers listening on')) {
          clearInterval(timer);
          resolve();
        }
      }, 50);
      proc.once('exit', (code) => {
        clearInterval(timer);
        reject(new Error(`sentinel-waf exited with ${code}: ${stderr}`));
      });
    });
    // Four connections (one per client, so the load is spread over them by the test, not by the
    // client's pick): the primary hands them to the workers in turn.
    clients = Array.from({ length: 4 }, (_, i) => new AgentClient({ id: `workers-${i}`, socketPath, connections: 1, connectTimeoutMs: 5000, reconnectIntervalMs: 100, maxConcurrentCalls: 64 }));
    for (const c of clients) c.start();
    client = clients[0]!;
  });
  after(async () => {
    for (const c of clients) await c.close();
    if (proc && proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  test('two worker processes share the load of concurrent requests', async () => {
    const workers = children(proc.pid!);
    assert.equal(workers.length, 2, `two worker processes, got ${workers.join(',')}`);
    await until('four open connections', () => clients.every((c) => c.openConnections === 1), 20_000);
    const before = workers.map(cpuTicks);
    // 8 rounds of 32 concurrent requests with distinct values (no memo shortcut).
    for (let round = 0; round < 8; round++) {
      const replies = await Promise.all(Array.from({ length: 32 }, (_, i) => call(clients[i % 4]!, `/products?id=${round * 100 + i}&q=blue+shoes+${i}`)));
      for (const r of replies) assert.equal(r.decision.kind, 'allow');
    }
    const used = workers.map((pid, i) => cpuTicks(pid) - before[i]!);
    for (const [i, ticks] of used.entries()) assert.ok(ticks > 0, `worker ${workers[i]} did no work (${used.join(', ')} ticks)`);
    const attack = await call(client, "/items?id=1'%20OR%20'1'='1");
    assert.equal(attack.decision.kind, 'block');
  });

  test('a killed worker is replaced and the socket keeps answering', async () => {
    const [victim, survivor] = children(proc.pid!);
    assert.ok(victim && survivor);
    process.kill(victim, 'SIGKILL');
    await until('a replacement worker', () => {
      const now = children(proc.pid!);
      return now.length === 2 && !now.includes(victim) && now.includes(survivor);
    }, 30_000);
    await until('the replacement to be ready', () => /replacing it/.test(stderr));
    // Calls on the dead worker's connections fail until the client reconnects; bounded retries.
    let allowed = 0;
    for (let i = 0; i < 200 && allowed < 20; i++) {
      try {
        const r = await call(client, `/after-crash?n=${i}`);
        assert.equal(r.decision.kind, 'allow');
        allowed++;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal(allowed, 20, 'clean requests are answered after the crash');
    const attack = await call(client, '/search?q=%3Cscript%3Ealert(1)%3C/script%3E');
    assert.equal(attack.decision.kind, 'block');
    assert.equal(proc.exitCode, null, 'the primary keeps running');
  });

  test('SIGTERM stops the workers and removes the socket', async () => {
    const workers = children(proc.pid!);
    for (const c of clients) await c.close();
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(existsSync(socketPath), false, 'socket removed');
    for (const pid of workers) assert.equal(existsSync(`/proc/${pid}`), false, `worker ${pid} is gone`);
  });
});
