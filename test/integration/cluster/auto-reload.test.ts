// `auto-reload` in cluster mode: the primary watches the file (the workers do not) and every
// worker applies the change once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from '../../helpers/http.ts';

const bin = fileURLToPath(new URL('../../../bin/sentinel.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sentinel-cluster-watch-'));
const file = join(dir, 'watch.kdl');
const cfg = (extra: string) => `system { worker-threads 2; auto-reload #true; graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "a" { matches { path "/a" }; builtin-handler "status" }
  ${extra}
}
`;
const child = spawn(process.execPath, [bin, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SENTINEL_CONFIG: '' } });
after(async () => {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  rmSync(dir, { recursive: true, force: true });
});

test('a file change reloads every worker once, driven by the primary', async () => {
  writeFileSync(file, cfg(''));
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; role?: string; worker?: number; listeners?: string[] });
  const until = async (pred: () => boolean, ms: number, what: string) => {
    for (const deadline = Date.now() + ms; !pred(); ) {
      if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${err}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${out} ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  await until(() => lines().some((l) => l.msg === 'sentinel cluster started'), 120_000, 'the cluster');
  const started = lines().find((l) => l.msg === 'sentinel cluster started')!;
  const base = `http://127.0.0.1:${/:(\d+)$/.exec(started.listeners![0]!)![1]}`;
  assert.equal((await request(`${base}/b`)).status, 404);

  writeFileSync(file, cfg('route "b" { matches { path "/b" }; builtin-handler "status" }'));
  await until(() => lines().some((l) => l.msg === 'configuration reloaded in every worker'), 60_000, 'the reload');
  const ids = new Set<string>();
  for (let round = 0; round < 20 && ids.size < 2; round++) {
    const replies = await Promise.all(Array.from({ length: 10 }, () => request(`${base}/b`, { timeoutMs: 30_000 })));
    assert.deepEqual(replies.filter((r) => r.status !== 200), []);
    for (const r of replies) ids.add((JSON.parse(r.body) as { instance_id: string }).instance_id);
  }
  assert.equal(ids.size, 2, 'both workers serve the new route');
  // One watcher (the primary's): each worker reloads exactly once a change. A second watcher in a
  // worker would fire on the first change as soon as the primary's did, so its extra reload comes
  // before that worker's reload of a second change: the negative window ends at each worker's
  // second reload. (Not at the primary's "in every worker" line: a worker's own log line can reach
  // the shared stdout after the primary's, ci26a.)
  const applied = () => lines().filter((l) => l.msg === 'configuration reloaded');
  const reloadsOf = (worker: number) => applied().filter((l) => l.worker === worker).length;
  writeFileSync(file, cfg('route "c" { matches { path "/c" }; builtin-handler "status" }'));
  await until(() => reloadsOf(1) >= 2 && reloadsOf(2) >= 2, 60_000, 'the second reload in both workers');
  assert.deepEqual(applied().map((l) => l.worker).sort(), [1, 1, 2, 2], 'each worker reloaded once a change');
  await until(() => lines().filter((l) => l.msg === 'configuration reloaded in every worker').length >= 2, 60_000, 'the primary\'s second "in every worker"');
  assert.equal((await request(`${base}/c`)).status, 200);

  child.kill('SIGTERM');
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, err);
});
