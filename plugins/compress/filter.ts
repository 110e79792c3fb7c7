// The compress filter: decides per response in onResponse (headers only), then encodes the body
// chunk by chunk through one zlib stream in onResponseBody. The core feeds one chunk at a time and
// waits for each, so at most one input chunk and its output are held: backpressure comes for free
// and nothing is buffered whole.
import type { Transform } from 'node:stream';
import type { FilterFactory, RequestContext, ResponseBodyHandler, UpstreamResponseInfo } from '../../src/pipeline/types.ts';
import { addVary, chooseCoding, hasNoTransform, isCompressible, weakenEtag, type Coding } from './negotiate.ts';
import { createEncoder } from './encoder.ts';
import { compressSettings, type CompressSettings } from './schema.ts';

const NO_BYTES = Buffer.alloc(0);

/** Why a response is not compressed, or the coding to use. */
export type CompressVerdict = { coding: Coding; vary: true } | { coding: undefined; vary: boolean };

/**
 * Pure: whether and how to compress one response. Vary: Accept-Encoding is added whenever the
 * answer depended on the request's Accept-Encoding (an eligible response), so caches keep variants
 * apart; responses that are never compressed (encoded already, no-transform, other types, 206,
 * 304, 204) are left alone.
 */
export function compressVerdict(s: CompressSettings, method: string, acceptEncoding: string | string[] | undefined, status: number, headers: UpstreamResponseInfo['headers']): CompressVerdict {
  if (status < 200 || status === 204 || status === 206 || status === 304) return { coding: undefined, vary: false };
  const ce = headers['content-encoding'];
  if (ce !== undefined && String(ce).trim().toLowerCase() !== 'identity') return { coding: undefined, vary: false };
  if (hasNoTransform(headers['cache-control'])) return { coding: undefined, vary: false };
  if (!isCompressible(headers['content-type'], s.contentTypes)) return { coding: undefined, vary: false };
  const cl = headers['content-length'];
  if (typeof cl === 'string' && /^\d+$/.test(cl) && Number(cl) < s.minSize) return { coding: undefined, vary: true };
  if (method === 'HEAD') return { coding: undefined, vary: true };
  const coding = chooseCoding(acceptEncoding, s.algorithms);
  return coding ? { coding, vary: true } : { coding: undefined, vary: true };
}

/** Feeds one zlib stream and hands back what it produced for each input chunk. */
class EncodingHandler implements ResponseBodyHandler {
  readonly holdHeaders = false;
  private out: Buffer[] = [];
  private failure: Error | undefined;

  constructor(private readonly enc: Transform) {
    enc.on('data', (c: Buffer) => this.out.push(c));
    enc.on('error', (err: Error) => (this.failure = err));
  }

  private take(): Buffer {
    const out = this.out.length === 1 ? this.out[0]! : this.out.length === 0 ? NO_BYTES : Buffer.concat(this.out);
    this.out = [];
    return out;
  }

  onChunk(chunk: Buffer, isLast: boolean): Promise<Buffer> | Buffer {
    if (!isLast && chunk.length === 0) return NO_BYTES;
    return new Promise((resolve, reject) => {
      const settle = (err?: Error | null) => {
        const e = err ?? this.failure;
        if (e) reject(e);
        else resolve(this.take());
      };
      if (isLast) {
        this.enc.once('end', () => settle());
        this.enc.once('error', settle);
        this.enc.end(chunk);
      } else this.enc.write(chunk, settle);
    });
  }

  abort(): void {
    this.enc.destroy();
  }
}

export const createCompressFilter: FilterFactory = (id, config) => {
  const s = compressSettings(id, config);
  return {
    id,
    type: 'compress',
    onResponse(ctx: RequestContext, res: UpstreamResponseInfo) {
      const v = compressVerdict(s, ctx.method, ctx.raw.headers['accept-encoding'], res.status, res.headers);
      if (v.vary) addVary(res.headers, 'Accept-Encoding');
      if (!v.coding) return;
      const h = res.headers;
      const declared = typeof h['content-length'] === 'string' ? Number(h['content-length']) : undefined;
      h['content-encoding'] = v.coding;
      delete h['content-length'];
      // byte ranges of the identity representation do not apply to the encoded one
      delete h['accept-ranges'];
      const etag = weakenEtag(h.etag);
      if (etag !== undefined) h.etag = etag;
      ctx.state.set(id, { coding: v.coding, sizeHint: declared });
    },
    onResponseBody(ctx: RequestContext) {
      const chosen = ctx.state.get(id) as { coding: Coding; sizeHint: number | undefined } | undefined;
      if (!chosen) return undefined;
      return new EncodingHandler(createEncoder(chosen.coding, s.level, chosen.sizeHint));
    },
  };
};
