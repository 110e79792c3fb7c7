// One zlib stream per compressed response, with bounded memory: gzip/deflate use windowBits 15 and
// memLevel 8 (~256 KiB of state), brotli a 256 KiB window (lgwin 18) instead of its 4 MiB default,
// so many concurrent responses cannot make the encoders a memory problem.
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import type { Coding } from './negotiate.ts';

/** Brotli window (2^18 bytes): enough for web assets, 16x less than brotli's default. */
const BROTLI_LGWIN = 18;

/**
 * `level` is the gzip/deflate level (1-9); brotli takes it as its quality (1-9 of 0-11: the
 * upper qualities cost far more CPU than a streaming gateway should spend).
 */
export function createEncoder(coding: Coding, level: number, sizeHint?: number): Transform {
  if (coding === 'br') {
    const params: Record<number, number> = {
      [zlib.constants.BROTLI_PARAM_QUALITY]: level,
      [zlib.constants.BROTLI_PARAM_LGWIN]: BROTLI_LGWIN,
    };
    if (sizeHint !== undefined && sizeHint > 0) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
    return zlib.createBrotliCompress({ params });
  }
  const opts: zlib.ZlibOptions = { level, memLevel: 8, windowBits: 15 };
  return coding === 'gzip' ? zlib.createGzip(opts) : zlib.createDeflate(opts);
}
