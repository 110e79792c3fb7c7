// `sentinel run` with worker-threads 2 as a real process tree: a primary and two workers sharing
// the listener. Everything is observed from outside: HTTP answers (the status builtin's
// instance_id differs per worker), the primary's JSON log lines, the metrics server, exit codes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';
import { freePort } from '../../helpers/redis.ts';
import { openssl } from '../../helpers/pki.ts';
import { HANG_MS, notHung, until } from '../../helpers/until.ts';

const bin = fileURLToPath(new URL('../../../bin/sentinel.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sentinel-cluster-'));
const file = join(dir, 'cluster.kdl');
const auditFile = join(dir, 'audit.log');
const accessFile = join(dir, 'access.log');
// Starting TypeScript processes on a busy 2-core machine is slow: generous, bounded waits.
const START_MS = 120_000;
// Wide: the drain only has to outlast a loaded machine between the SIGTERM and the release.
const DRAIN_SECS = 20;

type LogLine = Record<string, unknown> & { msg?: string };

class Proc {
  readonly lines: LogLine[] = [];
  stderr = '';
  private waiters: (() => void)[] = [];
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: line });
        }
        for (const w of this.waiters.splice(0)) w();
      }
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  /** The first log line (at or after index `from`) that matches; rejects after timeoutMs. */
  async waitFor(pred: (l: LogLine) => boolean, timeoutMs: number, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}): ${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for a log line; last lines: ${JSON.stringify(this.lines.slice(-5))} stderr: ${this.stderr}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

let up: TestUpstream;
let metricsPort: number;
let proc: Proc;
let base: string;
let workerPids: number[];
let slowGate: Promise<void> = Promise.resolve();

function config(extraRoute = ''): string {
  return `system { worker-threads 2; graceful-shutdown-timeout-secs ${DRAIN_SECS} }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "whoami" { matches { path "/whoami" }; builtin-handler "status" }
  route "metrics" { matches { path "/m" }; builtin-handler "metrics" }
  route "upstreams" { matches { path "/u" }; builtin-handler "upstreams" }
  route "api" { matches { path-prefix "/api" }; upstream "backend" }
  ${extraRoute}
}
upstreams {
  upstream "backend" { target "${up.address}" }
  upstream "mutual" { target "127.0.0.1:1"; tls { client-cert "${join(dir, 'client.crt')}"; client-key "${join(dir, 'client-secret.key')}" } }
}
observability { metrics { address "127.0.0.1:${metricsPort}" }; logging { level "info"; audit-log { file "${auditFile}" }; access-log { enabled #true; file "${accessFile}" } } }
`;
}
const configB = () => config('route "whoami2" { matches { path "/whoami2" }; builtin-handler "status" }');

/** `count` requests on fresh connections, `parallel` at a time (so both workers get some). */
async function burst(path: string, count: number, parallel = 10): Promise<{ status: number; body: string }[]> {
  const out: { status: number; body: string }[] = [];
  for (let i = 0; i < count; i += parallel) {
    const n = Math.min(parallel, count - i);
    out.push(...(await Promise.all(Array.from({ length: n }, () => request(`${base}${path}`, { timeoutMs: 30_000 })))));
  }
  return out;
}

function instanceIds(replies: { status: number; body: string }[]): Set<string> {
  return new Set(replies.filter((r) => r.status === 200).map((r) => (JSON.parse(r.body) as { instance_id: string }).instance_id));
}

/** Repeats bursts until both workers have answered (the kernel picks the worker per connection). */
async function bothWorkersAnswer(path: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let round = 0; round < 20 && ids.size < 2; round++) {
    const replies = await burst(path, 20);
    assert.deepEqual(replies.filter((r) => r.status !== 200), [], `every ${path} request is answered by the new config`);
    for (const id of instanceIds(replies)) ids.add(id);
  }
  return ids;
}

function metricSum(text: string, name: string, labelMatch: string): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(`${name}{`) && line.includes(labelMatch)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  return sum;
}

before(async () => {
  up = await startUpstream((req, res) => {
    const answer = () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    };
    // /api/slow is held until the test releases it (in flight while the workers drain)
    if (req.url?.startsWith('/api/slow')) void slowGate.then(answer);
    else answer();
  });
  metricsPort = await freePort();
  await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'client-secret.key'), '-out', join(dir, 'client.crt'), '-subj', '/CN=client', '-days', '2']);
  writeFileSync(file, config());
  proc = new Proc(spawn(process.execPath, [bin, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SENTINEL_CONFIG: '' } }));
  const started = await proc.waitFor((l) => l.msg === 'sentinel cluster started', START_MS);
  const m = /^http=.*:(\d+)$/.exec((started.listeners as string[])[0]!);
  base = `http://127.0.0.1:${m![1]}`;
  workerPids = started.worker_pids as number[];
});

after(async () => {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null) {
    proc.child.kill('SIGKILL');
    await proc.exited;
  }
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

test('a primary and two workers; logs carry the worker id', async () => {
  assert.equal(workerPids.length, 2);
  assert.equal(new Set(workerPids).size, 2);
  assert.ok(!workerPids.includes(proc.child.pid!), 'the primary serves no traffic itself');
  // Forked with the young-generation flag (src/cluster/young-generation.ts); the primary runs without it.
  const argv = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  for (const pid of workerPids) assert.ok(argv(pid).includes('--min-semi-space-size=16'), `worker ${pid} has the semi-space flag`);
  assert.ok(!argv(proc.child.pid!).includes('--min-semi-space-size=16'));
  // Each worker writes its own stdout: a worker's 'sentinel started' line can reach the pipe after
  // the primary's 'sentinel cluster started' (seen once in CI at load ~20), so wait for both.
  await proc.waitFor(() => proc.lines.filter((l) => l.msg === 'sentinel started').length >= 2, START_MS);
  const workerStarts = proc.lines.filter((l) => l.msg === 'sentinel started');
  assert.deepEqual(workerStarts.map((l) => l.worker).sort(), [1, 2]);
});

test('traffic is served by both workers and the aggregated metrics count every request', async () => {
  const ids = await bothWorkersAnswer('/whoami');
  assert.equal(ids.size, 2, 'two workers (two instance ids) answered');
  const replies = await burst('/api/x', 30);
  assert.deepEqual(
    replies.map((r) => r.status),
    Array(30).fill(200),
  );
  assert.equal(up.seen.filter((s) => s.url === '/api/x').length, 30);
  const scraped = await request(`http://127.0.0.1:${metricsPort}/metrics`);
  assert.equal(scraped.status, 200);
  assert.equal(metricSum(scraped.body, 'sentinel_requests_total', 'route="api"'), 30);
  assert.equal(metricSum(scraped.body, 'sentinel_request_duration_seconds_count', 'route="api"'), 30);
  assert.match(scraped.body, /^sentinel_up 1$/m);
  assert.match(scraped.body, /^sentinel_process_process_resident_memory_bytes\{worker="1"\} \d+/m);
  assert.match(scraped.body, /^sentinel_process_process_resident_memory_bytes\{worker="2"\} \d+/m);
  // The metrics builtin, whichever worker serves it, answers with the same aggregate.
  for (const r of await burst('/m', 6, 3)) {
    assert.equal(r.status, 200);
    assert.equal(metricSum(r.body, 'sentinel_requests_total', 'route="api"'), 30);
  }
  // Concurrent scrapes share one build in the primary (session 15 audit); every one gets the aggregate.
  for (const r of await burst('/m', 40, 40)) {
    assert.equal(r.status, 200);
    assert.equal(metricSum(r.body, 'sentinel_requests_total', 'route="api"'), 30);
  }
  // The upstreams builtin describes the answering worker: addresses and state, no TLS paths or secrets;
  // like every state-revealing builtin it answers 421 to a Host that is not this machine's.
  const ups = await request(`${base}/u`);
  assert.equal(ups.status, 200);
  assert.match(ups.body, /"address": "127\.0\.0\.1:\d+"/);
  assert.match(ups.body, /"id": "mutual"/);
  assert.doesNotMatch(ups.body, /client|secret|\.key|\.crt|tls/i);
  assert.equal((await request(`${base}/u`, { headers: { host: 'rebound.example' } })).status, 421);
  assert.equal((await request(`${base}/m`, { headers: { host: 'rebound.example' } })).status, 421);
});

test('SIGHUP: the primary validates once and every worker switches to the new routes', async () => {
  assert.equal((await request(`${base}/whoami2`)).status, 404);
  const from = proc.lines.length;
  writeFileSync(file, configB());
  proc.child.kill('SIGHUP');
  await proc.waitFor((l) => l.msg === 'configuration reloaded in every worker', 60_000, from);
  const ids = await bothWorkersAnswer('/whoami2');
  assert.equal(ids.size, 2, 'both workers serve the route added by the reload');
  const scraped = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
  assert.match(scraped, /^sentinel_config_reloads_total\{result="success"\} 1$/m);
  assert.match(scraped, /^sentinel_config_generation 2$/m);
});

test('SIGHUP with a broken config: rejected once by the primary, no worker changes, traffic continues', async () => {
  const from = proc.lines.length;
  writeFileSync(file, configB().replace('upstream "backend" { target', 'upstream "backend" { tagret'));
  proc.child.kill('SIGHUP');
  let rejected: LogLine;
  try {
    rejected = await proc.waitFor((l) => typeof l.msg === 'string' && l.msg.startsWith('config reload failed'), 60_000, from);
  } finally {
    // Leave a good file behind: replacement workers read it when they start.
    writeFileSync(file, configB());
  }
  assert.equal(rejected.role, 'primary');
  assert.match(String(rejected.err), /upstream "backend": requires at least one target/);
  const ids = await bothWorkersAnswer('/whoami2');
  assert.equal(ids.size, 2);
  assert.deepEqual(
    (await burst('/api/after-bad', 10)).map((r) => r.status),
    Array(10).fill(200),
  );
  assert.equal(proc.lines.slice(from).filter((l) => l.msg === 'configuration reloaded').length, 0, 'no worker reloaded');
  const scraped = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
  assert.match(scraped, /^sentinel_config_reloads_total\{result="failure"\} 1$/m);
  assert.match(scraped, /^sentinel_config_generation 2$/m);
});

test('a worker killed with SIGKILL is replaced and traffic continues', async () => {
  const from = proc.lines.length;
  const victim = workerPids[0]!;
  process.kill(victim, 'SIGKILL');
  const died = await proc.waitFor((l) => l.msg === 'worker died unexpectedly; replacing it', 30_000, from);
  assert.equal(died.pid, victim);
  assert.equal(died.signal, 'SIGKILL');
  // The surviving worker serves everything meanwhile.
  assert.deepEqual(
    (await burst('/api/during-restart', 10)).map((r) => r.status),
    Array(10).fill(200),
  );
  const ready = await proc.waitFor((l) => l.msg === 'worker ready', START_MS, from);
  assert.notEqual(ready.pid, victim);
  workerPids = [ready.pid as number, workerPids[1]!];
  const ids = await bothWorkersAnswer('/whoami2');
  assert.equal(ids.size, 2, 'the replacement serves the current config beside the survivor');
});

test('SIGTERM: in-flight requests complete, every worker drains, the primary exits 0', async () => {
  const seenBefore = up.seen.length;
  let release!: () => void;
  slowGate = new Promise((r) => (release = r));
  const slow = Array.from({ length: 6 }, (_, i) => request(`${base}/api/slow/${i}`, { timeoutMs: HANG_MS }));
  // wait until all six reached the upstream (so they are in flight in the workers)
  await until(() => `all six at the upstream (${up.seen.length - seenBefore} so far)`, () => up.seen.length - seenBefore >= 6, 30_000);
  assert.equal(up.seen.length - seenBefore, 6);
  proc.child.kill('SIGTERM');
  // Order, not time: both workers drain while the six are held at the upstream; released, they
  // complete, and then the primary exits 0. A hang (a drain that never ends) is what fails.
  await proc.waitFor(() => proc.lines.filter((l) => l.msg === 'worker draining').length >= 2, HANG_MS);
  assert.equal(proc.child.exitCode, null, 'the primary waits for the in-flight requests');
  release();
  const replies = await notHung('the six in-flight requests after the drain began', Promise.all(slow));
  assert.deepEqual(
    replies.map((r) => r.status),
    Array(6).fill(200),
  );
  const code = await notHung(`the primary's exit after the drain (graceful-shutdown-timeout-secs ${DRAIN_SECS})`, proc.exited);
  assert.equal(code, 0, proc.stderr);
  assert.equal(proc.lines.filter((l) => l.msg === 'worker draining').length, 2);
  for (const pid of workerPids) assert.throws(() => process.kill(pid, 0), /ESRCH/, `worker ${pid} is gone`);
  // Nothing lost: the drained requests' access lines were written before the workers exited (a
  // worker exits right after close(); a flush that was only started lost them in 2 of 5 runs).
  const accessed = readFileSync(accessFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { path: string }).path);
  assert.deepEqual(
    accessed.filter((p) => p.startsWith('/api/slow/')).sort(),
    Array.from({ length: 6 }, (_, i) => `/api/slow/${i}`),
  );
  // The audit log: the rejected reload once (by the primary; no worker saw it), the accepted one by
  // the workers (the survivor's line at least: the SIGKILLed worker lost its unflushed buffer).
  const audit = readFileSync(auditFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { action: string; role?: string });
  assert.deepEqual(
    audit.filter((e) => e.action === 'reload_failed').map((e) => e.role),
    ['primary'],
  );
  assert.ok(audit.filter((e) => e.action === 'reload_success').length >= 1, JSON.stringify(audit));
});
