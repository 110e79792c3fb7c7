// TLS termination of `protocol "https"` listeners, as the gateway's listener code sees it. The
// tls feature (plugins/tls) implements it and hands the factory over in its manifest
// (`listenerTls`); the composition root (src/features.ts) passes it to the gateway.
import type { Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics/registry.ts';
import type { CompiledListener } from '../config/compile.ts';
import type { TlsInfo } from '../pipeline/types.ts';

/** A listener's `tls { }` block. */
export type ListenerTlsBlock = NonNullable<CompiledListener['tls']>;

export interface ListenerTls {
  /** options for http2.createSecureServer({ allowHTTP1: true, ...serverOptions() }) */
  serverOptions(): TlsOptions & { ALPNProtocols: string[]; settings: { maxConcurrentStreams: number } };
  /** hooks OCSP stapling, handshake metrics and failure counting onto the created server */
  attach(server: TlsServer): void;
  /** applies a new tls block (config reload) or re-reads the same files; never rejects */
  reload(config?: ListenerTlsBlock): Promise<void>;
  /** the negotiated parameters and the verified client identity for RequestContext.tls */
  tlsInfo(socket: TLSSocket): TlsInfo;
  /**
   * False when the connection's client verification is older than the listener's: a reload changed
   * what client verification accepts since its handshake and did not re-verify it. Such a
   * connection is being closed; no request on it may be served (421). One compare per request:
   * HTTP/1.1 passes the TLS socket, HTTP/2 the session (the request's socket is a proxy).
   */
  readonly verifiedNow: (connection: object) => boolean;
  /** 421 Misdirected Request: `host` (normalised, without port) belongs to another certificate than the connection's SNI selected */
  misdirected(socket: TLSSocket, host: string): boolean;
  close(): Promise<void>;
}

export interface ListenerTlsOptions {
  listenerId: string;
  config: ListenerTlsBlock;
  /** relative paths resolve against the config file's directory */
  baseDir: string;
  log: Logger;
  metrics: Metrics;
  /** the audit log: certificate reloads (cert_reload) and client certificates (auth_event) */
  audit?: (event: Record<string, unknown>) => void;
}

export type ListenerTlsFactory = (opts: ListenerTlsOptions) => Promise<ListenerTls>;
