// Entry points for loading a config: from a file (with includes) or from text.
import { dirname, resolve } from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadKdlFile, loadKdlText } from './kdl-loader.ts';
import { compileConfig, type CompiledConfig, type CompileOptions } from './compile.ts';
import { COMPOSITION } from '../features.ts';

// src/config/ when run from source, dist/src/config/ when run from the `npm run build` output.
export const DEFAULT_CONFIG_PATH = [new URL('../../config/default.kdl', import.meta.url), new URL('../../../config/default.kdl', import.meta.url)]
  .map((u) => fileURLToPath(u))
  .find((p) => existsSync(p)) ?? fileURLToPath(new URL('../../config/default.kdl', import.meta.url));

/** `language`: the config language to read with; default: the composition root's (every feature). */
type Extra = Pick<CompileOptions, 'validators'> & Partial<Pick<CompileOptions, 'language'>>;

/** `sources`: file texts to use instead of the files' contents (absolute path -> text). */
export function loadConfigFile(path: string, extra: Extra & { sources?: ReadonlyMap<string, string> } = {}): CompiledConfig {
  const abs = resolve(path);
  const { sources, language = COMPOSITION.language, ...rest } = extra;
  const doc = loadKdlFile(abs, sources);
  return compileConfig(doc.nodes, { file: abs, files: doc.files, includeLookups: doc.globs, baseDir: dirname(abs), language, ...rest }, doc.warnings);
}

/** The files a config is made of (the file and everything it includes), in load order. */
export function configFiles(path: string): string[] {
  return loadKdlFile(resolve(path)).files;
}

export function loadConfigText(text: string, opts: { name?: string; baseDir?: string } & Extra = {}): CompiledConfig {
  const baseDir = opts.baseDir ?? process.cwd();
  const doc = loadKdlText(text, opts.name ?? '<config>', baseDir);
  return compileConfig(doc.nodes, { baseDir, language: opts.language ?? COMPOSITION.language, ...(opts.validators ? { validators: opts.validators } : {}) }, doc.warnings);
}

export function defaultConfigText(): string {
  return readFileSync(DEFAULT_CONFIG_PATH, 'utf8');
}
