// Test support for the agent integration tests: real agent child processes, a real upstream,
// and a minimal stand-in for the core's request pipeline (onRequest in order -> forward with
// ctx.upstreamHeaders / ctx.body -> onResponse in reverse -> onComplete -> abort ctx.signal),
// so the agent filters can be driven over real sockets before/independently of the gateway.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../../helpers/upstream.ts';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { Metrics } from '../../../src/metrics/registry.ts';
import type { GenerationServices, HeaderMap, LocalResponse, RequestContext, RequestFilter } from '../../../src/pipeline/types.ts';
import { createAgentFilterFactory, type AgentPluginOptions } from '../../../plugins/agents/index.ts';
import { pickTraceId } from '../../../src/server/trace-id.ts';
import { withCancellation } from '../../helpers/cancellation.ts';
import { until, UNTIL_MS } from '../../helpers/until.ts';

export const repoRoot = resolve(import.meta.dirname, '..', '..', '..');

export function tempDir(): { dir: string; cleanup: () => void } {
  // Short path: unix socket paths are limited to ~107 bytes.
  const dir = mkdtempSync(join(tmpdir(), 'sa-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface AgentProcess {
  proc: ChildProcess;
  lines: Record<string, unknown>[];
  stop(): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts `node --import tsx <script> ...args` and resolves once it prints "listening". */
export async function spawnAgent(script: string, args: string[]): Promise<AgentProcess> {
  const proc = spawn(process.execPath, ['--import', 'tsx', resolve(repoRoot, script), ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  await new Promise<void>((ok, fail) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error(`${script} did not start in 60 s: ${stderr}`)), 60_000);
    proc.stdout!.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.includes('listening')) {
          clearTimeout(timer);
          ok();
        } else if (line.startsWith('{')) lines.push(JSON.parse(line) as Record<string, unknown>);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`${script} exited (${code}) before listening: ${stderr}`));
    });
  });
  return {
    proc,
    lines,
    exited,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

export interface UpstreamHit {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** An upstream that records what it received and answers 200 with a JSON summary. */
export async function startUpstream(): Promise<{ port: number; hits: UpstreamHit[]; close: () => Promise<void> }> {
  const hits: UpstreamHit[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      hits.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-upstream-secret', 'hidden');
      res.end(JSON.stringify({ ok: true, sha256: createHash('sha256').update(body).digest('hex'), length: body.length }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, hits, close: () => closeServer(server) };
}

export interface Pipeline {
  port: number;
  audit: Record<string, unknown>[];
  metrics: Metrics;
  filters: Map<string, RequestFilter>;
  close(): Promise<void>;
}

export interface PipelineRoute {
  id: string;
  /** path prefix that selects the route */
  prefix: string;
  filters: string[];
  failureMode?: 'open' | 'closed';
}

/** Builds the agent filters like a generation would and serves them over HTTP. */
export async function startPipeline(opts: {
  agents: AgentPluginOptions['agents'];
  filters: Record<string, Record<string, unknown>>;
  routes: PipelineRoute[];
  upstreamPort: number;
  waf?: AgentPluginOptions['waf'];
  limits?: AgentPluginOptions['limits'];
}): Promise<Pipeline> {
  const metrics = new Metrics({ defaultMetrics: false });
  const audit: Record<string, unknown>[] = [];
  const log = pino({ level: 'silent' });
  const services: GenerationServices = {
    generation: 1,
    log,
    metrics,
    audit: (e) => audit.push(e),
    routeFailureMode: (id) => opts.routes.find((r) => r.id === id)?.failureMode ?? 'closed',
  };
  const factory = createAgentFilterFactory({
    agents: opts.agents,
    waf: opts.waf,
    limits: opts.limits,
    routeFilters: (id) => opts.routes.find((r) => r.id === id)?.filters,
  });
  const filters = new Map<string, RequestFilter>();
  for (const [id, config] of Object.entries(opts.filters)) filters.set(id, factory(id, { type: 'agent', ...config }, services));
  let seq = 0;

  const server = createServer((req, res) => {
    void handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end(String(err));
      }
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url!, 'http://local');
    const route = opts.routes.find((r) => url.pathname.startsWith(r.prefix))!;
    const chain = route.filters.map((id) => filters.get(id)!);
    const upstreamHeaders: HeaderMap = { ...req.headers };
    delete upstreamHeaders.connection;
    const abort = new AbortController();
    res.once('close', () => abort.abort(new Error('closed')));
    const ctx: RequestContext = withCancellation({
      // the gateway's own id rule (a client id with '#' is replaced: agent suffixes use it)
      traceId: req.headers['x-request-id'] !== undefined ? pickTraceId(req.headers, 'tinyflake') : `t${++seq}`,
      startTime: performance.now(),
      timestamp: new Date().toISOString(),
      trace: undefined,
      raw: req,
      method: req.method!,
      path: url.pathname,
      query: url.search.slice(1),
      host: 'local',
      clientIp: req.socket.remoteAddress!,
      clientPort: req.socket.remotePort!,
      listenerId: 'http',
      protocol: 'http',
      httpVersion: req.httpVersion,
      tls: undefined,
      routeId: route.id,
      upstreamId: 'backend',
      upstreamHeaders,
      responseHeaders: {},
      body: undefined,
      signal: abort.signal,
      audit: { tags: [], ruleIds: [], rateLimited: false },
      state: new Map(),
      log,
    }, abort.signal);
    let status = 500;
    const send = (local: LocalResponse) => {
      status = local.status;
      res.writeHead(local.status, { ...ctx.responseHeaders, ...(local.headers as Record<string, string>) });
      res.end(local.body);
    };
    try {
      for (const f of chain) {
        const local = await f.onRequest?.(ctx);
        if (local) return send(local);
      }
      const upstream = await new Promise<IncomingMessage>((ok, fail) => {
        const up = httpRequest({ host: '127.0.0.1', port: opts.upstreamPort, method: ctx.method, path: req.url, headers: ctx.upstreamHeaders as Record<string, string | string[]> }, ok);
        up.on('error', fail);
        if (ctx.body !== undefined) up.end(ctx.body);
        else req.pipe(up);
      });
      const info = { status: upstream.statusCode!, headers: { ...upstream.headers } as HeaderMap };
      for (const f of [...chain].reverse()) {
        const local = await f.onResponse?.(ctx, info);
        if (local) {
          upstream.resume();
          return send(local);
        }
      }
      status = info.status;
      res.writeHead(info.status, { ...(info.headers as Record<string, string>), ...(ctx.responseHeaders as Record<string, string>) });
      upstream.pipe(res);
      await new Promise((r) => res.once('finish', r));
    } finally {
      for (const f of chain) f.onComplete?.(ctx, { status, durationMs: performance.now() - ctx.startTime, requestBodyBytes: ctx.body?.length ?? 0, responseBodyBytes: 0, upstreamAttempts: 1 });
      abort.abort(new Error('request finished'));
    }
  }
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    audit,
    metrics,
    filters,
    async close() {
      await closeServer(server);
      for (const f of filters.values()) await f.close?.();
    },
  };
}

export interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** One HTTP request (a fresh connection each time; bodies may be sent in several writes). */
export function send(port: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string | (Buffer | string)[] } = {}): Promise<Reply> {
  const headers = { ...opts.headers };
  // A single-part body is sent with Content-Length (as most clients do); several parts are chunked.
  if (opts.body !== undefined && !Array.isArray(opts.body) && headers['transfer-encoding'] === undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
  return new Promise((ok, fail) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: opts.method ?? (opts.body !== undefined ? 'POST' : 'GET'), headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', fail);
    });
    req.on('error', fail);
    const parts = opts.body === undefined ? [] : Array.isArray(opts.body) ? opts.body : [opts.body];
    void (async () => {
      for (const p of parts) {
        req.write(p);
        await new Promise((r) => setImmediate(r));
      }
      req.end();
    })();
  });
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Polls `check` until it holds or `deadlineMs` passes (time-bounded, so a slow machine gets the whole budget). */
export function waitUntil(check: () => boolean | Promise<boolean>, what: string, deadlineMs = UNTIL_MS, everyMs = 50): Promise<void> {
  return until(what, check, deadlineMs, everyMs);
}

/**
 * Polls `check` every `everyMs` until it holds; the bound is time, at least `tries` x `everyMs` and
 * never under UNTIL_MS (counted tries ran short on a loaded machine, where each wait is longer).
 */
export function eventually(check: () => boolean | Promise<boolean>, what: string, tries = 100, everyMs = 50): Promise<void> {
  return until(what, check, Math.max(UNTIL_MS, tries * everyMs), everyMs);
}
