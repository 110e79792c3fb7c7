// `filter "c" { type "compress"; algorithms "gzip,br"; min-size 1024; level 6; content-types ... }`
// (sentinel-reference.md §1.8) and its normalised settings. `content-types` is ours (Sentinel's
// list is fixed: text/html, text/css, application/json, application/javascript).
import { Type } from 'typebox';
import type { Diagnostic } from '../../src/config/diagnostics.ts';
import { DEFAULT_COMPRESSIBLE, type Coding } from './negotiate.ts';

export const CompressFilterProperties = {
  /** comma-separated, in the server's order of preference: gzip, br (brotli), deflate (zstd: not on Node 20) */
  algorithms: Type.Optional(Type.String({ default: 'gzip,br' })),
  /** responses whose Content-Length is below this are sent as they are */
  'min-size': Type.Optional(Type.Integer({ minimum: 0, default: 1024 })),
  /** 1 (fast) - 9 (small): gzip/deflate level, brotli quality */
  level: Type.Optional(Type.Integer({ minimum: 1, maximum: 9, default: 6 })),
  /** (ours) media types to compress; "type/*" entries match a whole type */
  'content-types': Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
};

export interface CompressSettings {
  /** codings, in the server's order of preference */
  readonly algorithms: readonly Coding[];
  readonly minSize: number;
  readonly level: number;
  readonly contentTypes: readonly string[];
}

const NAMES: Record<string, Coding> = { gzip: 'gzip', br: 'br', brotli: 'br', deflate: 'deflate' };

/** Normalises a decoded compress filter; problems go to `diagnostics` (errors and warnings). */
export function compressSettings(id: string, config: Record<string, unknown>, diagnostics: Diagnostic[] = []): CompressSettings {
  const path = `filters > filter "${id}"`;
  const algorithms: Coding[] = [];
  for (const raw of String(config.algorithms ?? 'gzip,br').split(',')) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    const coding = NAMES[name];
    if (coding) {
      if (!algorithms.includes(coding)) algorithms.push(coding);
    } else if (name === 'zstd') {
      diagnostics.push({ severity: 'warning', path: `${path} > algorithms`, message: 'zstd is not available in this Node.js version; it is left out' });
    } else {
      diagnostics.push({ severity: 'error', path: `${path} > algorithms`, message: `unknown algorithm "${name}": expected gzip, br (or brotli), deflate` });
    }
  }
  if (algorithms.length === 0 && !diagnostics.some((d) => d.severity === 'error')) {
    diagnostics.push({ severity: 'error', path: `${path} > algorithms`, message: 'no usable algorithm: give gzip, br or deflate' });
  }
  const types = (config['content-types'] as string[] | undefined)?.map((t) => t.trim().toLowerCase());
  for (const t of types ?? []) {
    if (!/^[a-z0-9!#$&^_.+-]+\/([a-z0-9!#$&^_.+-]+|\*)$/.test(t)) diagnostics.push({ severity: 'error', path: `${path} > content-types`, message: `"${t}" is not a media type (expected e.g. "text/html" or "text/*")` });
  }
  return {
    algorithms,
    minSize: (config['min-size'] as number | undefined) ?? 1024,
    level: (config.level as number | undefined) ?? 6,
    contentTypes: types ?? DEFAULT_COMPRESSIBLE,
  };
}

/** The compiler's check (src/server/validators.ts). */
export function validateCompressFilter(id: string, config: Record<string, unknown>): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  compressSettings(id, config, diagnostics);
  return diagnostics;
}
