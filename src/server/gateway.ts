// The gateway process: listeners (created once), the current generation, reload (SIGHUP,
// file watch, API), the standalone metrics server, and graceful shutdown.
import { UploadSlots } from './upload-slots.ts';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2 from 'node:http2';
import type { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { CompiledConfig, CompiledListener } from '../config/compile.ts';
import { loadConfigFile, loadConfigText, defaultConfigText, DEFAULT_CONFIG_PATH } from '../config/load.ts';
import { ConfigError, formatDiagnostic, reportableError } from '../config/diagnostics.ts';
import { reloadSources, watchConfigSources, type ConfigWatcher } from '../config/watch.ts';
import { Metrics } from '../metrics/registry.ts';
import { createLogger, createSink, waitFlushed, type LineSink } from '../logging/logger.ts';
import { SyslogSink, type SyslogSinkOptions } from '../logging/syslog/sink.ts';
import { Generation, type ListenerRuntime } from './generation.ts';
import type { ListenerTls } from './listener-tls.ts';
import { COMPOSITION } from '../features.ts';
import { localResponder } from '../websocket/proxy.ts';
import { ConnectionGate, DEFAULT_MAX_CONNECTIONS_PER_CLIENT, applyHttp1Limits, guardHttp2Sessions, http1ServerOptions, http2MaxHeaderPairs, http2Settings, listenerLimits, type GateLimits, type ListenerLimits } from './listener-limits.ts';
import { compileTrusted, isTrusted } from './trusted-proxies.ts';
import { upgradeAsRequest } from './upgrade-as-request.ts';
import { admitPipelined } from './pipelining.ts';
import { CONNECTION_BODY_CHUNKS, CONNECTION_BODY_CHUNKS_PER_SECOND, bodyInChunks, connectionChunkBudget, guardBodyChunks, type ChunkLimit } from './body-chunks.ts';
import { ClientBudgets } from './client-budgets.ts';
import { errorBody } from '../errors/index.ts';
import { guardHttp2Abuse } from './http2-abuse.ts';
import type { GatewayStatusInfo, ListenerStatus, ReloadRecord } from '../status/report.ts';
import { hostHeaderNamesThisMachine } from '../builtins/local-host.ts';
import { ownListenerTargetErrors, type ListenAddress } from '../upstream/discovery/address-policy.ts';

/** audit lines held while the file (or stdout) is slower than the events; more are dropped and counted */
const AUDIT_FILE_BUFFER_BYTES = 4 * 1024 * 1024;

/** reloads the status page lists (newest first) */
const RELOAD_HISTORY = 20;
/** `sentinel_connections_closed_total` reasons of the chunk budgets */
const CHUNK_REASON: Record<ChunkLimit, string> = { body: 'body_chunks', connection: 'connection_body_chunks', client: 'client_body_chunks' };

/** a failed reload's error as the history keeps it (a config with many errors has a long message) */
function clipError(text: string): string {
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}

export interface GatewayOptions {
  /** config file; when neither this nor configText is given the embedded default is used */
  configPath?: string;
  configText?: string;
  /** where relative paths in configText resolve (default cwd) */
  baseDir?: string;
  /** overrides observability.logging.level */
  logLevel?: string;
  /** install SIGHUP/SIGTERM/SIGINT handlers (the CLI does; tests do not) */
  handleSignals?: boolean;
  /**
   * Set in a cluster worker (src/cluster/worker.ts): logs carry `worker: id`, and the standalone
   * metrics server and auto-reload file watching are left to the primary.
   */
  clusterWorker?: { id: number; workers?: number };
}

interface ListenerSlot {
  config: CompiledListener;
  server: NetServer;
  runtime: ListenerRuntime;
  limits: ListenerLimits;
  tls?: ListenerTls;
}

export function loadAny(opts: GatewayOptions): CompiledConfig {
  const extra = { validators: COMPOSITION.validators };
  if (opts.configText !== undefined) return loadConfigText(opts.configText, { ...(opts.baseDir ? { baseDir: opts.baseDir } : {}), ...extra });
  if (opts.configPath !== undefined) return loadConfigFile(opts.configPath, extra);
  return loadConfigText(defaultConfigText(), { name: DEFAULT_CONFIG_PATH, ...extra });
}

export class Gateway {
  readonly metrics = new Metrics();
  /** streaming uploads per client: one count for every generation of this process */
  private readonly uploadSlots = new UploadSlots();
  /** the per-client buckets behind the connection budgets (client-budgets.ts): kept across reloads */
  private readonly clientBudgets = new ClientBudgets();
  readonly instanceId = randomUUID();
  readonly startedAt = Date.now();
  log!: Logger;
  private generation!: Generation;
  private generationCounter = 0;
  private readonly listeners = new Map<string, ListenerSlot>();
  /** the listeners' and the metrics server's configured addresses with a port (known before the bind; listeners change only with a restart) */
  private configuredListeners: ListenAddress[] = [];
  private metricsServer: http.Server | undefined;
  private accessLog: LineSink | undefined;
  private auditLog: LineSink | undefined;
  private auditSyslog: SyslogSink | undefined;
  /** audit events a sink could not take (a slow or dead syslog receiver): dropped, never waited for */
  private readonly auditDropped = this.metrics.counter('sentinel_audit_dropped_total', 'Audit events dropped because a sink was full or unreachable, by sink', ['sink']);
  private draining = false;
  private watcher: ConfigWatcher | undefined;
  private reloading: Promise<void> = Promise.resolve();
  private readonly signalHandlers: [string, () => void][] = [];
  /** the start and the reloads, newest first (the status page's history) */
  private readonly reloadHistory: ReloadRecord[] = [];
  private readonly connectionsRejected = this.metrics.counter('sentinel_connections_rejected_total', 'Connections closed on arrival by a connection limit, by listener and reason', ['listener', 'reason']);
  private readonly connectionsClosed = this.metrics.counter('sentinel_connections_closed_total', 'HTTP/2 sessions and streams the gateway closed for a timeout or a body in too many chunks, and HTTP/1.1 connections closed for their pipelining depth or a body (or all of a connection\'s bodies) in too many chunks, by listener and reason', ['listener', 'reason']);
  /** max-total-connections / max-connections-per-client over every listener (read per connection, so reloads apply) */
  private readonly gate = new ConnectionGate(() => this.gateLimits(), (listener, reason) => this.connectionsRejected.inc({ listener, reason }));
  private gateLimitsCache: { config: CompiledConfig; limits: GateLimits } | undefined;
  private readonly http2Abuse = this.metrics.counter('sentinel_http2_abuse_sessions_closed_total', 'HTTP/2 sessions closed for abuse (rapid_reset, ping_flood, settings_flood), by listener', ['listener', 'kind']);

  constructor(private readonly opts: GatewayOptions) {}

  get current(): Generation {
    return this.generation;
  }

  get config(): CompiledConfig {
    return this.generation.config;
  }

  async start(): Promise<void> {
    const began = Date.now();
    const config = loadAny(this.opts);
    this.log = createLogger(config.observability, this.opts.logLevel);
    if (this.opts.clusterWorker) this.log = this.log.child({ worker: this.opts.clusterWorker.id });
    for (const w of config.warnings) this.log.warn(formatDiagnostic(w));
    this.configuredListeners = configuredListeners(config);
    this.refuseOwnListenerTargets(config);
    this.openLogs(config);
    this.generation = await this.buildGeneration(config);
    this.generation.start();
    this.metrics.generation.set(this.generation.number);
    this.recordReload({ at: new Date(began).toISOString(), kind: 'start', result: 'success', generation: this.generation.number, duration_ms: Date.now() - began });
    try {
      for (const l of config.listeners) await this.openListener(l);
      if (!this.opts.clusterWorker) this.metricsServer = await serveMetrics(config, () => this.metrics.render());
      // ephemeral ports (port 0) are known only now
      this.refuseOwnListenerTargets(config);
    } catch (err) {
      await this.close();
      throw err;
    }
    if (this.opts.handleSignals) this.installSignals();
    if (config.system['auto-reload'] && config.file && !this.opts.clusterWorker) this.watcher = watchConfigSources(() => reloadSources(this.generation.config), () => void this.reload().catch(() => undefined));
    this.log.info({ generation: this.generation.number, listeners: config.listeners.map((l) => `${l.id}=${this.addressText(l.id)}`) }, 'sentinel started');
  }

  private openLogs(config: CompiledConfig): void {
    const logging = config.observability.logging;
    this.accessLog = createSink(logging?.['access-log'], false);
    const audit = logging?.['audit-log'];
    const syslog = audit && audit.enabled !== false && audit.syslog && audit.syslog.enabled !== false ? audit.syslog : undefined;
    // With a syslog sink and no file, the events go to syslog only (not also to stdout).
    this.auditLog = syslog && !audit?.file ? undefined : createSink(audit, false, { maxBytes: AUDIT_FILE_BUFFER_BYTES, onDrop: (n) => this.auditDropped.inc({ sink: 'file' }, n) });
    if (syslog) {
      this.auditSyslog = new SyslogSink({
        address: syslog.address,
        // the schema's enums are checked at load; TypeBox types them as plain strings
        protocol: (syslog.protocol ?? 'udp') as SyslogSinkOptions['protocol'],
        facility: (syslog.facility ?? 'local0') as SyslogSinkOptions['facility'],
        queueSize: syslog['queue-size'] ?? 1024,
        ...(syslog['ca-file'] ? { caFile: syslog['ca-file'] } : {}),
        ...(syslog['server-name'] ? { serverName: syslog['server-name'] } : {}),
        ...(syslog.hostname ? { hostname: syslog.hostname } : {}),
        onDrop: (n) => this.auditDropped.inc({ sink: 'syslog' }, n),
      });
    }
  }

  private audit = (event: Record<string, unknown>): void => {
    if (!this.auditLog && !this.auditSyslog) return;
    const date = new Date();
    const json = JSON.stringify({ timestamp: date.toISOString(), ...event });
    this.auditLog?.write(json + '\n');
    this.auditSyslog?.send(event, json, date);
  };

  private async buildGeneration(config: CompiledConfig, previous?: Generation): Promise<Generation> {
    const number = ++this.generationCounter;
    const fmt = config.observability.logging?.['access-log']?.format ?? 'json';
    return Generation.create({
      number,
      config,
      metrics: this.metrics,
      log: this.log,
      audit: this.audit,
      accessLog: this.accessLog,
      accessFormat: fmt === 'combined' ? 'combined' : 'json',
      instanceId: this.instanceId,
      startedAt: this.startedAt,
      draining: () => this.draining,
      features: COMPOSITION.features,
      gatewayInfo: () => this.statusInfo(),
      uploadSlots: this.uploadSlots,
      clientBudgets: this.clientBudgets,
      processShares: this.opts.clusterWorker?.workers ?? 1,
      ownListeners: () => this.ownListeners(),
      ...(previous ? { previous } : {}),
    });
  }

  /** The connection caps of the running config (built once per config). */
  private gateLimits(): GateLimits {
    const config = this.generation.config;
    if (this.gateLimitsCache?.config !== config) {
      const trusted = compileTrusted(config.trustedProxies);
      this.gateLimitsCache = {
        config,
        limits: {
          maxTotal: config.limits['max-total-connections'],
          perClient: config.limits['max-connections-per-client'] ?? DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
          exempt: (peer) => trusted.any && isTrusted(trusted, peer),
        },
      };
    }
    return this.gateLimitsCache.limits;
  }

  private handler(runtime: ListenerRuntime) {
    return (req: IncomingMessage, res: ServerResponse) => {
      // HTTP/1.1 pipelining beyond MAX_PIPELINED requests waiting on one connection closes it (src/server/pipelining.ts)
      if (!admitPipelined(req, res)) {
        // Node goes on parsing the read it has: count the connection once
        if (!req.socket.destroyed) this.connectionsClosed.inc({ listener: runtime.config.id, reason: 'pipeline_depth' });
        req.socket.destroy();
        return;
      }
      // a body (or a connection's bodies) in more pieces than their size explains ends its connection (HTTP/2: its stream): src/server/body-chunks.ts
      if (bodyInChunks(req)) guardBodyChunks(req, connectionChunkBudget(req, () => this.generation.clientBudgets.chunks(req.socket.remoteAddress ?? '', CONNECTION_BODY_CHUNKS, CONNECTION_BODY_CHUNKS_PER_SECOND)), (limit) => this.tooManyChunks(req, runtime, limit));
      this.generation.dispatch(req, res, runtime);
    };
  }

  private tooManyChunks(req: IncomingMessage, runtime: ListenerRuntime, limit: ChunkLimit): void {
    this.connectionsClosed.inc({ listener: runtime.config.id, reason: CHUNK_REASON[limit] });
    const stream = (req as unknown as Partial<http2.Http2ServerRequest>).stream;
    if (stream) stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
    else req.socket.destroy();
  }

  /**
   * HTTP/2 requests (h2c, and TLS clients that chose h2). Their header list limit is checked by
   * the generation's front (Generation.enter), where the answer is access-logged like any other.
   */
  private h2Handler(runtime: ListenerRuntime) {
    const http1 = this.handler(runtime);
    return (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => http1(req as unknown as IncomingMessage, res as unknown as ServerResponse);
  }

  /**
   * HTTP/1.1 upgrades. WebSocket goes to the current generation's proxy; any other protocol
   * (h2c ...) is not switched to and is answered as a plain request on a closing connection.
   */
  private upgradeHandler(runtime: ListenerRuntime) {
    return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (req.headers.upgrade?.toLowerCase() === 'websocket') {
        this.generation.upgrade(req, socket, head, runtime).catch((err: unknown) => {
          this.log.error({ err }, 'websocket upgrade failed');
          socket.destroy();
        });
        return;
      }
      // Not switched to: a plain request, with its body (src/server/upgrade-as-request.ts).
      const plain = upgradeAsRequest(req, socket, head);
      if (plain) return this.generation.dispatch(plain, localResponder(plain, socket), runtime);
      this.metrics.clientErrors.inc({ kind: 'upgrade_chunked_body' });
      const res = localResponder(req, socket);
      const body = errorBody(400, 'Bad Request: a chunked body on a non-WebSocket Upgrade request is not supported', '');
      res.writeHead(400, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
  }

  private async openListener(l: CompiledListener): Promise<void> {
    const runtime: ListenerRuntime = { config: l };
    // The same limits on every listener kind (src/server/listener-limits.ts); a reload updates them.
    const lim = listenerLimits(this.config, l);
    const limitsNow = () => this.listeners.get(l.id)?.limits ?? lim;
    let server: NetServer;
    let tls: ListenerTls | undefined;
    if (l.protocol === 'https') {
      tls = await COMPOSITION.listenerTls({ listenerId: l.id, config: l.tls!, baseDir: this.config.baseDir, log: this.log, metrics: this.metrics, audit: this.audit });
      runtime.tlsInfo = (s) => tls!.tlsInfo(s);
      runtime.misdirected = (s, host) => tls!.misdirected(s, host);
      runtime.verifiedNow = tls.verifiedNow;
      const s = http2.createSecureServer(
        {
          allowHTTP1: true,
          ...tls.serverOptions(),
          // a client that never finishes the handshake is a slow client too
          handshakeTimeout: lim.headersTimeoutMs,
          settings: http2Settings(lim, l.maxConcurrentStreams),
          maxHeaderListPairs: http2MaxHeaderPairs(this.config.limits['max-header-count']),
        } as http2.SecureServerOptions,
        this.h2Handler(runtime),
      );
      tls.attach(s);
      applyHttp1Limits(s, lim);
      guardHttp2Sessions(s, limitsNow, (reason) => this.connectionsClosed.inc({ listener: l.id, reason }));
      server = s;
    } else if (l.protocol === 'h2') {
      const s = http2.createServer({ settings: http2Settings(lim, l.maxConcurrentStreams), maxHeaderListPairs: http2MaxHeaderPairs(this.config.limits['max-header-count']) }, this.h2Handler(runtime));
      guardHttp2Sessions(s, limitsNow, (reason) => this.connectionsClosed.inc({ listener: l.id, reason }));
      server = s;
    } else {
      const s = http.createServer(http1ServerOptions(lim), this.handler(runtime));
      applyHttp1Limits(s, lim);
      server = s;
    }
    this.gate.watch(server, l.id);
    // Expect: 100-continue is answered by the generation once the request is admitted (see deferContinue).
    server.on('checkContinue', l.protocol === 'http' ? this.handler(runtime) : this.h2Handler(runtime));
    // h2c listeners have no HTTP/1.1 upgrades; TLS listeners get them from clients that chose http/1.1 by ALPN.
    if (l.protocol !== 'h2') {
      server.on('upgrade', this.upgradeHandler(runtime));
      // CONNECT (authority-form) goes through the front door, which answers 405; without a
      // listener Node would just drop the connection.
      server.on('connect', (req: IncomingMessage, socket: Duplex) => this.generation.dispatch(req, localResponder(req, socket), runtime));
    }
    // Requests the HTTP/1.1 parser refuses (unknown method, bad syntax, header overflow, timeouts)
    // are answered with the gateway's JSON error, counted and logged instead of Node's bare 400.
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.generation.clientError(err, socket, runtime));
    // rapid reset / PING / SETTINGS floods close the session (src/server/http2-abuse.ts)
    if (l.protocol !== 'http') guardHttp2Abuse(server as http2.Http2Server, (kind) => this.http2Abuse.inc({ listener: l.id, kind }));
    server.maxConnections = this.config.system['max-connections'];
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(l.port, l.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.log.error({ err, listener: l.id }, 'listener error'));
    this.listeners.set(l.id, { config: l, server, runtime, limits: lim, ...(tls ? { tls } : {}) });
  }

  /** This process's listeners: bound addresses (admin and metrics listeners included) and the configured ones. */
  ownListeners(): ListenAddress[] {
    const out = [...this.configuredListeners];
    for (const slot of this.listeners.values()) {
      const a = slot.server.address();
      if (a && typeof a !== 'string') out.push({ host: a.address, port: a.port });
    }
    const m = this.metricsAddress();
    if (m) out.push(m);
    return out;
  }

  /** A static target naming one of the gateway's own listeners is a config error (docs/security.md "Session 30 (disc30)"). */
  private refuseOwnListenerTargets(config: CompiledConfig): void {
    const errors = ownListenerTargetErrors(config.upstreams, this.ownListeners());
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }

  address(listenerId: string): { host: string; port: number } {
    const slot = this.listeners.get(listenerId);
    if (!slot) throw new Error(`no listener "${listenerId}"`);
    const a = slot.server.address();
    if (!a || typeof a === 'string') throw new Error(`listener "${listenerId}" is not bound`);
    return { host: a.address, port: a.port };
  }

  metricsAddress(): { host: string; port: number } | undefined {
    const a = this.metricsServer?.address();
    return a && typeof a !== 'string' ? { host: a.address, port: a.port } : undefined;
  }

  private addressText(id: string): string {
    const a = this.address(id);
    return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  }

  /**
   * Builds the next generation from the file (or the given text), swaps it in and drains the old
   * one. A bad config changes nothing: the error is logged and rethrown. Reloads are serialised.
   */
  reload(configText?: string): Promise<void> {
    const run = this.reloading.then(() => this.doReload(configText));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async doReload(configText?: string): Promise<void> {
    const old = this.generation;
    const began = performance.now();
    const at = new Date().toISOString();
    this.audit({ event_type: 'config_change', action: 'reload_started' });
    let next: Generation;
    try {
      const config =
        configText !== undefined
          ? loadConfigText(configText, { baseDir: old.config.baseDir, validators: COMPOSITION.validators })
          : old.config.file
            ? loadConfigFile(old.config.file, { validators: COMPOSITION.validators })
            : loadAny(this.opts);
      for (const w of config.warnings) this.log.warn(formatDiagnostic(w));
      this.checkListenersUnchanged(old.config, config);
      this.refuseOwnListenerTargets(config);
      next = await this.buildGeneration(config, old);
    } catch (err) {
      this.metrics.configReloads.inc({ result: 'failure' });
      const duration = Math.round(performance.now() - began);
      // what leaves the process here (status page, audit, log) never quotes the config's lines: they may hold a secret
      const why = reportableError(err);
      this.recordReload({ at, kind: 'reload', result: 'failure', generation: null, duration_ms: duration, error: clipError(why) });
      this.audit({ event_type: 'config_change', action: 'reload_failed', reason: why, duration_ms: duration });
      this.log.error({ err: err instanceof ConfigError ? why : err }, 'config reload failed; continuing with the previous configuration');
      throw err;
    }
    next.start();
    this.generation = next;
    this.metrics.generation.set(next.number);
    this.metrics.configReloads.inc({ result: 'success' });
    const duration = Math.round(performance.now() - began);
    this.recordReload({ at, kind: 'reload', result: 'success', generation: next.number, duration_ms: duration });
    this.audit({ event_type: 'config_change', action: 'reload_success', generation: next.number, duration_ms: duration });
    this.log.info({ generation: next.number }, 'configuration reloaded');
    // the new config may include other files (or name other TLS files): watch what it was read from
    this.watcher?.refresh();
    for (const slot of this.listeners.values()) {
      const l = next.config.listeners.find((x) => x.id === slot.config.id);
      if (l && l.protocol === slot.config.protocol) {
        // Timeouts and header limits of running listeners follow the new config (new connections
        // and the next timer; HTTP/2 SETTINGS are sent once per session, so their size limit needs a restart).
        slot.limits = listenerLimits(next.config, l);
        if (l.protocol !== 'h2') applyHttp1Limits(slot.server as http.Server, slot.limits);
      }
      if (slot.tls && l?.tls) await slot.tls.reload(l.tls).catch((err: unknown) => this.log.error({ err, listener: l.id }, 'TLS reload failed; keeping the old certificates'));
    }
    // In-flight requests finish on the old generation.
    void old.dispose(next.config.system['graceful-shutdown-timeout-secs'] * 1000);
  }

  private recordReload(r: ReloadRecord): void {
    this.reloadHistory.unshift(r);
    if (this.reloadHistory.length > RELOAD_HISTORY) this.reloadHistory.length = RELOAD_HISTORY;
  }

  /** What the status page shows about the process (read per request: live). */
  statusInfo(): GatewayStatusInfo {
    const listeners: ListenerStatus[] = [];
    for (const slot of this.listeners.values()) {
      const l = slot.config;
      let address = `${l.host}:${l.port}`;
      try {
        address = this.addressText(l.id);
      } catch {
        // not bound (yet): the configured address
      }
      listeners.push({ id: l.id, address, protocol: l.protocol, tls: slot.tls !== undefined, loopback: l.loopback });
    }
    return {
      generation: this.generation?.number ?? 0,
      reloads: this.reloadHistory,
      listeners,
      ...(this.opts.clusterWorker ? { worker: this.opts.clusterWorker.id } : {}),
    };
  }

  private checkListenersUnchanged(a: CompiledConfig, b: CompiledConfig): void {
    const key = (c: CompiledConfig) => c.listeners.map((l) => `${l.id}|${l.host}|${l.port}|${l.protocol}`).sort().join(',');
    if (key(a) !== key(b)) this.log.warn('listener addresses/protocols changed: they take effect after a restart (routes, upstreams, filters and agents were reloaded)');
  }

  private installSignals(): void {
    const on = (sig: NodeJS.Signals, fn: () => void) => {
      process.on(sig, fn);
      this.signalHandlers.push([sig, fn]);
    };
    on('SIGHUP', () => {
      this.log.info('SIGHUP: reloading configuration');
      void this.reload().catch(() => undefined);
    });
    const stop = (sig: string) => () => {
      this.log.info({ signal: sig }, 'shutting down gracefully');
      void this.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    on('SIGTERM', stop('SIGTERM'));
    on('SIGINT', stop('SIGINT'));
  }

  /** Stops accepting, drains in-flight requests (bounded by graceful-shutdown-timeout-secs), closes everything. */
  async close(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    for (const [sig, fn] of this.signalHandlers) process.off(sig, fn);
    this.watcher?.close();
    const timeoutMs = (this.generation?.config.system['graceful-shutdown-timeout-secs'] ?? 30) * 1000;
    const closing = [...this.listeners.values()].map(
      (slot) =>
        new Promise<void>((resolve) => {
          slot.server.close(() => resolve());
          // Idle keep-alive connections would hold close() open.
          (slot.server as http.Server).closeIdleConnections?.();
        }),
    );
    if (this.generation) await this.generation.dispose(timeoutMs);
    for (const slot of this.listeners.values()) {
      (slot.server as http.Server).closeAllConnections?.();
      await slot.tls?.close();
    }
    await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 1000).unref())]);
    if (this.metricsServer) await new Promise<void>((r) => this.metricsServer!.close(() => r()));
    // Waited for, not only started: a worker exits right after close() (src/cluster/worker.ts).
    await Promise.all([this.accessLog?.flushed?.(), this.auditLog?.flushed?.(), this.auditSyslog?.close()]);
    if (this.log) await waitFlushed((cb) => this.log.flush(cb));
  }
}

/** The listeners' and the standalone metrics server's configured addresses, port 0 (ephemeral) left out. */
function configuredListeners(config: CompiledConfig): ListenAddress[] {
  const out: ListenAddress[] = config.listeners.filter((l) => l.port !== 0).map((l) => ({ host: l.host, port: l.port }));
  const m = config.observability.metrics;
  if (m && m.enabled !== false && m.address) {
    const i = m.address.lastIndexOf(':');
    const port = Number(m.address.slice(i + 1));
    if (port > 0) out.push({ host: m.address.slice(0, i).replace(/^\[|\]$/g, '') || '0.0.0.0', port });
  }
  return out;
}

/** The standalone metrics server (observability.metrics.address); undefined when not configured. */
export async function serveMetrics(config: CompiledConfig, render: () => Promise<string>): Promise<http.Server | undefined> {
  const m = config.observability.metrics;
  if (!m || m.enabled === false || !m.address) return undefined;
  const [host, portText] = [m.address.slice(0, m.address.lastIndexOf(':')).replace(/^\[|\]$/g, ''), m.address.slice(m.address.lastIndexOf(':') + 1)];
  const path = m.path ?? '/metrics';
  const server = http.createServer((req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    if (!hostHeaderNamesThisMachine(req.headers.host)) {
      // DNS rebinding (docs/security.md "Admin, static files, metrics and logs"), as the builtins
      res.writeHead(421, { 'content-type': 'text/plain' });
      res.end('Misdirected Request: reach the metrics listener by address or localhost');
    } else if (p === path) {
      render()
        .then((body) => {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(body);
        })
        .catch(() => {
          res.writeHead(500);
          res.end();
        });
    } else if (p === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<html><body><h1>Sentinel metrics</h1><a href="${path}">${path}</a></body></html>`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('Not Found');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host || '0.0.0.0', () => resolve());
  });
  return server;
}

export async function startGateway(opts: GatewayOptions = {}): Promise<Gateway> {
  const g = new Gateway(opts);
  await g.start();
  return g;
}
