// Response buffering (docs/security.md, "Session 28 (pool28)"; docs/upstreams.md "Response
// buffering"). A relay used to hold its upstream connection until the client had read the whole
// answer: one HTTP/2 session with 100 unread 1 MiB answers held all 100 sockets of a target's pool
// for `request-secs`, and every other client of that target waited. Now, once a client stops
// reading (the response's write returns false), the relay goes on taking the upstream's bytes:
// first into the response's own buffer (up to `memory-bytes` an answer), then into an unlinked
// temp file (up to `file-bytes`), as nginx's proxy_buffering does, so the upstream connection goes
// back to the pool when the upstream has sent its answer. Bounded per process (memory, disk) and
// per client; past a bound the relay waits for the client as before (counted in a metric).
import { open, unlink, write, read, close } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { errors } from 'undici';
import { clientPrefixKey } from '../server/client-prefix.ts';

/** Per answer, from the upstream's `response-buffering { }` block. */
export interface ResponseBufferPolicy {
  /** bytes held in memory for a client that stopped reading */
  readonly memoryBytes: number;
  /** bytes spooled to a temp file past memoryBytes; 0: memory only */
  readonly fileBytes: number;
}

export const DEFAULT_RESPONSE_BUFFER_MEMORY_BYTES = 256 * 1024;
export const DEFAULT_RESPONSE_BUFFER_FILE_BYTES = 64 * 1024 * 1024;
/** `limits { max-response-buffer-memory-bytes }`: memory for buffered answers of the gateway (its cluster workers split it). */
export const DEFAULT_PROCESS_MEMORY_BYTES = 64 * 1024 * 1024;
/**
 * `limits { max-response-buffer-file-bytes }`: temp-file bytes of the gateway (its cluster workers
 * split it). 256 MiB: what the Helm chart's /tmp volume holds beside 64Mi for the rest (a volume
 * past its sizeLimit gets the pod evicted).
 */
export const DEFAULT_PROCESS_FILE_BYTES = 256 * 1024 * 1024;
/** `limits { max-response-buffer-bytes-per-client }`: memory + file for one client address (IPv6 /64). */
export const DEFAULT_PER_CLIENT_BYTES = 64 * 1024 * 1024;
/**
 * One client address's share of the process's buffering memory: a quarter of it (at least one
 * answer's slot). An answer starts buffering only with a memory slot, so without a share one
 * address with enough unread answers (~256 at the defaults) left every other slow client
 * unbuffered, holding upstream connections (docs/security.md, "Session 29 (lead)"). Files are
 * not shared this way: the per-client bound covers them.
 */
export const CLIENT_MEMORY_SHARE = 0.25;

/**
 * `limits { max-unbuffered-responses-per-client }`: answers of one client address that a bound kept
 * from being buffered and that hold their upstream connection while the client does not read (as
 * `max-streaming-uploads-per-client` bounds the uploads that hold one). One more is cut.
 */
export const DEFAULT_UNBUFFERED_PER_CLIENT = 16;

/** Why buffering stopped short and the relay waits for the client (the metric's `event`); `cut_client`: one past the unbuffered cap was cut. */
export type BufferEvent = 'buffered' | 'spooled' | 'limit_memory' | 'limit_file' | 'limit_client' | 'file_error' | 'cut_client';

/** An upstream's `response-buffering { }` as a policy (undefined: not buffered). */
export function responseBufferPolicy(block: { enabled?: boolean; 'memory-bytes'?: number; 'file-bytes'?: number } | undefined): ResponseBufferPolicy | undefined {
  if (block?.enabled === false) return undefined;
  return { memoryBytes: block?.['memory-bytes'] ?? DEFAULT_RESPONSE_BUFFER_MEMORY_BYTES, fileBytes: block?.['file-bytes'] ?? DEFAULT_RESPONSE_BUFFER_FILE_BYTES };
}

/** Process-wide accounting of buffered answers (shared by every generation). */
export class ResponseBufferBudget {
  memoryUsed = 0;
  fileUsed = 0;
  private readonly clients = new Map<string, number>();
  /** the memory part of `clients` (CLIENT_MEMORY_SHARE) */
  private readonly clientMemory = new Map<string, number>();
  memoryCap = DEFAULT_PROCESS_MEMORY_BYTES;
  fileCap = DEFAULT_PROCESS_FILE_BYTES;
  perClientCap = DEFAULT_PER_CLIENT_BYTES;
  /** unbuffered answers holding an upstream connection, per client (0: no cap) */
  unbufferedCap = DEFAULT_UNBUFFERED_PER_CLIENT;
  private readonly unbuffered = new Map<string, number>();
  /** where temp files are made (unlinked at once: nothing is left behind, even by a crash) */
  dir = tmpdir();
  /** counts buffering events (wired to the metric by the generation) */
  onEvent: (event: BufferEvent) => void = () => undefined;

  /** Clients with bytes held (for tests and the status page). */
  get clientCount(): number {
    return this.clients.size;
  }

  /** Whether `n` more bytes of memory (file: false) or temp file (file: true) fit for `client` (counts the bound that says no). */
  fits(client: string, n: number, file: boolean): boolean {
    if ((this.clients.get(client) ?? 0) + n > this.perClientCap) {
      this.onEvent('limit_client');
      return false;
    }
    if (!file && (this.clientMemory.get(client) ?? 0) + n > Math.max(n, Math.floor(this.memoryCap * CLIENT_MEMORY_SHARE))) {
      this.onEvent('limit_client');
      return false;
    }
    if (file ? this.fileUsed + n > this.fileCap : this.memoryUsed + n > this.memoryCap) {
      this.onEvent(file ? 'limit_file' : 'limit_memory');
      return false;
    }
    return true;
  }

  /** Counts `n` bytes for `client` (after fits(), or bytes that arrived anyway: one chunk past a bound). */
  add(client: string, n: number, file: boolean): void {
    if (file) this.fileUsed += n;
    else {
      this.memoryUsed += n;
      this.clientMemory.set(client, (this.clientMemory.get(client) ?? 0) + n);
    }
    this.clients.set(client, (this.clients.get(client) ?? 0) + n);
  }

  give(client: string, memory: number, file: number): void {
    this.memoryUsed -= memory;
    this.fileUsed -= file;
    const left = (this.clients.get(client) ?? 0) - memory - file;
    if (left > 0) this.clients.set(client, left);
    else this.clients.delete(client);
    const memoryLeft = (this.clientMemory.get(client) ?? 0) - memory;
    if (memoryLeft > 0) this.clientMemory.set(client, memoryLeft);
    else this.clientMemory.delete(client);
  }

  /**
   * A relay of `client` that a bound kept from buffering waits for its client, holding its upstream
   * connection: true if the client may hold one more (count it until unhold()), false when it holds
   * `unbufferedCap` already (the relay is cut: a client that reads nothing past its own bound could
   * otherwise hold every socket of a target's pool until request-secs).
   */
  hold(client: string): boolean {
    const n = this.unbuffered.get(client) ?? 0;
    if (this.unbufferedCap > 0 && n >= this.unbufferedCap) {
      this.onEvent('cut_client');
      return false;
    }
    this.unbuffered.set(client, n + 1);
    return true;
  }

  unhold(client: string): void {
    const left = (this.unbuffered.get(client) ?? 1) - 1;
    if (left > 0) this.unbuffered.set(client, left);
    else this.unbuffered.delete(client);
  }

  /** Unbuffered answers `client` holds now (tests). */
  holding(client: string): number {
    return this.unbuffered.get(client) ?? 0;
  }

  /** The key of a client address: IPv6 per /64, as the other per-client bounds (client-prefix.ts). */
  static clientKey(ip: string): string {
    return clientPrefixKey(ip);
  }
}

/** The process's budget (one per process, as the upload slots and client buckets). */
export const responseBufferBudget = new ResponseBufferBudget();

/** Bytes read from the spool at a time. */
const READ_BYTES = 64 * 1024;

/**
 * An append-only temp file read from the front: the upstream's bytes in, the client's out. The
 * file is unlinked as soon as it is open, so the descriptor is its only name: closed (or the
 * process gone), the disk space is back.
 */
export class Spool {
  private fd = -1;
  private opening = false;
  private writing = false;
  private closed = false;
  private readonly queued: Buffer[] = [];
  private queuedBytes = 0;
  /** bytes written to the file */
  written = 0;
  /** bytes read back */
  private readPos = 0;
  failure: Error | undefined;

  constructor(
    private readonly dir: string,
    /** called when bytes became readable, or on failure */
    private readonly onWritten: () => void,
  ) {}

  /** Bytes taken (written or queued) and not yet read back. */
  get pending(): number {
    return this.written + this.queuedBytes - this.readPos;
  }

  /** Bytes taken in all (the file's size once written). */
  get size(): number {
    return this.written + this.queuedBytes;
  }

  append(chunk: Buffer): void {
    this.queued.push(chunk);
    this.queuedBytes += chunk.length;
    if (this.fd < 0) this.openFile();
    else this.flush();
  }

  /** Whether read() has bytes to give now (the rest is still being written). */
  get readable(): boolean {
    return this.readPos < this.written;
  }

  /** Reads the next piece of what is written; cb(null) if the spool was closed meanwhile. */
  read(cb: (err: Error | null, chunk: Buffer | null) => void): void {
    const n = Math.min(READ_BYTES, this.written - this.readPos);
    const buf = Buffer.allocUnsafe(n);
    read(this.fd, buf, 0, n, this.readPos, (err, got) => {
      if (this.closed) return cb(null, null);
      if (err || got === 0) return cb(err ?? new Error('response spool: short read'), null);
      this.readPos += got;
      cb(null, got === n ? buf : buf.subarray(0, got));
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queued.length = 0;
    if (this.fd >= 0 && !this.writing) close(this.fd, () => undefined);
  }

  private openFile(): void {
    if (this.opening) return;
    this.opening = true;
    const path = join(this.dir, `sentinel-resp-${process.pid}-${randomBytes(8).toString('hex')}`);
    open(path, 'wx+', 0o600, (err, fd) => {
      if (err) return this.fail(err);
      unlink(path, () => undefined);
      if (this.closed) return close(fd, () => undefined);
      this.fd = fd;
      this.flush();
    });
  }

  private flush(): void {
    if (this.writing || this.closed || this.queued.length === 0) return;
    const chunk = this.queued.length === 1 ? this.queued[0]! : Buffer.concat(this.queued);
    const len = chunk.length;
    this.queued.length = 0;
    this.writing = true;
    const writeAll = (off: number): void => {
      write(this.fd, chunk, off, len - off, this.written, (err, n) => {
        if (this.closed) {
          this.writing = false;
          close(this.fd, () => undefined);
          return;
        }
        if (err) {
          this.writing = false;
          return this.fail(err);
        }
        this.written += n;
        this.queuedBytes -= n;
        if (off + n < len) return writeAll(off + n);
        this.writing = false;
        this.onWritten();
        this.flush();
      });
    };
    writeAll(0);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.onWritten();
  }
}

/** What a relay needs to buffer for a client that stops reading. */
export interface RelayBuffering {
  readonly policy: ResponseBufferPolicy;
  /** ResponseBufferBudget.clientKey of the client */
  readonly client: string;
  readonly budget: ResponseBufferBudget;
}

/** The buffering of one relay: made only when its client stops reading (nothing on the fast path). */
export function relayBuffering(policy: ResponseBufferPolicy, clientIp: string): RelayBuffering {
  return { policy, client: ResponseBufferBudget.clientKey(clientIp), budget: responseBufferBudget };
}

/** The request's cancel token as the relay sees it (src/upstream/exchange.ts CancelSignal). */
interface AbortSource {
  once(event: 'abort', listener: () => void): unknown;
  off(event: 'abort', listener: () => void): unknown;
}

/**
 * The buffered half of a relay, made when the client first stops reading. Memory first: the
 * response's own write buffer grows to `memoryBytes`; then the spool. The upstream is paused only
 * when a bound says no, and resumed when the client has taken what was held.
 */
export class BufferedRelay {
  private memory = 0;
  private file = 0;
  private spool: Spool | null = null;
  /** new bytes go to the spool (it holds bytes the client has not had yet) */
  private spooling = false;
  /** the response drained since its last write that returned false */
  private clientReady = false;
  private upstreamPaused = false;
  private ended = false;
  private pumping = false;
  private released = false;
  private readonly onAbort = (): void => {
    // request-secs (or the client's cancel) after the upstream finished: the client was too slow
    if (this.ended) this.cb.finish(new errors.RequestAbortedError());
  };

  constructor(
    private readonly res: ServerResponse,
    private readonly b: RelayBuffering,
    private readonly signal: AbortSource,
    private readonly cb: { resume(): void; finish(error?: unknown): void },
  ) {}

  /** Called after a write returned false; false when no memory is left for this client (the relay waits, as before). */
  start(): boolean {
    const n = this.b.policy.memoryBytes;
    if (!this.b.budget.fits(this.b.client, n, false)) return false;
    this.b.budget.add(this.b.client, n, false);
    this.memory = n;
    this.signal.once('abort', this.onAbort);
    this.b.budget.onEvent('buffered');
    return true;
  }

  /** An upstream chunk (its bytes are already counted by the relay); false pauses the upstream. */
  data(chunk: Buffer): boolean {
    if (!this.spooling) {
      if (this.res.writableLength < this.b.policy.memoryBytes) {
        this.res.write(chunk);
        return true;
      }
      if (this.b.policy.fileBytes === 0 || this.spool?.failure !== undefined) {
        this.res.write(chunk);
        return this.pause();
      }
      this.spooling = true;
      if (this.spool === null) {
        this.spool = new Spool(this.b.budget.dir, () => this.onWritten());
        this.b.budget.onEvent('spooled');
      }
    }
    const n = chunk.length;
    let fits: boolean;
    if (this.spool!.size + n > this.b.policy.fileBytes) {
      this.b.budget.onEvent('limit_file');
      fits = false;
    } else fits = this.b.budget.fits(this.b.client, n, true);
    // the bytes are here: kept and counted even past a bound (one chunk), then the upstream waits
    this.b.budget.add(this.b.client, n, true);
    this.file += n;
    this.spool!.append(chunk);
    return fits ? true : this.pause();
  }

  /** The response drained (true: handled here). */
  drained(): boolean {
    this.clientReady = true;
    if (this.spooling) this.pump();
    else if (!this.ended && this.upstreamPaused) {
      this.upstreamPaused = false;
      this.cb.resume();
    }
    return true;
  }

  /** The upstream's answer is complete (its connection is back in the pool). */
  end(): void {
    this.ended = true;
    if (!this.spooling) this.endResponse();
    else if (this.clientReady) this.pump();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.spool?.close();
    this.signal.off('abort', this.onAbort);
    this.b.budget.give(this.b.client, this.memory, this.file);
  }

  private pause(): false {
    this.upstreamPaused = true;
    return false;
  }

  private onWritten(): void {
    if (this.released) return;
    if (this.spool?.failure !== undefined) {
      this.b.budget.onEvent('file_error');
      this.cb.finish(this.spool.failure);
    } else if (this.clientReady) this.pump();
  }

  private pump(): void {
    const sp = this.spool;
    if (this.pumping || this.released || sp === null) return;
    if (sp.failure !== undefined) return this.cb.finish(sp.failure);
    if (sp.readable) {
      this.pumping = true;
      sp.read((err, chunk) => {
        this.pumping = false;
        if (this.released) return;
        if (chunk === null) return this.cb.finish(err ?? new Error('response spool closed'));
        if (this.res.write(chunk)) this.pump();
        else this.clientReady = false;
      });
      return;
    }
    if (sp.pending > 0) return; // still being written: onWritten() pumps
    // caught up: new bytes go straight to the response again
    this.spooling = false;
    if (this.ended) this.endResponse();
    else if (this.upstreamPaused) {
      this.upstreamPaused = false;
      this.cb.resume();
    }
  }

  /** Ends the response; the relay is done once the client has it all (or is gone, or too slow). */
  private endResponse(): void {
    const res = this.res;
    res.end();
    if (res.writableFinished) this.cb.finish();
    else res.once('finish', () => this.cb.finish());
  }
}
