// The audit log's syslog transport: UDP datagrams, or TCP / TLS with octet-counting framing
// (RFC 6587, RFC 5425). Requests never wait on it: a message goes to the socket when it can take
// it, into a bounded queue while connecting or when the socket is backed up, and is dropped
// (counted through `onDrop`) when the queue is full. A lost connection reconnects with backoff.
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { FACILITIES, auditSeverity, formatSyslog, octetCountingFrame, type FacilityName } from './format.ts';
import { VERSION } from '../../metrics/registry.ts';

export interface SyslogSinkOptions {
  address: string;
  protocol: 'udp' | 'tcp' | 'tls';
  facility: FacilityName;
  /** messages held while the connection is down or backed up; more are dropped */
  queueSize: number;
  caFile?: string;
  serverName?: string;
  hostname?: string;
  onDrop: (n: number) => void;
}

/** Bytes the socket may hold unsent before new messages queue instead (a slow receiver). */
const SOCKET_HIGH_WATER = 256 * 1024;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 30_000;

function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`syslog address must be host:port, got "${address}"`);
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

export class SyslogSink {
  private readonly host: string;
  private readonly port: number;
  private readonly hostname: string;
  private readonly facility: number;
  private readonly ca: Buffer | undefined;
  private sequence = 0;
  private closed = false;
  // UDP
  private udp: dgram.Socket | undefined;
  private udpInFlight = 0;
  // TCP / TLS
  private socket: net.Socket | undefined;
  private connected = false;
  private readonly queue: Buffer[] = [];
  private backoffMs = BACKOFF_MIN_MS;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: SyslogSinkOptions) {
    ({ host: this.host, port: this.port } = splitAddress(o.address));
    this.hostname = o.hostname ?? hostname();
    this.facility = FACILITIES[o.facility];
    this.ca = o.caFile ? readFileSync(o.caFile) : undefined;
    if (o.protocol === 'udp') {
      this.udp = dgram.createSocket(net.isIPv6(this.host) ? 'udp6' : 'udp4');
      this.udp.on('error', () => undefined); // a send error is reported to its callback
      this.udp.unref();
    } else this.connect();
  }

  /** Format and send one audit event (its JSON already made by the caller). */
  send(event: Record<string, unknown>, json: string, date: Date): void {
    if (this.closed) return;
    const text = formatSyslog({
      facility: this.facility,
      severity: auditSeverity(event),
      date,
      hostname: this.hostname,
      appName: 'sentinel',
      procId: process.pid,
      msgId: typeof event.event_type === 'string' ? event.event_type : undefined,
      sd: [
        { id: 'meta', params: { sequenceId: (this.sequence = (this.sequence % 2147483647) + 1) } },
        { id: 'origin', params: { software: 'sentinel', swVersion: VERSION } },
      ],
      msg: json,
    });
    if (this.udp) return this.sendUdp(text);
    this.enqueue(octetCountingFrame(text));
  }

  private sendUdp(text: string): void {
    // Datagrams not yet handed to the kernel count against the same bound as the TCP queue.
    if (this.udpInFlight >= this.o.queueSize) return this.o.onDrop(1);
    this.udpInFlight++;
    this.udp!.send(text, this.port, this.host, (err) => {
      this.udpInFlight--;
      if (err) this.o.onDrop(1);
    });
  }

  private enqueue(frame: Buffer): void {
    if (this.connected && this.queue.length === 0 && this.socket!.writableLength < SOCKET_HIGH_WATER) {
      this.socket!.write(frame);
      return;
    }
    if (this.queue.length >= this.o.queueSize) return this.o.onDrop(1);
    this.queue.push(frame);
  }

  private flushQueue(): void {
    while (this.connected && this.queue.length > 0 && this.socket!.writableLength < SOCKET_HIGH_WATER) this.socket!.write(this.queue.shift()!);
  }

  private connect(): void {
    this.retryTimer = undefined;
    if (this.closed) return;
    const onUp = (): void => {
      this.connected = true;
      this.backoffMs = BACKOFF_MIN_MS;
      this.flushQueue();
    };
    const s =
      this.o.protocol === 'tls'
        ? tls.connect({ host: this.host, port: this.port, servername: this.o.serverName ?? (net.isIP(this.host) ? undefined : this.host), ...(this.ca ? { ca: this.ca } : {}) }, onUp)
        : net.connect({ host: this.host, port: this.port }, onUp);
    s.setNoDelay(true);
    s.unref();
    s.on('drain', () => this.flushQueue());
    s.on('error', () => undefined); // 'close' follows and schedules the retry
    s.on('close', () => {
      if (this.socket !== s) return;
      this.connected = false;
      this.socket = undefined;
      // (Frames already written to a socket that dies are lost uncounted, as with any plain
      // TCP syslog; the queue survives and goes out on the next connection.)
      if (this.closed) return;
      this.retryTimer = setTimeout(() => this.connect(), this.backoffMs);
      this.retryTimer.unref();
      this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    });
    this.socket = s;
  }

  /** Stop: whatever is still queued is given a short chance to go out, then the socket closes. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.udp) {
      const u = this.udp;
      this.udp = undefined;
      // Let datagrams already handed to send() leave before the socket closes.
      for (let i = 0; i < 20 && this.udpInFlight > 0; i++) await new Promise((r) => setTimeout(r, 10));
      u.close();
      return;
    }
    const s = this.socket;
    this.flushQueue();
    if (this.queue.length > 0) this.o.onDrop(this.queue.length);
    this.queue.length = 0;
    if (!s) return;
    if (!this.connected) return void s.destroy();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => (s.destroy(), resolve()), 1000);
      t.unref();
      s.end(() => (clearTimeout(t), resolve()));
    });
  }
}
