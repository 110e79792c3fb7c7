// Serves one route's `static-files { }`: path -> file under the real root (symlinks leaving it
// refused), index / trailing-slash redirect / listing for directories, SPA fallback for misses,
// validators and conditional requests, one byte range, precompressed `.br` / `.gz` siblings and
// on-the-fly compression when `compress` is on. Bodies are streamed from the file (never read
// whole); the file handle is closed when the body ends, the client leaves or nothing reads it.
import { opendir, realpath, stat } from 'node:fs/promises';
import { createReadStream, type Stats } from 'node:fs';
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
    private readonly make: (() => Readable) | undefined,
  ) {}

  get body(): Readable {
    this.stream ??= this.make && !this.finished ? this.make() : Readable.from([]);
    return this.stream;
  }

  relayTo(res: ServerResponse): Promise<{ bytes: number; error?: unknown; clientClosed?: boolean }> {
    if (!this.make) {
      res.end();
      return Promise.resolve({ bytes: 0 });
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

export class StaticFileServer {
  private constructor(
    private readonly s: StaticFilesSettings,
    /** the root with its symlinks resolved: every served file must be under it */
    private readonly root: string,
  ) {}

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

  async respond(ctx: RequestContext): Promise<ResponseSource> {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return this.error(ctx, 405, 'Method Not Allowed', { allow: 'GET, HEAD' });
    const v = resolveSegments(ctx.path, this.s.serveDotfiles);
    if (!v.ok) return v.status === 400 ? this.error(ctx, 400, 'Bad Request: path not allowed') : this.notFound(ctx);
    const found = await realInside(this.root, join(this.root, ...v.segments));
    if (found === 'outside') return this.notFound(ctx); // a symlink out of the root: as if absent
    if (found === 'missing') return this.miss(ctx);
    const { real, st } = found;
    if (st.isDirectory()) {
      if (!v.trailingSlash) {
        // as nginx: the directory's URL ends with '/', so relative links in its index resolve
        const location = `${ctx.path}/${ctx.query ? `?${ctx.query}` : ''}`;
        return this.simple(ctx, 301, { location, 'content-type': 'text/html; charset=utf-8' }, Buffer.from(`<a href="${location.replace(/[&<>"']/g, '')}">Moved Permanently</a>\n`));
      }
      if (this.s.index !== '') {
        const index = await realInside(this.root, join(real, this.s.index));
        if (typeof index === 'object' && index.st.isFile()) return this.file(ctx, index.real, index.st);
      }
      if (this.s.directoryListing) return this.listing(ctx, real);
      return this.error(ctx, 403, 'Forbidden');
    }
    // a file asked for as a directory, or a device / socket / FIFO: not served
    if (!st.isFile() || v.trailingSlash) return this.notFound(ctx);
    return this.file(ctx, real, st);
  }

  /** Nothing at that path: the SPA fallback file when configured, else 404. */
  private async miss(ctx: RequestContext): Promise<ResponseSource> {
    if (this.s.fallback === undefined) return this.notFound(ctx);
    const fb = await realInside(this.root, join(this.root, this.s.fallback));
    if (typeof fb !== 'object' || !fb.st.isFile()) return this.notFound(ctx);
    return this.file(ctx, fb.real, fb.st);
  }

  private async file(ctx: RequestContext, path: string, st: Stats): Promise<ResponseSource> {
    const h = ctx.raw.headers;
    const type = contentTypeOf(basename(path));
    const headers: HeaderMap = { 'content-type': type, 'x-content-type-options': 'nosniff' };
    if (this.s.cacheControl !== '') headers['cache-control'] = this.s.cacheControl;
    let body = { path, size: st.size };
    let validators: Validators = validatorsOf(st.size, st.mtimeMs);
    let live: Coding | undefined;
    if (this.s.compress) {
      const compressible = isCompressible(type, DEFAULT_COMPRESSIBLE);
      let vary = compressible;
      for (const coding of rankCodings(h['accept-encoding'], SIBLING_CODINGS)) {
        const ext = SIBLINGS.find((x) => x.coding === coding)!.ext;
        const sib = await realInside(this.root, path + ext);
        if (typeof sib !== 'object' || !sib.st.isFile()) continue;
        body = { path: sib.real, size: sib.st.size };
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
      return new LocalSource(200, headers, head ? undefined : () => compressed(body.path, live, body.size));
    }
    headers['accept-ranges'] = 'bytes';
    let status = 200;
    let start = 0;
    let end = body.size - 1;
    if (h.range !== undefined && ifRangeAllows(h['if-range'], validators)) {
      const r = evaluateRange(h.range, body.size);
      if (r.kind === 'unsatisfiable') {
        return this.error(ctx, 416, 'Range Not Satisfiable', { 'content-range': `bytes */${body.size}`, 'accept-ranges': 'bytes' });
      }
      if (r.kind === 'partial') {
        status = 206;
        start = r.start;
        end = r.end;
        headers['content-range'] = `bytes ${start}-${end}/${body.size}`;
      }
    }
    headers['content-length'] = String(end - start + 1);
    if (head || end < start) return new LocalSource(status, headers, head ? undefined : () => Readable.from([]));
    return new LocalSource(status, headers, () => fileStream(body.path, start, end));
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

/** The file's bytes start..end (inclusive); the stream owns its fd and closes it on end or destroy. */
function fileStream(path: string, start: number, end: number): Readable {
  return createReadStream(path, { start, end, highWaterMark: 64 * 1024 });
}

/** The whole file through an encoder (bounded zlib state, see plugins/compress/encoder.ts). */
function compressed(path: string, coding: Coding, size: number): Readable {
  const enc = createEncoder(coding, FILE_COMPRESS_LEVEL, size);
  return pipeline(fileStream(path, 0, size - 1), enc, () => undefined);
}
