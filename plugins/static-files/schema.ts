// The route's `static-files { }` block (sentinel-reference.md §1.5) and its normalised form.
// Defaults follow Sentinel: index "index.html", directory-listing #false, cache-control
// "public, max-age=3600", compress #true; `fallback` (the SPA file) has no default, so a miss is
// a 404 unless asked otherwise. `serve-dotfiles` is ours (default #false, see docs/static-files.md).
import { isAbsolute, resolve } from 'node:path';
import { Type, type Static } from 'typebox';
import { Block } from '../../src/config/types-helpers.ts';
import type { Diagnostic } from '../../src/config/diagnostics.ts';
import type { ConfigCompileSteps } from '../../src/config/compile.ts';

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

/** The keys the static-files feature adds to the config (its manifest's `schema`). */
export const StaticFilesConfigKeys = { route: { 'static-files': Type.Optional(StaticFilesSchema) } };

/** Its compile steps: a route with `static-files { }` is answered from files (service type `static`). */
export const staticFilesCompile: ConfigCompileSteps = {
  localService: (r) => (r['static-files'] ? 'static' : undefined),
  route(r, ctx) {
    const d = ctx.diagnostics;
    const settings = r['static-files'] ? normaliseStaticFiles(r['static-files'], `${ctx.path} > static-files`, ctx.baseDir, d) : undefined;
    if (settings && ctx.builtin) d.push({ severity: 'error', path: `${ctx.path} > static-files`, message: 'a route is either a builtin-handler or serves static files; keep one' });
    if (settings && r.upstream !== undefined) d.push({ severity: 'warning', path: `${ctx.path} > upstream`, message: 'ignored: this route serves static files' });
    if (r['service-type'] === 'static' && !settings) d.push({ severity: 'error', path: ctx.path, message: 'service-type "static" needs a static-files { root "..." } block' });
    return { staticFiles: ctx.builtin ? undefined : settings };
  },
};

declare module '../../src/config/schema.ts' {
  interface RouteKeys {
    'static-files': (typeof StaticFilesConfigKeys)['route']['static-files'];
  }
}
declare module '../../src/config/compile.ts' {
  interface CompiledRouteSlices {
    /** `static-files { }`: the route is answered from files, not an upstream */
    readonly staticFiles: StaticFilesSettings | undefined;
  }
}
