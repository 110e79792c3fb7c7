// Loading a plugin filter's module: resolve it against the config file's directory, import it,
// check its shape and let it validate its own `config { }`. Every problem is one message that
// names the filter and the module (a config error at `sentinel test` time and at load/reload).
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyPluginAsync, FastifyPluginCallback } from 'fastify';

/** What a plugin filter module exports. */
export interface PluginFilterModule {
  /** a Fastify plugin; Sentinel registers it with PluginFilterOptions */
  default: FastifyPluginAsync<never> | FastifyPluginCallback<never>;
  /** optional: problems with the filter's `config { }` block (empty or undefined: valid) */
  validate?: (config: Record<string, unknown>) => string[] | undefined | void;
}

export interface PluginFilterSpec {
  readonly id: string;
  readonly module: string;
  readonly config: Record<string, unknown>;
}

export function pluginFilterSpec(id: string, config: Record<string, unknown>): PluginFilterSpec {
  const settings = config.config;
  return {
    id,
    module: typeof config.module === 'string' ? config.module : '',
    config: settings !== null && typeof settings === 'object' && !Array.isArray(settings) ? (settings as Record<string, unknown>) : {},
  };
}

export function modulePath(spec: PluginFilterSpec, baseDir: string): string {
  return isAbsolute(spec.module) ? spec.module : resolve(baseDir, spec.module);
}

export class PluginLoadError extends Error {}

/**
 * Imports and checks the module. A changed file is imported again on reload (the URL carries
 * its modification time; Node caches modules by URL).
 */
export async function loadPluginFilter(spec: PluginFilterSpec, baseDir: string): Promise<PluginFilterModule> {
  const where = `filters > filter "${spec.id}" > module "${spec.module}"`;
  if (!spec.module) throw new PluginLoadError(`filters > filter "${spec.id}": a plugin filter needs module "<path>"`);
  const file = modulePath(spec, baseDir);
  let mtime: number;
  try {
    mtime = statSync(file).mtimeMs;
  } catch (err) {
    throw new PluginLoadError(`${where}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let mod: Partial<PluginFilterModule>;
  try {
    mod = (await import(`${pathToFileURL(file).href}?mtime=${mtime}`)) as Partial<PluginFilterModule>;
  } catch (err) {
    throw new PluginLoadError(`${where}: failed to load: ${(err as Error).message}`);
  }
  if (typeof mod.default !== 'function') throw new PluginLoadError(`${where}: the module must export a Fastify plugin as its default export`);
  if (mod.validate !== undefined && typeof mod.validate !== 'function') throw new PluginLoadError(`${where}: export "validate" must be a function`);
  let problems: string[] | undefined | void;
  try {
    problems = mod.validate?.(spec.config);
  } catch (err) {
    throw new PluginLoadError(`${where}: validate() threw: ${(err as Error).message}`);
  }
  if (problems && problems.length > 0) throw new PluginLoadError(`${where}: invalid config: ${problems.join('; ')}`);
  return mod as PluginFilterModule;
}
