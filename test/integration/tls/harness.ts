// Shared glue for the TLS integration tests: a TlsManager on an http2 secure server (exactly how
// the core's listener uses it), async child processes (the server runs in this process, so a
// synchronous spawn would deadlock), and checks that the needed CLIs exist.
import { execFile, spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import { Writable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../../helpers/upstream.ts';
import { until, UNTIL_MS } from '../../helpers/until.ts';
import type { TLSSocket } from 'node:tls';
import pino from 'pino';
import { Metrics } from '../../../src/metrics/registry.ts';
import { createTlsManager, type TlsManager, type TlsManagerExtras, type ListenerTlsConfig } from '../../../plugins/tls/index.ts';

export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without blocking the event loop; never rejects (the exit code is in the result). */
export function exec(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<Exec> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: opts.timeoutMs ?? 15_000, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    // a command that exits without reading stdin (sh -c, h2load) must not crash us with EPIPE
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** Fails (never skips) with an install hint when a CLI the test needs is missing. */
export function requireCli(cmd: string, install: string): void {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`"${cmd}" is needed by this test but is not installed: ${install}`);
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface TestServer {
  port: number;
  mgr: TlsManager & TlsManagerExtras;
  server: http2.Http2SecureServer;
  metrics: Metrics;
  logs: LogLine[];
  close(): Promise<void>;
}

/** An https listener answering JSON {httpVersion, tls: tlsInfo, path}. */
export async function startTlsServer(config: ListenerTlsConfig, baseDir: string, extra: { watchFiles?: boolean; maxConcurrentStreams?: number } = {}): Promise<TestServer> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const log = pino({ level: 'debug' }, sink);
  const metrics = new Metrics({ defaultMetrics: false });
  const mgr = await createTlsManager({ listenerId: 'https', config, baseDir, log, metrics, watchFiles: extra.watchFiles ?? false, watchDebounceMs: 100, ...(extra.maxConcurrentStreams ? { maxConcurrentStreams: extra.maxConcurrentStreams } : {}) });
  const server = http2.createSecureServer({ allowHTTP1: true, ...mgr.serverOptions() }, (req, res) => {
    const body = JSON.stringify({ httpVersion: req.httpVersion, path: req.url, tls: mgr.tlsInfo(req.socket as TLSSocket) });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
  mgr.attach(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    mgr,
    server,
    metrics,
    logs,
    async close() {
      await mgr.close();
      await closeServer(server);
    },
  };
}

/** `openssl s_client` against 127.0.0.1:port; returns its output (handshake details). */
export function sClient(port: number, o: { servername?: string; noSni?: boolean; cert?: string; key?: string; status?: boolean; args?: string[]; input?: string }): Promise<Exec> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-showcerts'];
  if (o.noSni) args.push('-noservername');
  else if (o.servername) args.push('-servername', o.servername);
  if (o.cert) args.push('-cert', o.cert, '-key', o.key ?? '');
  if (o.status) args.push('-status');
  args.push(...(o.args ?? []));
  return exec('openssl', args, { input: o.input ?? 'Q\n' });
}

/** Subject CN of the first certificate the server sent, from s_client output. */
export function servedCn(out: string): string | undefined {
  return /^\s*0 s:.*?CN\s*=\s*([^,\n]+)/m.exec(out)?.[1]?.trim();
}

/** curl against a host name resolved to 127.0.0.1:port. */
export function curl(port: number, host: string, cacert: string, args: string[] = [], path = '/'): Promise<Exec> {
  return exec('curl', ['-sS', '--max-time', '10', '--cacert', cacert, '--resolve', `${host}:${port}:127.0.0.1`, ...args, `https://${host}:${port}${path}`]);
}

/** Polls `check` every 50 ms up to `timeoutMs` (10 s unless told); resolves with its first value that is not undefined or false. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, timeoutMs = UNTIL_MS, what = 'condition'): Promise<T> {
  let v: T | undefined;
  const holds = async () => {
    v = await check();
    return v !== undefined && v !== false;
  };
  await until(what, holds, timeoutMs, 50);
  return v as T;
}
