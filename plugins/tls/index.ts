// TLS termination for `protocol "https"` listeners: the TlsManager the core's listener code uses.
//
//   const mgr = await createTlsManager({ listenerId, config: listener.tls, baseDir, log, metrics });
//   const server = http2.createSecureServer({ allowHTTP1: true, ...mgr.serverOptions() }, handler);
//   mgr.attach(server);
//   ... on SIGHUP: await mgr.reload(); on config reload: await mgr.reload(newListener.tls);
//   ... per request: ctx.tls = mgr.tlsInfo(req.socket as TLSSocket);
//
// All certificate material of one config lives in an immutable Snapshot. Handshakes read the
// current snapshot (SNICallback, and the server's default context which reload() replaces with
// server.setSecureContext), so a reload only affects new handshakes and established connections
// keep going on the context they negotiated.
import { createHash, randomBytes, type X509Certificate } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { constants as cryptoConstants } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TLSSocket, type TlsOptions, type SecureVersion } from 'node:tls';
import type { Socket } from 'node:net';
import type { ServerHttp2Session } from 'node:http2';
import type { ServerResponse } from 'node:http';
import type { TlsInfo } from '../../src/pipeline/types.ts';
import { parseDurationMs } from '../../src/config/types-helpers.ts';
import { TlsConfigKeys, type ListenerTlsConfig } from './schema.ts';
import { tlsCompile } from './config-checks.ts';
import { loadCaBundle, loadCertKeyPair, ocspResponderUrl, oneLine, parseSubjectAltName, resolvePath, type LoadedCert } from './certs.ts';
import { buildSniTable, isMisdirected, lookupSni, type SniEntry, type SniOverlap, type SniTable } from './sni.ts';
import { cipherList, versionRange } from './options.ts';
import { OcspStapler, type StapleTarget } from './ocsp.ts';
import { CertWatcher, type WatchPlan } from './reload.ts';
import { MountedSnapshot } from '../../src/config/mounted.ts';
import { classifyHandshakeError } from './handshake.ts';
import { stillAccepted, trustView } from './reverify.ts';
import { defineFeature } from '../../src/pipeline/feature.ts';
import type { ListenerTls, ListenerTlsOptions } from '../../src/server/listener-tls.ts';

export type { ListenerTlsConfig } from './schema.ts';
export type { TlsInfo } from '../../src/pipeline/types.ts';

/** The core's view of a listener's TLS (src/server/listener-tls.ts), which this feature implements. */
export type TlsManager = ListenerTls;

/** The core's options for a listener's TLS, and what tests and tools may tune. */
export interface TlsManagerOptions extends ListenerTlsOptions {
  /** listener `max-concurrent-streams` (HTTP/2), default 100 */
  maxConcurrentStreams?: number;
  /** watch cert/key/ca files and re-read them on change (default true) */
  watchFiles?: boolean;
  /** debounce for file change events, ms (default 200) */
  watchDebounceMs?: number;
  /** session ticket key rotation period, ms (default 12 h) */
  ticketKeyRotationMs?: number;
  /** OCSP fetcher override (tests) */
  ocspFetch?: import('./ocsp.ts').OcspFetch;
}

type Material = Awaited<ReturnType<typeof loadMaterial>>;

/** Everything one tls config resolves to; immutable once built. */
interface Snapshot {
  config: ListenerTlsConfig;
  material: Material;
  defaultCert: LoadedCert;
  sniEntries: SniEntry<LoadedCert>[];
  table: SniTable<SecureContext>;
  /** the same table with the certificates (which names each covers: 421 decisions) */
  certTable: SniTable<LoadedCert>;
  overlaps: SniOverlap[];
  caPem: string | undefined;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  contextOptions: SecureContextOptions;
  watchPlan: WatchPlan;
  warnings: string[];
}

/** On each TLS socket: the verification epoch its client certificate was verified (or re-verified) under. */
const VERIFIED = Symbol('sentinel.tlsVerifiedEpoch');
type Stamped = { [VERIFIED]?: number };

const CERT_EXTENSIONS = ['.crt', '.pem', '.cert', '.cer'];
const TICKET_KEY_ROTATION_MS = 12 * 3_600_000;
const ALPN = ['h2', 'http/1.1'];

/** Pairs certificate and key files of an sni-certs folder by name: a.crt+a.key, a.pem+a.key, a.pem+a-key.pem. */
export async function scanCertFolder(dir: string): Promise<{ cert: string; key: string }[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`tls sni-certs cert-folder "${dir}": ${code === 'ENOENT' ? 'folder not found' : code === 'ENOTDIR' ? 'not a folder' : (err as Error).message}`, { cause: err });
  }
  const set = new Set(names);
  const isKey = (n: string) => n.endsWith('.key') || n.endsWith('-key.pem') || n.endsWith('.key.pem');
  const pairs: { cert: string; key: string }[] = [];
  const orphans: string[] = [];
  for (const n of names) {
    if (n.startsWith('.') || isKey(n)) continue;
    const ext = CERT_EXTENSIONS.find((e) => n.endsWith(e));
    if (!ext) continue;
    if (!(await stat(join(dir, n))).isFile()) continue;
    const stem = n.slice(0, -ext.length);
    const key = [`${stem}.key`, `${stem}-key.pem`, `${stem}.key.pem`].find((k) => set.has(k));
    if (key) pairs.push({ cert: join(dir, n), key: join(dir, key) });
    else orphans.push(n);
  }
  if (orphans.length > 0) throw new Error(`tls sni-certs cert-folder "${dir}": no key file for ${orphans.join(', ')} (expected NAME.key, NAME-key.pem or NAME.key.pem beside NAME.crt/.pem)`);
  return pairs;
}

/** Loads and checks all material of a tls block. Throws with a clear message on the first problem. */
async function loadMaterial(config: ListenerTlsConfig, baseDir: string) {
  const warnings: string[] = [];
  const acme = 'is not supported by this gateway (ACME is out of scope): provision certificates with an external ACME client (e.g. cert-manager, certbot) and point cert-file/key-file or sni-certs at them';
  if (config.acme !== undefined) throw new Error(`tls acme ${acme}`);
  if (config['cert-file'] && !config['key-file']) throw new Error('tls: cert-file is set but key-file is missing');
  if (config['key-file'] && !config['cert-file']) throw new Error('tls: key-file is set but cert-file is missing');
  if (config['client-auth'] && !config['ca-file']) throw new Error('tls client-auth #true needs ca-file (the CA bundle that signs accepted client certificates)');

  const range = versionRange(config['min-version'], config['max-version']);
  const ciphers = cipherList(config['cipher-suite'], range);
  // one version of each mounted Secret for the whole load: a swap between two reads cannot pair a
  // certificate with the other version's key or CA bundle (session 23 audit)
  const view = new MountedSnapshot();
  const ca = config['ca-file'] ? await loadCaBundle(config['ca-file'], baseDir, view) : undefined;

  const sniEntries: SniEntry<LoadedCert>[] = [];
  const files: string[] = [];
  for (const [i, sni] of (config.sni ?? []).entries()) {
    const what = `sni[${i + 1}]`;
    if (sni.acme !== undefined) throw new Error(`tls ${what} acme ${acme}`);
    if (sni.hostnames && sni['priority-hostnames']) throw new Error(`tls ${what}: hostnames and priority-hostnames are mutually exclusive (use one list)`);
    if (!sni['cert-file'] || !sni['key-file']) throw new Error(`tls ${what}: cert-file and key-file are required (acme is not supported)`);
    const cert = await loadCertKeyPair(sni['cert-file'], sni['key-file'], baseDir, what, view);
    const listed = sni['priority-hostnames'] ?? sni.hostnames;
    if (listed?.length === 0) throw new Error(`tls ${what}: empty host name list`);
    const names = listed ?? cert.names;
    if (names.length === 0) throw new Error(`tls ${what}: no hostnames given and the certificate "${cert.certPath}" has no SAN DNS names nor a CN`);
    for (const n of listed ?? []) {
      if (!cert.leaf.checkHost(n.startsWith('*.') ? `x${n.slice(1)}` : n)) warnings.push(`tls ${what}: the certificate "${cert.certPath}" does not cover host name "${n}"; clients will reject it`);
    }
    sniEntries.push({ source: `${what} (${cert.certPath})`, names, priority: !!sni['priority-hostnames'], value: cert });
    files.push(cert.certPath, cert.keyPath);
  }
  const watchDirs: string[] = [];
  const pollDirs: WatchPlan['pollDirs'] = [];
  for (const sc of config['sni-certs'] ?? []) {
    const dir = resolvePath(sc['cert-folder'], baseDir);
    for (const p of await scanCertFolder(dir)) {
      const cert = await loadCertKeyPair(p.cert, p.key, baseDir, `sni-certs "${dir}"`, view);
      if (cert.names.length === 0) throw new Error(`tls sni-certs "${dir}": certificate "${p.cert}" has no SAN DNS names nor a CN`);
      sniEntries.push({ source: `sni-certs (${p.cert})`, names: cert.names, priority: false, value: cert });
    }
    const mode = sc['reload-mode'] ?? 'off';
    if (mode === 'watch') watchDirs.push(dir);
    if (mode === 'interval') pollDirs.push({ dir, intervalMs: parseDurationMs(sc['reload-interval'] ?? '60s')! });
    if (mode !== 'interval' && sc['reload-interval'] !== undefined) warnings.push(`tls sni-certs "${dir}": reload-interval is ignored unless reload-mode "interval"`);
  }

  let defaultCert: LoadedCert;
  if (config['cert-file'] && config['key-file']) {
    defaultCert = await loadCertKeyPair(config['cert-file'], config['key-file'], baseDir, '', view);
    files.push(defaultCert.certPath, defaultCert.keyPath);
  } else if (sniEntries[0]) {
    defaultCert = sniEntries[0].value;
    warnings.push(`tls: no cert-file/key-file; ${sniEntries[0].source} is the default certificate for clients without a matching SNI name`);
  } else {
    throw new Error('tls: cert-file and key-file are required (or at least one sni / sni-certs certificate)');
  }
  if (ca) files.push(ca.path);

  const now = Date.now();
  for (const c of [defaultCert, ...sniEntries.map((e) => e.value)]) {
    if (c.notAfter.getTime() <= now) warnings.push(`tls certificate "${c.certPath}" (${c.subject}) expired on ${c.notAfter.toISOString()}`);
    else if (new Date(c.leaf.validFrom).getTime() > now) warnings.push(`tls certificate "${c.certPath}" (${c.subject}) is not valid before ${new Date(c.leaf.validFrom).toISOString()}`);
  }
  return { range, ciphers, ca, sniEntries, defaultCert, warnings, watchPlan: { files: [...new Set(files)], watchDirs, pollDirs } };
}

function buildSnapshot(config: ListenerTlsConfig, m: Material, ticketKeys: Buffer): Snapshot {
  const sessionResumption = config['session-resumption'] ?? true;
  const contextOptions: SecureContextOptions = {
    minVersion: m.range.minVersion as SecureVersion,
    maxVersion: m.range.maxVersion as SecureVersion,
    ...(m.ciphers ? { ciphers: m.ciphers } : {}),
    honorCipherOrder: true,
    ...(m.ca ? { ca: m.ca.pem } : {}),
    // one ticket key set for every context, kept across reloads (rotated every 12 h):
    // resumption works whatever certificate SNI picked, and survives certificate rotation
    ticketKeys,
    sessionTimeout: 300,
    secureOptions: sessionResumption ? 0 : cryptoConstants.SSL_OP_NO_TICKET,
  };
  const contexts = new Map<LoadedCert, SecureContext>();
  const contextFor = (c: LoadedCert) => {
    let ctx = contexts.get(c);
    if (!ctx) {
      try {
        ctx = createSecureContext({ ...contextOptions, cert: c.certPem, key: c.keyPem });
      } catch (err) {
        throw new Error(`tls certificate "${c.certPath}": cannot build a TLS context: ${(err as Error).message}`, { cause: err });
      }
      contexts.set(c, ctx);
    }
    return ctx;
  };
  contextFor(m.defaultCert);
  const { table: certTable, overlaps } = buildSniTable(m.sniEntries, { allowOverlaps: config['allow-sni-overlaps'] ?? false });
  const mapTable = (src: ReadonlyMap<string, SniEntry<LoadedCert>>) =>
    new Map([...src].map(([k, e]) => [k, { ...e, value: contextFor(e.value) }] as const));
  const table: SniTable<SecureContext> = { exact: mapTable(certTable.exact), wildcard: mapTable(certTable.wildcard) };
  const warnings = [...m.warnings];
  for (const o of overlaps) warnings.push(`tls: SNI name "${o.name}" is claimed by ${[o.winner, ...o.losers].join(' and ')}; ${o.winner} wins (allow-sni-overlaps)`);
  return {
    config,
    material: m,
    defaultCert: m.defaultCert,
    sniEntries: m.sniEntries,
    table,
    certTable,
    overlaps,
    caPem: m.ca?.pem,
    requestCert: !!m.ca,
    rejectUnauthorized: !!config['client-auth'],
    contextOptions,
    watchPlan: m.watchPlan,
    warnings,
  };
}

/** What decides whether a client certificate is accepted: the CA bundle and `client-auth`. */
function clientVerification(caPem: string | undefined, config: ListenerTlsConfig): string {
  return `${config['client-auth'] ? 'required' : 'optional'}\n${caPem ?? ''}`;
}

/** Startup validation, also used by `sentinel test`: throws Error with a clear message. */
export async function validateTlsConfig(config: ListenerTlsConfig, baseDir: string): Promise<void> {
  const m = await loadMaterial(config, baseDir);
  buildSnapshot(config, m, randomBytes(48));
}

/** The leaf's issuer for OCSP: the next certificate of cert-file's chain. */
function issuerOf(c: LoadedCert): X509Certificate | undefined {
  const next = c.chain[0];
  return next && c.leaf.checkIssued(next) ? next : undefined;
}

class Manager implements TlsManager {
  private snapshot: Snapshot;
  private readonly servers = new Set<TlsServer>();
  private readonly detachers: (() => void)[] = [];
  private readonly handshakeStart = new Map<string, number>();
  private readonly infoCache = new WeakMap<object, TlsInfo>();
  private readonly stapler: OcspStapler;
  private readonly watcher: CertWatcher | undefined;
  private readonly expiryTimer: NodeJS.Timeout;
  private readonly ticketTimer: NodeJS.Timeout;
  private reloading: Promise<void> = Promise.resolve();
  private closed = false;
  /** raised by each reload that changes what client verification accepts (clientVerification) */
  private epoch = 0;
  /** when `epoch` was last raised (performance.now()): a handshake begun before it ran under the older settings */
  private epochSince = -Infinity;
  /** open connections, for the reload that raises the epoch: HTTP/1.1 sockets (upgraded ones too) and HTTP/2 sessions */
  private readonly http1 = new Set<TLSSocket>();
  private readonly sessions = new Set<ServerHttp2Session>();

  private readonly handshakeDuration;
  private readonly handshakeFailures;
  private readonly certExpiry;
  private readonly reloads;

  constructor(
    private readonly opts: TlsManagerOptions,
    first: Snapshot,
    private ticketKeys: Buffer,
  ) {
    this.snapshot = first;
    const m = opts.metrics;
    this.handshakeDuration = m.histogram('sentinel_tls_handshake_duration_seconds', 'TLS handshake duration by negotiated version', ['version'], [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]);
    this.handshakeFailures = m.counter('sentinel_tls_handshake_failures_total', 'Failed TLS handshakes by reason', ['reason']);
    this.certExpiry = m.gauge('sentinel_tls_certificate_expiry_seconds', 'Seconds until the certificate expires (negative once expired)', ['listener', 'cert', 'subject']);
    this.reloads = m.counter('sentinel_tls_certificate_reloads_total', 'TLS certificate reloads by listener and result', ['listener', 'result']);
    this.stapler = new OcspStapler({
      log: opts.log,
      fetches: m.counter('sentinel_tls_ocsp_fetches_total', 'OCSP responder fetches by result', ['result']),
      ...(opts.ocspFetch ? { fetch: opts.ocspFetch } : {}),
    });
    if (opts.watchFiles !== false) {
      this.watcher = new CertWatcher((reason) => void this.reload(undefined, reason), {
        debounceMs: opts.watchDebounceMs ?? 200,
        onError: (err) => opts.log.warn({ listener: opts.listenerId, err: err.message }, 'tls: cannot watch certificate files'),
      });
    }
    this.expiryTimer = setInterval(() => this.updateExpiry(), 60_000);
    this.expiryTimer.unref();
    // session ticket keys are rotated so a stolen key cannot decrypt older sessions forever
    // (forward secrecy); outstanding tickets then fall back to a full handshake
    this.ticketTimer = setInterval(() => void this.rotateTicketKeys(), opts.ticketKeyRotationMs ?? TICKET_KEY_ROTATION_MS);
    this.ticketTimer.unref();
  }

  async start(): Promise<void> {
    await this.applied(undefined);
  }

  private allCerts(s: Snapshot): LoadedCert[] {
    return [...new Set([s.defaultCert, ...s.sniEntries.map((e) => e.value)])];
  }

  /** Side effects of a new snapshot: warnings, metrics, OCSP targets, watched files. */
  private async applied(previous: Snapshot | undefined): Promise<void> {
    const s = this.snapshot;
    for (const w of s.warnings) this.opts.log.warn({ listener: this.opts.listenerId }, w);
    if (previous) {
      const label = (c: LoadedCert) => `${c.certPath}\n${c.subject}`;
      const keep = new Set(this.allCerts(s).map(label));
      for (const c of this.allCerts(previous)) {
        if (!keep.has(label(c))) this.certExpiry.remove({ listener: this.opts.listenerId, cert: c.certPath, subject: c.subject });
      }
    }
    this.updateExpiry();
    this.stapler.track(s.config['ocsp-stapling'] === false ? [] : this.stapleTargets(s));
    await this.watcher?.set(s.watchPlan);
  }

  private stapleTargets(s: Snapshot): StapleTarget[] {
    const out: StapleTarget[] = [];
    for (const c of this.allCerts(s)) {
      const url = ocspResponderUrl(c.leaf);
      if (!url) continue;
      const issuer = issuerOf(c);
      if (!issuer) {
        this.opts.log.warn({ listener: this.opts.listenerId, cert: c.certPath }, 'tls: OCSP stapling needs the issuer certificate after the leaf in cert-file; not stapling this certificate');
        continue;
      }
      out.push({ label: c.certPath, leaf: c.leaf, issuer, url });
    }
    return out;
  }

  private updateExpiry(): void {
    const now = Date.now();
    for (const c of this.allCerts(this.snapshot)) {
      this.certExpiry.set({ listener: this.opts.listenerId, cert: c.certPath, subject: c.subject }, Math.round((c.notAfter.getTime() - now) / 1000));
    }
  }

  /** node:tls options for the server's default context (no SNI / unknown SNI). */
  private defaultContextOptions(): SecureContextOptions {
    const s = this.snapshot;
    return { ...s.contextOptions, cert: s.defaultCert.certPem, key: s.defaultCert.keyPem };
  }

  serverOptions(): TlsOptions & { ALPNProtocols: string[]; settings: { maxConcurrentStreams: number } } {
    const s = this.snapshot;
    return {
      ...this.defaultContextOptions(),
      requestCert: s.requestCert,
      rejectUnauthorized: s.rejectUnauthorized,
      SNICallback: (servername, cb) => {
        // undefined -> node keeps the server's default context (the default certificate)
        cb(null, lookupSni(this.snapshot.table, servername)?.value);
      },
      ALPNProtocols: [...ALPN],
      handshakeTimeout: 10_000,
      settings: { maxConcurrentStreams: this.opts.maxConcurrentStreams ?? 100 },
    };
  }

  attach(server: TlsServer): void {
    this.servers.add(server);
    const key = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => `${s.remoteAddress}|${s.remotePort}`;
    // a socket destroyed by a refused client certificate no longer knows its peer: remember it
    // per raw socket (node's TLSSocket keeps that as `_parent`, the only way back to it)
    const peers = new WeakMap<Socket, string | undefined>();
    const peerOf = (socket: TLSSocket) => socket.remoteAddress ?? peers.get((socket as unknown as { _parent?: Socket })._parent as Socket);
    const onConnection = (raw: Socket) => {
      if (this.opts.audit) peers.set(raw, raw.remoteAddress);
      const k = key(raw);
      this.handshakeStart.set(k, performance.now());
      raw.once('close', () => this.handshakeStart.delete(k));
    };
    const onSecure = (socket: TLSSocket) => {
      const k = key(socket);
      const start = this.handshakeStart.get(k);
      this.handshakeStart.delete(k);
      if (start !== undefined) this.handshakeDuration.observe({ version: socket.getProtocol() ?? 'unknown' }, (performance.now() - start) / 1000);
      // the epoch of the settings the whole handshake ran under: one that began before the last
      // raise (the socket was made with the older context) gets the previous one, so it is stale
      (socket as Stamped)[VERIFIED] = start !== undefined && start > this.epochSince ? this.epoch : this.epoch - 1;
      if (socket.alpnProtocol !== 'h2') {
        this.http1.add(socket);
        socket.once('close', () => this.http1.delete(socket));
      }
      if (this.opts.audit && this.snapshot.requestCert) this.auditClientCert(socket);
    };
    const onClientError = (err: Error, socket: TLSSocket) => {
      this.handshakeStart.delete(key(socket));
      // node verifies client certificates after the handshake and destroys the socket itself;
      // the failure then surfaces as "socket hang up" with the real cause in authorizationError
      const authError = (socket as { authorizationError?: Error | string }).authorizationError;
      const reason = authError ? classifyHandshakeError({ code: String(authError) }) : classifyHandshakeError(err);
      this.handshakeFailures.inc({ reason });
      if (authError && this.opts.audit) {
        this.opts.audit({ event_type: 'auth_event', action: 'mtls', listener: this.opts.listenerId, client_ip: plainIp(peerOf(socket)), result: 'rejected', reason: String(authError) });
      }
      this.opts.log.debug({ listener: this.opts.listenerId, reason, err: err.message, client: socket.remoteAddress }, 'TLS handshake failed');
    };
    const onOcsp = (cert: Buffer, _issuer: Buffer, cb: (err: Error | null, resp: Buffer | null) => void) => {
      cb(null, this.snapshot.config['ocsp-stapling'] === false ? null : this.stapler.staple(cert));
    };
    const onSession = (session: ServerHttp2Session) => {
      // the session carries its socket's epoch: HTTP/2 requests read it there, not through the
      // socket proxy (a proxy trap costs ~10x the compare)
      (session as Stamped)[VERIFIED] = (session.socket as Stamped)[VERIFIED];
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    };
    // prepend: measure (and stamp the epoch) before the http2/https connection listeners run
    server.prependListener('connection', onConnection);
    server.prependListener('secureConnection', onSecure);
    server.on('tlsClientError', onClientError);
    server.on('OCSPRequest', onOcsp);
    server.on('session', onSession);
    this.applyToServer(server);
    this.detachers.push(() => {
      server.off('connection', onConnection);
      server.off('secureConnection', onSecure);
      server.off('tlsClientError', onClientError);
      server.off('OCSPRequest', onOcsp);
      server.off('session', onSession);
    });
  }

  /** The client certificate of a new mTLS connection, verified or not (one event per connection). */
  private auditClientCert(socket: TLSSocket): void {
    const peer = socket.getPeerX509Certificate?.();
    if (!peer) return; // no certificate offered where one is optional: an anonymous client
    const authError = (socket as { authorizationError?: Error | string }).authorizationError;
    this.opts.audit!({
      event_type: 'auth_event',
      action: 'mtls',
      listener: this.opts.listenerId,
      client_ip: plainIp(socket.remoteAddress),
      result: socket.authorized ? 'authenticated' : 'unverified',
      ...(authError ? { reason: String(authError) } : {}),
      user_id: oneLine(peer.subject),
      metadata: { issuer: oneLine(peer.issuer), serial: peer.serialNumber, fingerprint256: peer.fingerprint256, not_after: peer.validTo, san: peer.subjectAltName ?? null },
    });
  }

  /** The server-level settings that are not part of a SecureContext. */
  private applyToServer(server: TlsServer): void {
    const s = this.snapshot;
    server.setSecureContext(this.defaultContextOptions());
    // node reads these per connection (tlsConnectionListener); they are not in setSecureContext
    const mutable = server as unknown as { requestCert: boolean; rejectUnauthorized: boolean };
    mutable.requestCert = s.requestCert;
    mutable.rejectUnauthorized = s.rejectUnauthorized;
  }

  /** New ticket keys for every context: rebuilt from the current material, no file access. */
  rotateTicketKeys(): Promise<void> {
    this.reloading = this.reloading.then(() => {
      if (this.closed) return;
      const s = this.snapshot;
      this.ticketKeys = randomBytes(48);
      this.snapshot = buildSnapshot(s.config, s.material, this.ticketKeys);
      for (const server of this.servers) this.applyToServer(server);
    });
    return this.reloading;
  }

  reload(config?: ListenerTlsConfig, reason = config ? 'config reload' : 'reload requested'): Promise<void> {
    // serialise reloads: a file event during a config reload must not apply an older config
    this.reloading = this.reloading.then(() => this.doReload(config, reason));
    return this.reloading;
  }

  private async doReload(config: ListenerTlsConfig | undefined, reason: string): Promise<void> {
    if (this.closed) return;
    const previous = this.snapshot;
    const cfg = config ?? previous.config;
    let next: Snapshot;
    let ticketKeys = this.ticketKeys;
    let verificationChanged: boolean;
    try {
      const material = await loadMaterial(cfg, this.opts.baseDir);
      // The ticket keys outlive a certificate rotation, but not a change of who may connect: a
      // resumed session keeps the client verification of the handshake that made it, so a client
      // the new ca-file refuses got in again with its ticket (docs/security.md, "Session 28 audit").
      verificationChanged = clientVerification(material.ca?.pem, cfg) !== clientVerification(previous.caPem, previous.config);
      if (verificationChanged) ticketKeys = randomBytes(48);
      next = buildSnapshot(cfg, material, ticketKeys);
    } catch (err) {
      this.reloads.inc({ listener: this.opts.listenerId, result: 'failure' });
      this.opts.audit?.({ event_type: 'cert_reload', listener: this.opts.listenerId, result: 'failure', reason, error: (err as Error).message });
      this.opts.log.error({ listener: this.opts.listenerId, reason, err: (err as Error).message }, 'tls: reload failed, keeping the previous certificates');
      return;
    }
    if (this.closed) return;
    const changed = fingerprintOf(previous) !== fingerprintOf(next) || config !== undefined;
    if (!changed) return; // a file event that did not change any material
    this.ticketKeys = ticketKeys;
    this.snapshot = next;
    for (const server of this.servers) this.applyToServer(server);
    // The connections open now were verified under the previous settings (Session 29, tls29).
    if (verificationChanged) this.reverifyOpen(previous, next);
    this.reloads.inc({ listener: this.opts.listenerId, result: 'success' });
    this.opts.audit?.({
      event_type: 'cert_reload',
      listener: this.opts.listenerId,
      result: 'success',
      reason,
      certificates: this.allCerts(next).map((c) => ({ file: c.certPath, subject: c.subject, not_after: c.notAfter.toISOString() })),
    });
    this.opts.log.info(
      { listener: this.opts.listenerId, reason, certificates: this.allCerts(next).map((c) => ({ file: c.certPath, subject: c.subject, notAfter: c.notAfter.toISOString() })) },
      'tls: certificates reloaded',
    );
    await this.applied(previous);
  }

  /**
   * After a reload that changed client verification: raises the epoch, keeps the connections
   * whose client is surely still accepted (stillAccepted) and closes the others without cutting an
   * answer: an idle HTTP/1.1 connection (or an upgraded one) now, one with an answer in flight
   * after it (`Connection: close`), an HTTP/2 session by GOAWAY once its streams end. A request
   * that still arrives on one of them is refused by the generation (verifiedNow: 421).
   */
  private reverifyOpen(before: Snapshot, after: Snapshot): void {
    const was = this.epoch;
    this.epoch = was + 1;
    this.epochSince = performance.now();
    const [old, now] = [trustView(before.material.ca), trustView(after.material.ca)];
    // per client certificate: a client with many connections is checked once
    const known = new Map<string, boolean>();
    const keep = (socket: TLSSocket & Stamped): boolean => {
      if (socket[VERIFIED] !== was) return false; // its handshake overlapped an earlier raise
      // a client without a verified certificate has no identity to lose: kept unless one is now required
      if (!socket.authorized) return !after.rejectUnauthorized;
      const leaf = after.requestCert ? socket.getPeerX509Certificate() : undefined;
      if (!leaf) return false;
      let yes = known.get(leaf.fingerprint256);
      if (yes === undefined) known.set(leaf.fingerprint256, (yes = stillAccepted(leaf, old, now)));
      return yes;
    };
    let kept = 0;
    let closing = 0;
    for (const socket of this.http1) {
      if (keep(socket)) {
        (socket as Stamped)[VERIFIED] = this.epoch;
        kept++;
      } else {
        closeHttp1(socket);
        closing++;
      }
    }
    for (const session of this.sessions) {
      if (session.closed || session.destroyed) continue;
      // the session's socket proxy reads and writes the TLS socket's own properties
      const socket = session.socket as TLSSocket & Stamped;
      if (keep(socket)) {
        socket[VERIFIED] = (session as Stamped)[VERIFIED] = this.epoch;
        kept++;
      } else {
        session.close();
        closing++;
      }
    }
    this.opts.log.info({ listener: this.opts.listenerId, kept, closing }, 'tls: client verification changed: open connections re-verified (kept) or closed');
  }

  /** False on a connection (TLS socket, HTTP/2 session) verified under client verification settings a reload has replaced (and not re-verified). */
  readonly verifiedNow = (connection: object): boolean => (connection as Stamped)[VERIFIED] === this.epoch;

  misdirected(socket: TLSSocket, host: string): boolean {
    const s = this.snapshot;
    // one certificate: every host is served by it (nothing to compare)
    if (s.sniEntries.length === 0) return false;
    return isMisdirected(s.certTable, s.defaultCert, socket.servername, host, this.covers);
  }

  /** Whether a certificate is valid for a host name; answers kept per certificate (bounded: Hosts are client input). */
  private readonly coverCache = new WeakMap<LoadedCert, Map<string, boolean>>();
  private readonly covers = (cert: LoadedCert, host: string): boolean => {
    let known = this.coverCache.get(cert);
    if (!known) this.coverCache.set(cert, (known = new Map()));
    let yes = known.get(host);
    if (yes === undefined) {
      if (known.size >= 1024) known.clear();
      yes = cert.leaf.checkHost(host) !== undefined;
      known.set(host, yes);
    }
    return yes;
  };

  tlsInfo(socket: TLSSocket): TlsInfo {
    const cached = this.infoCache.get(socket);
    if (cached) return cached;
    const info: TlsInfo = {
      version: socket.getProtocol?.() ?? null,
      cipher: socket.getCipher?.()?.name ?? null,
      serverName: typeof socket.servername === 'string' ? socket.servername : null,
    };
    if (socket.authorized) {
      const peer = socket.getPeerX509Certificate?.();
      if (peer) {
        const san = parseSubjectAltName(peer.subjectAltName);
        info.clientSubject = oneLine(peer.subject);
        info.clientSans = [...san.dns.map((d) => `DNS:${d}`), ...san.email.map((e) => `email:${e}`), ...san.uri.map((u) => `URI:${u}`), ...san.ip.map((i) => `IP:${i}`)];
        info.clientFingerprint256 = peer.fingerprint256;
      }
    }
    // the identity cannot change for the life of the connection (renegotiation is disabled in node)
    this.infoCache.set(socket, info);
    return info;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.expiryTimer);
    clearInterval(this.ticketTimer);
    this.watcher?.close();
    this.stapler.close();
    for (const d of this.detachers) d();
    this.detachers.length = 0;
    this.servers.clear();
    this.http1.clear();
    this.sessions.clear();
    for (const c of this.allCerts(this.snapshot)) this.certExpiry.remove({ listener: this.opts.listenerId, cert: c.certPath, subject: c.subject });
    await this.reloading;
  }

  /** For tests and `/_/` diagnostics: settle pending OCSP fetches. */
  async ocspSettled(): Promise<void> {
    await this.stapler.settled();
  }
}

/**
 * Closes an HTTP/1.1 connection without cutting an answer: at once when idle (an upgraded
 * WebSocket included: its tunnel was authorized by the old verification), else after the answer
 * in flight, which says `Connection: close` when its head is not sent yet. `_httpMessage` is the
 * answer node's server is writing on the socket (what its own closeIdleConnections reads).
 */
function closeHttp1(socket: TLSSocket): void {
  const busy = socket as TLSSocket & { _httpMessage?: ServerResponse | null };
  const res = busy._httpMessage;
  if (!res) {
    socket.destroySoon();
    return;
  }
  if (!res.headersSent) res.shouldKeepAlive = false;
  res.once('finish', () => {
    if (!busy._httpMessage) socket.destroySoon();
  });
}

/** A peer address without the IPv4-mapped prefix (as the request's client_ip). */
function plainIp(a: string | undefined): string {
  return a?.startsWith('::ffff:') ? a.slice(7) : (a ?? '');
}

/** Identity of a snapshot's material: a reload that re-reads identical files changes nothing. */
function fingerprintOf(s: Snapshot): string {
  const h = createHash('sha256');
  for (const c of [s.defaultCert, ...s.sniEntries.map((e) => e.value)]) h.update(c.certPath).update('\0').update(c.certPem).update('\0').update(c.keyPem).update('\0');
  for (const e of s.sniEntries) h.update(e.source).update(e.names.join(',')).update('\0');
  h.update(s.caPem ?? '');
  return h.digest('hex');
}

/** Extras beyond the core's contract, for tests and diagnostics. */
export interface TlsManagerExtras {
  ocspSettled(): Promise<void>;
  rotateTicketKeys(): Promise<void>;
}

export async function createTlsManager(opts: TlsManagerOptions): Promise<TlsManager & TlsManagerExtras> {
  const m = await loadMaterial(opts.config, opts.baseDir);
  const ticketKeys = randomBytes(48);
  const mgr = new Manager(opts, buildSnapshot(opts.config, m, ticketKeys), ticketKeys);
  await mgr.start();
  return mgr;
}

/** The tls feature's runtime: the per-listener certificate/SNI manager factory and the checks `sentinel test` runs. */
export interface TlsRuntime {
  readonly createManager: typeof createTlsManager;
  readonly validate: typeof validateTlsConfig;
}

/**
 * The tls feature: registered when a listener terminates TLS. Listeners (and their TLS managers)
 * outlive generations; each generation's config hands them its certificates on reload.
 */
export const tlsFeature = defineFeature({
  name: 'tls',
  dependencies: [],
  uses: (config) => config.listeners.some((l) => l.tls !== undefined),
  schema: TlsConfigKeys,
  compile: tlsCompile,
  listenerTls: createTlsManager,
  async check(config) {
    const errors: string[] = [];
    for (const l of config.listeners) {
      if (!l.tls || l.protocol !== 'https') continue;
      try {
        await validateTlsConfig(l.tls, config.baseDir);
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
    return errors;
  },
  register(app) {
    const runtime: TlsRuntime = { createManager: createTlsManager, validate: validateTlsConfig };
    app.decorate('tls', runtime);
  },
});

export default tlsFeature;
