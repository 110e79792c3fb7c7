// Serves one route's `static-files { }`: path -> file under the real root (symlinks leaving it
// refused), index / trailing-slash redirect / listing for directories, SPA fallback for misses,
// validators and conditional requests, one byte range, precompressed `.br` / `.gz` siblings and
// on-the-fly compression when `compress` is on. Resolved paths are reused for a second; a small
// file is read in one synchronous read (checked to still be the file resolved), a larger one is
// streamed (never read whole; its handle is closed when the body ends, the client leaves or
// nothing reads it).
import { opendir, realpath, stat } from 'node:fs/promises';
import { closeSync, constants, createReadStream, fstatSync, openSync, readSync, type Stats } from 'node:fs';
import { LRUCache } from 'lru-cache';
import type { ServerResponse } from 'node:http';
import { basename, join, sep } from 'node:path';
import { Readable, pipeline } from 'node:stream';
import type { HeaderMap, RequestContext, ResponseSource } from '../../src/pipeline/types.ts';
import { errorBody } from '../../src/errors/index.ts';
import { relayBody } from '../../src/server/forwarder.ts';
import { DEFAULT_COMPRESSIBLE, chooseCoding, isCompressible, rankCodings, type Coding } from '../compress/negotiate.ts';
import { createEncoder } from '../compress/encoder.ts';
import type { StaticFilesSettings } from './schema.ts';
import { conditionalStatus, evaluateRange, ifRangeAllows, resolveSegments, validatorsOf, type Validators } from './request.ts';
import { contentTypeOf } from './mime.ts';
import { renderListing, type ListingEntry } from './listing.ts';

/** On-the-fly compression of static files: smaller files are not worth the bytes of framing. */
const MIN_COMPRESS_BYTES = 1024;
/** gzip/brotli level for on-the-fly compression of files (the compress filter's default). */
const FILE_COMPRESS_LEVEL = 6;
/** At most this many names in a directory listing (the page is built in memory). */
const MAX_LISTING_ENTRIES = 5000;
/** Precompressed siblings, in the server's order of preference. */
const SIBLINGS: readonly { coding: 'br' | 'gzip'; ext: string }[] = [
  { coding: 'br', ext: '.br' },
  { coding: 'gzip', ext: '.gz' },
];
const SIBLING_CODINGS = SIBLINGS.map((s) => s.coding);
/**
 * How long a resolved path (realpath + stat + validators) is reused before the file system is
 * asked again: a changed, added or removed file is seen within this time (nginx's
 * open_file_cache does the same with its `valid` time).
 */
const RESOLVE_TTL_MS = 1000;
/** Resolved paths remembered per route (least recently used forgotten first). */
const RESOLVE_ENTRIES = 4096;
/**
 * Files up to this size are read whole with one synchronous read and sent as one buffer: from the
 * page cache that costs less than the thread-pool round trips of a stream (open, read, read,
 * close); larger files stream. The disk cache reads its small entries the same way.
 */
const SMALL_FILE_BYTES = 64 * 1024;
/** Opens the resolved file without following a symlink that replaced it since it was resolved. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;
const LIVE_CODINGS: readonly Coding[] = ['br', 'gzip', 'deflate'];

/**
 * A response made here and relayed like an upstream's. `make` opens the body when the relay
 * wants it; `release` frees what was prepared for it (a file handle) when nobody did.
 */
class LocalSource implements ResponseSource {
  private stream: Readable | undefined;
  private finished = false;

  constructor(
    readonly statusCode: number,
    readonly headers: HeaderMap,
    private readonly make: (() => Readable) | Buffer | undefined,
  ) {}

  get body(): Readable {
    const m = this.make;
    this.stream ??= m && !this.finished ? (Buffer.isBuffer(m) ? Readable.from([m]) : m()) : Readable.from([]);
    return this.stream;
  }

  relayTo(res: ServerResponse, status: number, headers: HeaderMap): Promise<{ bytes: number; error?: unknown; clientClosed?: boolean }> {
    res.writeHead(status, headers as Record<string, string | string[]>);
    const m = this.make;
    if (!m || Buffer.isBuffer(m)) {
      // a body already in memory goes out with the headers in one write
      res.end(m);
      return Promise.resolve({ bytes: m?.length ?? 0 });
    }
    return relayBody(this.body, res);
  }

  dump(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.stream && !this.stream.destroyed) this.stream.destroy();
  }
}

function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The realpath of `p` when it exists and stays under `root`; 'missing' / 'outside' otherwise. */
async function realInside(root: string, p: string): Promise<{ real: string; st: Stats } | 'missing' | 'outside'> {
  let real: string;
  try {
    real = await realpath(p);
  } catch {
    return 'missing';
  }
  if (!inside(root, real)) return 'outside';
  try {
    return { real, st: await stat(real) };
  } catch {
    return 'missing';
  }
}

type Resolved = { real: string; st: Stats; validators: Validators } | 'missing' | 'outside';

/**
 * A small file's bytes in one synchronous read, when it is still the file `st` describes (same
 * inode, size and mtime: the validators sent with it stay true); undefined when it changed since
 * (or was replaced by a symlink, or cannot be opened).
 */
function readWhole(path: string, st: Stats): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, OPEN_FLAGS);
  } catch {
    return undefined;
  }
  try {
    if (!sameFile(fstatSync(fd), st)) return undefined;
    const buf = Buffer.allocUnsafe(st.size);
    let n = 0;
    for (let r = -1; r !== 0 && n < st.size; n += r) r = readSync(fd, buf, n, st.size - n, n);
    return n === st.size ? buf : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Still the file `st` describes: same inode, size and mtime (the validators sent stay true). */
function sameFile(now: Stats, st: Stats): boolean {
  return now.ino === st.ino && now.dev === st.dev && now.size === st.size && now.mtimeMs === st.mtimeMs;
}

export class StaticFileServer {
  /** path under the root -> what realInside found, with the validators precomputed (RESOLVE_TTL_MS) */
  private readonly resolved = new LRUCache<string, Resolved>({ max: RESOLVE_ENTRIES, ttl: RESOLVE_TTL_MS });

  private constructor(
    private readonly s: StaticFilesSettings,
    /** the root with its symlinks resolved: every served file must be under it */
    private readonly root: string,
  ) {}

  /** realInside, remembered for RESOLVE_TTL_MS (`fresh`: ask the file system now). */
  private async resolve(p: string, fresh = false): Promise<Resolved> {
    const known = fresh ? undefined : this.resolved.get(p);
    if (known !== undefined) return known;
    const r = await realInside(this.root, p);
    const out: Resolved = typeof r === 'object' ? { ...r, validators: validatorsOf(r.st.size, r.st.mtimeMs) } : r;
    this.resolved.set(p, out);
    return out;
  }

  /** Resolves the root; throws when it is missing or not a directory. */
  static async open(settings: StaticFilesSettings): Promise<StaticFileServer> {
    const problem = await StaticFileServer.problem(settings);
    if (problem) throw new Error(problem);
    return new StaticFileServer(settings, await realpath(settings.root));
  }

  /** What is wrong with the settings on this machine (for `sentinel test` and the build). */
  static async problem(settings: StaticFilesSettings): Promise<string | undefined> {
    try {
      const st = await stat(settings.root);
      if (!st.isDirectory()) return `static-files root "${settings.root}" is not a directory`;
    } catch {
      return `static-files root "${settings.root}" does not exist`;
    }
    return undefined;
  }

  /** `fresh`: resolve every path again (a file changed between its stat and its read). */
  async respond(ctx: RequestContext, fresh = false): Promise<ResponseSource> {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return this.error(ctx, 405, 'Method Not Allowed', { allow: 'GET, HEAD' });
    const v = resolveSegments(ctx.path, this.s.serveDotfiles);
    if (!v.ok) return v.status === 400 ? this.error(ctx, 400, 'Bad Request: path not allowed') : this.notFound(ctx);
    const found = await this.resolve(join(this.root, ...v.segments), fresh);
    if (found === 'outside') return this.notFound(ctx); // a symlink out of the root: as if absent
    if (found === 'missing') return this.miss(ctx, fresh);
    const { real, st } = found;
    if (st.isDirectory()) {
      if (!v.trailingSlash) {
        // as nginx: the directory's URL ends with '/', so relative links in its index resolve
        const location = `${ctx.path}/${ctx.query ? `?${ctx.query}` : ''}`;
        return this.simple(ctx, 301, { location, 'content-type': 'text/html; charset=utf-8' }, Buffer.from(`<a href="${location.replace(/[&<>"']/g, '')}">Moved Permanently</a>\n`));
      }
      if (this.s.index !== '') {
        const index = await this.resolve(join(real, this.s.index), fresh);
        if (typeof index === 'object' && index.st.isFile()) return this.file(ctx, index, fresh);
      }
      if (this.s.directoryListing) return this.listing(ctx, real);
      return this.error(ctx, 403, 'Forbidden');
    }
    // a file asked for as a directory, or a device / socket / FIFO: not served
    if (!st.isFile() || v.trailingSlash) return this.notFound(ctx);
    return this.file(ctx, found, fresh);
  }

  /** Nothing at that path: the SPA fallback file when configured, else 404. */
  private async miss(ctx: RequestContext, fresh: boolean): Promise<ResponseSource> {
    if (this.s.fallback === undefined) return this.notFound(ctx);
    const fb = await this.resolve(join(this.root, this.s.fallback), fresh);
    if (typeof fb !== 'object' || !fb.st.isFile()) return this.notFound(ctx);
    return this.file(ctx, fb, fresh);
  }

  private async file(ctx: RequestContext, found: { real: string; st: Stats; validators: Validators }, fresh: boolean): Promise<ResponseSource> {
    const { real: path, st } = found;
    const h = ctx.raw.headers;
    const type = contentTypeOf(basename(path));
    const headers: HeaderMap = { 'content-type': type, 'x-content-type-options': 'nosniff' };
    if (this.s.cacheControl !== '') headers['cache-control'] = this.s.cacheControl;
    let body = { path, st };
    let validators: Validators = found.validators;
    let live: Coding | undefined;
    if (this.s.compress) {
      const compressible = isCompressible(type, DEFAULT_COMPRESSIBLE);
      let vary = compressible;
      for (const coding of rankCodings(h['accept-encoding'], SIBLING_CODINGS)) {
        const ext = SIBLINGS.find((x) => x.coding === coding)!.ext;
        const sib = await this.resolve(path + ext, fresh);
        if (typeof sib !== 'object' || !sib.st.isFile()) continue;
        body = { path: sib.real, st: sib.st };
        validators = { ...validatorsOf(sib.st.size, sib.st.mtimeMs, `-${coding}`), lastModified: validators.lastModified, mtimeSecs: validators.mtimeSecs };
        headers['content-encoding'] = coding;
        vary = true;
        break;
      }
      // No sibling: compress while streaming (not for a Range request: ranges are served from the identity bytes).
      if (headers['content-encoding'] === undefined && compressible && st.size >= MIN_COMPRESS_BYTES && h.range === undefined) {
        live = chooseCoding(h['accept-encoding'], LIVE_CODINGS);
        if (live) {
          headers['content-encoding'] = live;
          validators = { ...validators, etag: `W/${validatorsOf(st.size, st.mtimeMs, `-${live}`).etag}` };
        }
      }
      if (vary) headers.vary = 'Accept-Encoding';
    }
    headers.etag = validators.etag;
    headers['last-modified'] = validators.lastModified;
    const cond = conditionalStatus(h, validators);
    if (cond === 412) return this.error(ctx, 412, 'Precondition Failed');
    if (cond === 304) {
      const out: HeaderMap = { etag: headers.etag, 'last-modified': headers['last-modified'] };
      for (const k of ['cache-control', 'vary'] as const) if (headers[k] !== undefined) out[k] = headers[k];
      return new LocalSource(304, out, undefined);
    }
    const head = ctx.method === 'HEAD';
    if (live) {
      // length unknown until the encoder is done: chunked
      if (head) return new LocalSource(200, headers, undefined);
      if (body.st.size <= SMALL_FILE_BYTES) {
        const bytes = readWhole(body.path, body.st);
        if (bytes) return new LocalSource(200, headers, () => encoded(Readable.from([bytes]), live, bytes.length));
      }
      // changed since resolved, or a large file (streamed by name): resolved again first
      if (!fresh) return this.respond(ctx, true);
      return new LocalSource(200, headers, () => encoded(fileStream(body.path, body.st, 0, body.st.size - 1), live, body.st.size));
    }
    headers['accept-ranges'] = 'bytes';
    let status = 200;
    let start = 0;
    let end = body.st.size - 1;
    if (h.range !== undefined && ifRangeAllows(h['if-range'], validators)) {
      const r = evaluateRange(h.range, body.st.size);
      if (r.kind === 'unsatisfiable') {
        return this.error(ctx, 416, 'Range Not Satisfiable', { 'content-range': `bytes */${body.st.size}`, 'accept-ranges': 'bytes' });
      }
      if (r.kind === 'partial') {
        status = 206;
        start = r.start;
        end = r.end;
        headers['content-range'] = `bytes ${start}-${end}/${body.st.size}`;
      }
    }
    headers['content-length'] = String(end - start + 1);
    if (head || end < start) return new LocalSource(status, headers, head ? undefined : () => Readable.from([]));
    if (body.st.size <= SMALL_FILE_BYTES) {
      const bytes = readWhole(body.path, body.st);
      if (bytes) return new LocalSource(status, headers, status === 206 ? bytes.subarray(start, end + 1) : bytes);
      // changed since it was resolved (or replaced by a symlink): look again, once; then stream what is there
      if (!fresh) return this.respond(ctx, true);
    } else if (!fresh) {
      // a stream opens the file later, by name, following symlinks: on a path resolved just now,
      // as without the resolve cache, not on one resolved up to RESOLVE_TTL_MS ago
      return this.respond(ctx, true);
    }
    return new LocalSource(status, headers, () => fileStream(body.path, body.st, start, end));
  }

  private async listing(ctx: RequestContext, dir: string): Promise<ResponseSource> {
    const entries: ListingEntry[] = [];
    let truncated = false;
    const d = await opendir(dir);
    try {
      for await (const e of d) {
        if (e.name.startsWith('.') && !this.s.serveDotfiles && e.name !== '.well-known') continue;
        if (entries.length >= MAX_LISTING_ENTRIES) {
          truncated = true;
          break;
        }
        entries.push({ name: e.name, dir: e.isDirectory() });
      }
    } finally {
      // for-await closes the Dir when it completes; after a break it is closed here
      await d.close().catch(() => undefined);
    }
    const page = Buffer.from(renderListing(ctx.path, entries, truncated));
    return this.simple(ctx, 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' }, page);
  }

  private notFound(ctx: RequestContext): ResponseSource {
    return this.error(ctx, 404, 'Not Found');
  }

  private error(ctx: RequestContext, status: number, message: string, extra: HeaderMap = {}): ResponseSource {
    return this.simple(ctx, status, { 'content-type': 'application/json; charset=utf-8', ...extra }, Buffer.from(errorBody(status, message, ctx.traceId)));
  }

  private simple(ctx: RequestContext, status: number, headers: HeaderMap, payload: Buffer): ResponseSource {
    headers['content-length'] = String(payload.length);
    return new LocalSource(status, headers, ctx.method === 'HEAD' ? undefined : () => Readable.from([payload]));
  }
}

/**
 * The file's bytes start..end (inclusive); the stream owns its fd and closes it on end or destroy.
 * Opened as readWhole opens (no symlink as the last part, the inode checked against `st`): someone
 * who can write inside the root cannot swap a parent directory for a symlink out of it between
 * the realpath check and this open. A file that changed is a failed body (the connection is cut).
 */
export function fileStream(path: string, st: Stats, start: number, end: number): Readable {
  let fd: number | undefined;
  try {
    fd = openSync(path, OPEN_FLAGS);
    if (!sameFile(fstatSync(fd), st)) throw new Error(`static file changed since it was checked: ${path}`);
    return createReadStream('', { fd, start, end, highWaterMark: 64 * 1024, autoClose: true });
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    return new Readable({ read() { this.destroy(err as Error); } });
  }
}

/** A file's bytes through an encoder (bounded zlib state, see plugins/compress/encoder.ts). */
function encoded(source: Readable, coding: Coding, size: number): Readable {
  const enc = createEncoder(coding, FILE_COMPRESS_LEVEL, size);
  return pipeline(source, enc, () => undefined);
}
