// Disk backend: one file per entry under `disk-path`, spread over `disk-shards` directories by
// the hash of the variant key, with an in-memory index (an LRU over file sizes, budget
// `disk-max-size`). A body is written to tmp/ while it streams to the client and renamed into its
// shard only when complete, so a reader or a restart never sees half an entry. The file is the
// body followed by the metadata (JSON) and a fixed trailer, so it can be appended as the body
// arrives. At startup the index is rebuilt by reading every file's trailer (bounded by a time
// budget); broken files are removed. Layout and format: docs/cache.md "Disk layout".
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, unlinkSync, type WriteStream } from 'node:fs';
import { open, readdir, readFile, rename, rm, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { LRUCache } from 'lru-cache';
import { bodyParts, Variants, type BackendEvents, type BackendStats, type CacheBackend, type EntryMeta, type EntryWriter, type StoredResponse } from './entry.ts';

/** The last 8 bytes of every entry file (format version 1). */
export const MAGIC = Buffer.from('SNTLCAC1', 'latin1');
/** u32 metadata length + magic */
export const TRAILER_BYTES = 4 + MAGIC.length;
/** metadata larger than this is a broken file, not a real entry */
const MAX_META_BYTES = 4 * 1024 * 1024;
const SUFFIX = '.entry';
const SHARD_DIR = /^[0-9a-f]{2,3}$/;
/** a hit refreshes the file's mtime (the LRU order a restart restores) at most this often */
const TOUCH_EVERY_MS = 60_000;
/** entry files up to this size are read synchronously on a hit */
const SYNC_READ_BYTES = 64 * 1024;
/** files scanned in parallel at startup */
const SCAN_PARALLEL = 32;

/** What the file's metadata holds: the entry without its body, plus the body length and when it was written. */
export interface DiskMeta extends EntryMeta {
  bodyBytes: number;
  storedAt: number;
}

/** The index record of one file. */
interface Indexed {
  key: string;
  primary: string;
  host: string;
  target: string;
  vary: string[];
  file: string;
  /** file bytes (charged against disk-max-size) */
  size: number;
  /** last use (ms), from the file's mtime after a restart */
  touched: number;
}

export function fileHash(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Metadata + trailer appended after the body. */
export function encodeTrailer(meta: EntryMeta, bodyBytes: number, storedAt: number): Buffer {
  const m: DiskMeta = { ...meta, bodyBytes, storedAt };
  const json = Buffer.from(JSON.stringify(m), 'utf8');
  const out = Buffer.allocUnsafe(json.length + TRAILER_BYTES);
  json.copy(out, 0);
  out.writeUInt32BE(json.length, json.length);
  MAGIC.copy(out, json.length + 4);
  return out;
}

/** Reads the metadata of a file of `fileSize` bytes from its last bytes; undefined: not a complete entry. */
export function decodeMeta(tail: Buffer, fileSize: number): DiskMeta | undefined {
  if (tail.length < TRAILER_BYTES || fileSize < TRAILER_BYTES) return undefined;
  if (!tail.subarray(tail.length - MAGIC.length).equals(MAGIC)) return undefined;
  const metaLen = tail.readUInt32BE(tail.length - TRAILER_BYTES);
  if (metaLen > MAX_META_BYTES || metaLen + TRAILER_BYTES > tail.length) return undefined;
  let meta: DiskMeta;
  try {
    meta = JSON.parse(tail.subarray(tail.length - TRAILER_BYTES - metaLen, tail.length - TRAILER_BYTES).toString('utf8')) as DiskMeta;
  } catch {
    return undefined;
  }
  if (typeof meta !== 'object' || meta === null || typeof meta.key !== 'string' || typeof meta.primary !== 'string' || !Array.isArray(meta.vary)) return undefined;
  if (typeof meta.bodyBytes !== 'number' || meta.bodyBytes + metaLen + TRAILER_BYTES !== fileSize) return undefined;
  return meta;
}

/** A whole entry file -> the stored response (undefined: broken). */
export function decodeEntry(file: Buffer): StoredResponse | undefined {
  const meta = decodeMeta(file, file.length);
  if (!meta) return undefined;
  const { bodyBytes, storedAt: _storedAt, ...rest } = meta;
  return { ...rest, body: file.subarray(0, bodyBytes) };
}

export interface DiskOptions {
  root: string;
  shards: number;
  /** disk-max-size: bytes of entry files kept */
  maxBytes: number;
  /** how long the startup scan may take; files not read by then are removed (default 10 s) */
  scanBudgetMs?: number;
  events?: BackendEvents;
}

export class DiskBackend implements CacheBackend {
  readonly kind = 'disk' as const;
  readonly inMemory = undefined;
  /** resolves when the startup scan is done; every lookup waits for it */
  readonly ready: Promise<void>;
  /** what the startup scan found: indexed, removed as broken, removed past the time budget */
  scanReport = { indexed: 0, removed: 0, overBudget: 0 };
  private readonly lru: LRUCache<string, Indexed>;
  private readonly variants = new Variants();
  private readonly tmpDir: string;
  private readonly writers = new Set<DiskWriter>();
  private closed = false;

  constructor(private readonly o: DiskOptions) {
    this.tmpDir = join(o.root, 'tmp');
    try {
      mkdirSync(this.tmpDir, { recursive: true });
      for (let i = 0; i < o.shards; i++) mkdirSync(join(o.root, this.shardName(i)), { recursive: true });
    } catch (err) {
      throw new Error(`cache disk-path "${o.root}": ${(err as Error).message}`, { cause: err });
    }
    this.lru = new LRUCache<string, Indexed>({
      maxSize: Math.max(1, o.maxBytes),
      sizeCalculation: (r) => Math.max(1, r.size),
      dispose: (r, key, reason) => {
        // 'set': the same key was written again; its new file already replaced this one
        if (reason === 'set') return;
        this.variants.remove(r.primary, key);
        // synchronous: a later write of the same key renames onto this path, and must not be unlinked by a late unlink
        try {
          unlinkSync(r.file);
        } catch {
          // already gone
        }
        if (reason === 'evict') this.o.events?.onEvict?.(1);
      },
    });
    this.ready = this.scan(Date.now() + (o.scanBudgetMs ?? 10_000));
  }

  private shardName(i: number): string {
    return i.toString(16).padStart(this.o.shards > 256 ? 3 : 2, '0');
  }

  private fileOf(key: string): { hash: string; file: string } {
    const hash = fileHash(key);
    const shard = parseInt(hash.slice(0, 6), 16) % this.o.shards;
    return { hash, file: join(this.o.root, this.shardName(shard), hash + SUFFIX) };
  }

  async varyOf(primary: string): Promise<string[] | undefined> {
    await this.ready;
    return this.variants.varyOf(primary);
  }

  async get(key: string): Promise<StoredResponse | undefined> {
    await this.ready;
    const r = this.lru.get(key);
    if (!r) return undefined;
    let buf: Buffer;
    try {
      // A small entry is read synchronously: from the page cache that is a copy of a few KiB,
      // cheaper than the four thread-pool round trips of an async readFile (nginx reads cached
      // files with blocking reads too). Larger ones go through the thread pool.
      buf = r.size <= SYNC_READ_BYTES ? readFileSync(r.file) : await readFile(r.file);
    } catch {
      if (this.lru.get(key) === r) this.lru.delete(key);
      return undefined;
    }
    const e = decodeEntry(buf);
    if (!e || e.key !== key) {
      // broken on disk (or replaced by a different write meanwhile): not served
      if (this.lru.peek(key) === r) this.lru.delete(key);
      return undefined;
    }
    const now = Date.now();
    if (now - r.touched > TOUCH_EVERY_MS) {
      r.touched = now;
      const t = now / 1000;
      utimes(r.file, t, t).catch(() => undefined);
    }
    return e;
  }

  async set(entry: StoredResponse): Promise<boolean> {
    const w = this.begin(entry);
    for (const part of bodyParts(entry.body)) w.write(part);
    return w.commit();
  }

  begin(meta: EntryMeta): EntryWriter {
    const { hash, file } = this.fileOf(meta.key);
    const tmp = join(this.tmpDir, `${hash}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const w = new DiskWriter(this, meta, tmp, file);
    this.writers.add(w);
    return w;
  }

  /** A writer finished its file under tmp/: move it into place and index it. */
  async install(w: DiskWriter, meta: EntryMeta, tmp: string, file: string, size: number): Promise<boolean> {
    this.writers.delete(w);
    await this.ready;
    if (this.closed || size > this.o.maxBytes) {
      await unlink(tmp).catch(() => undefined);
      return false;
    }
    try {
      await rename(tmp, file);
    } catch {
      await unlink(tmp).catch(() => undefined);
      return false;
    }
    this.index({ key: meta.key, primary: meta.primary, host: meta.host, target: meta.target, vary: meta.vary, file, size, touched: Date.now() });
    return true;
  }

  forget(w: DiskWriter): void {
    this.writers.delete(w);
  }

  private index(r: Indexed): void {
    // A new Vary for the resource makes its old variants unreachable: drop them.
    for (const k of this.variants.add(r.primary, r.key, r.vary)) this.lru.delete(k);
    this.lru.set(r.key, r);
    this.o.events?.onSize?.('disk', this.stats());
  }

  async purge(match: (target: string, host: string) => boolean): Promise<number> {
    await this.ready;
    const doomed: string[] = [];
    for (const [key, r] of this.lru.entries()) if (match(r.target, r.host)) doomed.push(key);
    for (const k of doomed) this.lru.delete(k);
    this.o.events?.onSize?.('disk', this.stats());
    return doomed.length;
  }

  stats(): BackendStats {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize };
  }

  tiers(): { disk: BackendStats } {
    return { disk: this.stats() };
  }

  /** Stops writing; entries stay on disk for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    for (const w of [...this.writers]) w.abort();
    await this.ready.catch(() => undefined);
  }

  /** Reads one file's metadata; undefined when it is not a complete entry stored under its own name. */
  private async readRecord(file: string, name: string): Promise<Indexed | undefined> {
    const fh = await open(file, 'r');
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.size < TRAILER_BYTES) return undefined;
      const head = Buffer.alloc(TRAILER_BYTES);
      await fh.read(head, 0, TRAILER_BYTES, st.size - TRAILER_BYTES);
      if (!head.subarray(4).equals(MAGIC)) return undefined;
      const metaLen = head.readUInt32BE(0);
      if (metaLen > MAX_META_BYTES || metaLen + TRAILER_BYTES > st.size) return undefined;
      const tail = Buffer.alloc(metaLen + TRAILER_BYTES);
      await fh.read(tail, 0, tail.length, st.size - tail.length);
      const meta = decodeMeta(tail, st.size);
      if (!meta || fileHash(meta.key) + SUFFIX !== name) return undefined;
      return { key: meta.key, primary: meta.primary, host: meta.host, target: meta.target, vary: meta.vary, file, size: st.size, touched: st.mtimeMs };
    } finally {
      await fh.close();
    }
  }

  /** Rebuilds the index from the shard directories; least recently used first, so the budget evicts those. */
  private async scan(deadline: number): Promise<void> {
    // tmp/ holds writes that never completed (crash, kill): never entries
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      if (name.endsWith('.tmp') && !name.includes(`.${process.pid}.`)) await unlink(join(this.tmpDir, name)).catch(() => undefined);
    }
    const found: Indexed[] = [];
    const late: string[] = [];
    const dirs = (await readdir(this.o.root, { withFileTypes: true })).filter((d) => d.isDirectory() && SHARD_DIR.test(d.name));
    for (const d of dirs) {
      const names = await readdir(join(this.o.root, d.name)).catch(() => [] as string[]);
      for (let i = 0; i < names.length; i += SCAN_PARALLEL) {
        const batch = names.slice(i, i + SCAN_PARALLEL);
        if (Date.now() > deadline) {
          for (const n of batch) late.push(join(this.o.root, d.name, n));
          continue;
        }
        await Promise.all(
          batch.map(async (name) => {
            const file = join(this.o.root, d.name, name);
            const r = name.endsWith(SUFFIX) ? await this.readRecord(file, name).catch(() => undefined) : undefined;
            if (r) found.push(r);
            else {
              this.scanReport.removed++;
              await rm(file, { recursive: true, force: true }).catch(() => undefined);
            }
          }),
        );
      }
    }
    found.sort((a, b) => a.touched - b.touched);
    for (const r of found) this.index(r);
    this.scanReport.indexed = this.lru.size;
    this.scanReport.overBudget = late.length;
    this.o.events?.onSize?.('disk', this.stats());
    // not indexed in time: removed (in the background) so the directory stays within the budget
    if (late.length > 0) void Promise.all(late.map((f) => rm(f, { force: true }).catch(() => undefined)));
  }
}

/** Appends the body to a tmp file as it arrives; the trailer and the rename come at commit. */
class DiskWriter implements EntryWriter {
  private ws: WriteStream | undefined;
  private failed = false;
  private done = false;
  private size = 0;

  constructor(
    private readonly store: DiskBackend,
    private readonly meta: EntryMeta,
    private readonly tmp: string,
    private readonly file: string,
  ) {}

  private stream(): WriteStream {
    if (!this.ws) {
      this.ws = createWriteStream(this.tmp, { flags: 'wx' });
      this.ws.on('error', () => {
        this.failed = true;
      });
    }
    return this.ws;
  }

  write(chunk: Buffer): void {
    if (this.done || this.failed || chunk.length === 0) return;
    this.size += chunk.length;
    this.stream().write(chunk);
  }

  async commit(): Promise<boolean> {
    if (this.done) return false;
    this.done = true;
    const ws = this.stream();
    const trailer = encodeTrailer(this.meta, this.size, Date.now());
    ws.end(trailer);
    try {
      await finished(ws);
    } catch {
      this.failed = true;
    }
    if (this.failed) {
      this.store.forget(this);
      await unlink(this.tmp).catch(() => undefined);
      return false;
    }
    return this.store.install(this, this.meta, this.tmp, this.file, this.size + trailer.length);
  }

  abort(): void {
    if (this.done) return;
    this.done = true;
    this.store.forget(this);
    const ws = this.ws;
    if (!ws) return;
    ws.destroy();
    // after the stream let go of the fd; the file never reaches its shard
    ws.once('close', () => void unlink(this.tmp).catch(() => undefined));
  }
}
