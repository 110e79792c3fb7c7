// `node --import tsx bench/tracing-export-cpu.ts [--exports 40] [--warmup 300] [--bytes 90000] [--every 250] [--modes none,thread,inline]`
//
// What one OTLP export costs in CPU, by thread (docs/tracing.md "Session 21"): the compiled
// exporter (built from this checkout) sends --bytes batches to a receiver in this process, one every
// --every ms, in a child process per mode: `thread` (the export thread, the default),
// `inline` (OtlpHttpTransport on the calling thread, `export-thread #false`), `none` (a sender
// that answers at once: the loop's own cost). After --warmup exports (50 ms apart) the next
// --exports are measured: the child's CPU (getrusage) and each thread's (/proc/self/task/*/schedstat)
// per export. Timer-paced, so the figures are CPU time, not throughput; on a loaded machine they
// inflate (cache contention), compare modes of the same run.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { buildSentinel } from './lib/targets.ts';

const { values } = parseArgs({
  options: {
    exports: { type: 'string', default: '40' },
    warmup: { type: 'string', default: '300' },
    bytes: { type: 'string', default: '90000' },
    every: { type: 'string', default: '250' },
    modes: { type: 'string', default: 'none,thread,inline' },
    // internal: the measuring child
    child: { type: 'string' },
    dist: { type: 'string' },
    url: { type: 'string' },
  },
});

/** CPU nanoseconds per thread of this process, by tid. */
const threadNs = (): Map<string, number> => new Map(readdirSync('/proc/self/task').map((t) => [t, Number(readFileSync(`/proc/self/task/${t}/schedstat`, 'utf8').split(' ')[0])]));

interface Sender {
  send(body: Uint8Array, done: (o: { error?: string }) => void): void;
  start?(): void;
  close(): Promise<void>;
}

async function child(mode: string, dist: string, url: string): Promise<void> {
  const thread = (await import(pathToFileURL(join(dist, 'plugins/tracing/export-thread.js')).href)) as typeof import('../plugins/tracing/export-thread.ts');
  const http = (await import(pathToFileURL(join(dist, 'plugins/tracing/otlp-http.js')).href)) as typeof import('../plugins/tracing/otlp-http.ts');
  const before = threadNs();
  const options = { url, contentType: 'application/x-protobuf', timeoutMs: 5000, userAgent: 'bench', connections: 2, environment: http.otlpEnvironment({}) };
  const sender: Sender =
    mode === 'thread' ? new thread.ThreadTransport(options, 4) : mode === 'inline' ? new http.OtlpHttpTransport(options) : { send: (_b, done) => setImmediate(done, {}), close: async () => {} };
  sender.start?.();
  // the export thread is unreferenced (it never holds a gateway open): keep this loop alive
  const alive = setInterval(() => {}, 1000);
  const body = Buffer.alloc(Number(values.bytes), 7);
  const send = () =>
    new Promise<void>((ok, fail) =>
      sender.send(body, (o) => {
        if (o.error === undefined) ok();
        else fail(new Error(o.error));
      }),
    );
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < Number(values.warmup); i++) {
    await send();
    await sleep(50);
  }
  const n = Number(values.exports);
  const t0 = threadNs();
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    await send();
    await sleep(Number(values.every));
  }
  const c = process.cpuUsage(c0);
  const t1 = threadNs();
  const us = (ns: number) => Math.round(ns / n / 1000);
  const main = String(process.pid);
  const added = [...t1.keys()].filter((k) => !before.has(k));
  const others = [...t1.keys()].filter((k) => k !== main && before.has(k)).reduce((s, k) => s + t1.get(k)! - (t0.get(k) ?? 0), 0);
  console.log(
    `${mode.padEnd(6)} process ${Math.round((c.user + c.system) / n)} µs/export: calling thread ${us(t1.get(main)! - t0.get(main)!)}, export thread ${added.length ? added.map((k) => us(t1.get(k)! - (t0.get(k) ?? 0))).join('+') : '-'}, other threads ${us(others)}`,
  );
  await sender.close();
  clearInterval(alive);
}

if (values.child) {
  await child(values.child, values.dist!, values.url!);
} else {
  const root = resolve(import.meta.dirname, '..');
  const dist = dirname(dirname(dirname(await buildSentinel(root, { ownDir: true }))));
  const rx = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end());
  });
  await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(rx.address() as AddressInfo).port}/v1/traces`;
  console.log(`${values.exports} exports of ${values.bytes} bytes, one every ${values.every} ms, after ${values.warmup} warm-up exports; load ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  for (const mode of values.modes.split(',')) {
    const p = spawn(process.execPath, ['--import', 'tsx', import.meta.filename, ...process.argv.slice(2), '--child', mode, '--dist', dist, '--url', url], { stdio: 'inherit' });
    const code = await new Promise<number | null>((r) => p.on('exit', r));
    if (code !== 0) throw new Error(`${mode}: the child exited with ${code}`);
  }
  rx.close();
}
