// The route's `static-files { }` block (sentinel-reference.md §1.5) and its normalised form.
// Defaults follow Sentinel: index "index.html", directory-listing #false, cache-control
// "public, max-age=3600", compress #true; `fallback` (the SPA file) has no default, so a miss is
// a 404 unless asked otherwise. `serve-dotfiles` is ours (default #false, see docs/static-files.md).
import { isAbsolute, resolve } from 'node:path';
import { Type, type Static } from 'typebox';
import { Block } from '../../src/config/types-helpers.ts';
import type { Diagnostic } from '../../src/config/diagnostics.ts';

export const StaticFilesSchema = Block({
  root: Type.String({ minLength: 1 }),
  index: Type.Optional(Type.String({ default: 'index.html' })),
  'directory-listing': Type.Optional(Type.Boolean({ default: false })),
  'cache-control': Type.Optional(Type.String({ default: 'public, max-age=3600' })),
  compress: Type.Optional(Type.Boolean({ default: true })),
  fallback: Type.Optional(Type.String()),
  // (ours) serve names starting with '.' (other than .well-known); default: they are 404
  'serve-dotfiles': Type.Optional(Type.Boolean({ default: false })),
});
export type RawStaticFiles = Static<typeof StaticFilesSchema>;

export interface StaticFilesSettings {
  /** absolute (relative roots are resolved against the config file's folder) */
  readonly root: string;
  /** file name tried for a directory request ('' = none) */
  readonly index: string;
  readonly directoryListing: boolean;
  /** '' = no Cache-Control header */
  readonly cacheControl: string;
  readonly compress: boolean;
  /** path of the SPA fallback file, relative to root (undefined = 404 on a miss) */
  readonly fallback: string | undefined;
  readonly serveDotfiles: boolean;
}

/** A file name given in the block: one or more plain segments, no '..', no backslash or NUL. */
function plainRelative(p: string): boolean {
  if (p.includes('\\') || p.includes('\0')) return false;
  const segs = p.replace(/^\/+/, '').split('/');
  return segs.length > 0 && segs.every((s) => s !== '' && s !== '.' && s !== '..');
}

export function normaliseStaticFiles(raw: RawStaticFiles, path: string, baseDir: string, diagnostics: Diagnostic[]): StaticFilesSettings {
  const index = raw.index ?? 'index.html';
  if (index !== '' && (index.includes('/') || !plainRelative(index))) {
    diagnostics.push({ severity: 'error', path: `${path} > index`, message: `"${index}" must be a plain file name (no '/', '..', '\\')` });
  }
  if (raw.fallback !== undefined && !plainRelative(raw.fallback)) {
    diagnostics.push({ severity: 'error', path: `${path} > fallback`, message: `"${raw.fallback}" must be a path inside root (no '..', '\\', empty segments)` });
  }
  return {
    root: isAbsolute(raw.root) ? resolve(raw.root) : resolve(baseDir, raw.root),
    index,
    directoryListing: raw['directory-listing'] ?? false,
    cacheControl: raw['cache-control'] ?? 'public, max-age=3600',
    compress: raw.compress ?? true,
    fallback: raw.fallback?.replace(/^\/+/, ''),
    serveDotfiles: raw['serve-dotfiles'] ?? false,
  };
}
