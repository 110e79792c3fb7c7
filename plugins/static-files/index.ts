// The static-files feature (docs/static-files.md): registration only. Registered when a route has
// a `static-files { }` block; each such route is answered from its root instead of an upstream,
// and the answer goes through the route's filters like an upstream response (so a compress or
// headers filter applies to files too).
import { defineFeature, DECORATION, type StaticFilesRuntime } from '../../src/pipeline/feature.ts';
import type { CompiledConfig } from '../../src/config/compile.ts';
import { StaticFileServer } from './server.ts';
import { StaticFilesConfigKeys, staticFilesCompile } from './schema.ts';

function usesStaticFiles(config: CompiledConfig): boolean {
  return config.routes.some((r) => r.staticFiles !== undefined);
}

export const staticFilesFeature = defineFeature({
  name: 'static-files',
  dependencies: [],
  uses: usesStaticFiles,
  schema: StaticFilesConfigKeys,
  compile: staticFilesCompile,
  explainRoute(_config, route) {
    const s = route.staticFiles;
    if (!s) return [];
    return [
      {
        title: 'static files (answered from files, not an upstream)',
        settings: {
          root: s.root,
          index: s.index,
          'directory-listing': s.directoryListing,
          'cache-control': s.cacheControl,
          compress: s.compress,
          fallback: s.fallback ?? null,
          'serve-dotfiles': s.serveDotfiles,
        },
      },
    ];
  },
  async check(config) {
    const errors: string[] = [];
    for (const r of config.routes) {
      if (!r.staticFiles) continue;
      const problem = await StaticFileServer.problem(r.staticFiles);
      if (problem) errors.push(`routes > route "${r.id}" > static-files: ${problem}`);
    }
    return errors;
  },
  async register(app, host) {
    const servers = new Map<string, StaticFileServer>();
    for (const r of host.config.routes) {
      if (!r.staticFiles) continue;
      try {
        servers.set(r.id, await StaticFileServer.open(r.staticFiles));
      } catch (err) {
        throw new Error(`routes > route "${r.id}" > static-files: ${(err as Error).message}`, { cause: err });
      }
    }
    const runtime: StaticFilesRuntime = {
      serves: (routeId) => servers.has(routeId),
      respond: (ctx, routeId) => servers.get(routeId)!.respond(ctx),
    };
    app.decorate(DECORATION.staticFiles, runtime);
  },
});

export default staticFilesFeature;
