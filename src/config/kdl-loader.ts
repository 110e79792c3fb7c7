// Reads a Sentinel KDL file: parses KDL 2.0 with our own parser (src/config/kdl/), expands top-level
// `include "glob"` nodes (relative to the including file, sorted, recursive, cycles rejected, no match =
// warning) and remembers which file every node came from; the parser gives each node's line and column.
import { readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { KdlSyntaxError, parseDocument } from './kdl/parser.ts';
import type { KdlNode } from './kdl/types.ts';
import type { Diagnostic, SourceLocation } from './diagnostics.ts';
import { ConfigError } from './diagnostics.ts';

export type { KdlNode, KdlValue } from './kdl/types.ts';

// node -> the file it was parsed from (positions are on the node itself)
const nodeFiles = new WeakMap<KdlNode, string>();

export function locationOf(node: KdlNode): SourceLocation | undefined {
  const file = nodeFiles.get(node);
  return file === undefined ? undefined : { file, line: node.position.line, column: node.position.column };
}

export interface LoadedDocument {
  nodes: KdlNode[];
  files: string[];
  /** where the include globs looked (folder, name pattern): a file created there may change the config */
  globs: IncludeLookup[];
  warnings: Diagnostic[];
}

/** A folder an include glob read and the pattern (a RegExp source) its names were matched against. */
export interface IncludeLookup {
  dir: string;
  name: string;
}

/** Parses KDL text (one file) into nodes that know their location. Throws ConfigError on syntax errors. */
export function parseKdl(text: string, file: string): KdlNode[] {
  let nodes: KdlNode[];
  try {
    nodes = parseDocument(text);
  } catch (err) {
    if (!(err instanceof KdlSyntaxError)) throw err;
    throw new ConfigError([
      {
        severity: 'error',
        path: '',
        message: `KDL syntax error: ${err.reason}\n${err.snippet}`,
        location: { file, line: err.line, column: err.column },
      },
    ]);
  }
  tagFile(nodes, file);
  return nodes;
}

function tagFile(nodes: KdlNode[], file: string): void {
  for (const node of nodes) {
    nodeFiles.set(node, file);
    tagFile(node.children, file);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Where one load reads: the config file's folder as given (`shown`, what diagnostics and `files`
 * name) and the folder it really is in, resolved once per load (`real`). A mounted Kubernetes
 * ConfigMap is `config.kdl -> ..data/config.kdl`, `..data -> ..<timestamp>/`, swapped by renaming
 * `..data`; reading each include through the symlinks let a swap between two reads build a config
 * of the old main file and the new includes. The timestamped folder never changes, so every file
 * under `shown` is read from `real` (docs/security.md, "Session 21 audit").
 */
interface Snapshot {
  shown: string;
  real: string;
}

/** The path a file is read from: under the snapshot's folder when it is under the shown one. */
function onDisk(file: string, snap: Snapshot | undefined): string {
  if (snap === undefined) return file;
  if (file === snap.shown) return snap.real;
  return file.startsWith(snap.shown + sep) ? snap.real + file.slice(snap.shown.length) : file;
}

/** The inverse of onDisk, for the paths a glob found in the snapshot. */
function asShown(file: string, snap: Snapshot | undefined): string {
  if (snap === undefined) return file;
  if (file === snap.real) return snap.shown;
  return file.startsWith(snap.real + sep) ? snap.shown + file.slice(snap.real.length) : file;
}

/** Test seam: called after each config file is read (the swap race is injected here). */
export const loaderHooks: { afterRead?: (file: string) => void } = {};

/**
 * Loads a config file and everything it includes, as one list of top-level nodes. `sources`
 * (absolute path -> text) replaces files' contents (`sentinel migrate` checks its rewrite before writing).
 */
export function loadKdlFile(path: string, sources?: ReadonlyMap<string, string>): LoadedDocument {
  const warnings: Diagnostic[] = [];
  const files: string[] = [];
  const globs: IncludeLookup[] = [];
  const abs = resolve(path);
  let snap: Snapshot | undefined;
  try {
    // Only the Kubernetes shape (the file reached through the folder's `..data` symlink): a config
    // file that is a symlink elsewhere (stow, Nix, /etc/alternatives, certbot-style layouts) keeps
    // its includes relative to the path as given, as before session 21 (session 22 audit: they
    // were read from the target's folder, and routes in `conf.d/` silently matched no files).
    const shown = dirname(abs);
    const real = dirname(realpathSync(abs));
    if (real !== shown && real === realpathSync(join(shown, '..data'))) snap = { shown, real };
  } catch {
    // missing (or no `..data`): the read below reports a missing file
  }
  const nodes = loadRecursive(abs, [], { warnings, files, globs, sources, snap });
  return { nodes, files, globs: dedupeLookups(globs), warnings };
}

function dedupeLookups(globs: IncludeLookup[]): IncludeLookup[] {
  const seen = new Map<string, IncludeLookup>();
  for (const g of globs) seen.set(`${g.dir}\0${g.name}`, g);
  return [...seen.values()];
}

/** Parses config text that has no file behind it (the embedded default, tests). Includes resolve against baseDir. */
export function loadKdlText(text: string, name: string, baseDir = process.cwd()): LoadedDocument {
  const warnings: Diagnostic[] = [];
  const files: string[] = [];
  const globs: IncludeLookup[] = [];
  const nodes = expandIncludes(parseKdl(text, name), join(baseDir, name), [], { warnings, files, globs });
  return { nodes, files, globs: dedupeLookups(globs), warnings };
}

/** What one load collects and reads through. */
interface LoadState {
  warnings: Diagnostic[];
  files: string[];
  globs: IncludeLookup[];
  sources?: ReadonlyMap<string, string> | undefined;
  snap?: Snapshot | undefined;
}

function loadRecursive(file: string, stack: string[], st: LoadState): KdlNode[] {
  const { files, sources, snap } = st;
  if (stack.includes(file)) {
    throw new ConfigError([
      { severity: 'error', path: 'include', message: `circular include: ${[...stack, file].join(' -> ')}`, location: { file } },
    ]);
  }
  let text: string;
  try {
    text = sources?.get(file) ?? readFileSync(onDisk(file, snap), 'utf8');
  } catch (err) {
    throw new ConfigError([
      { severity: 'error', path: '', message: `cannot read config file: ${(err as Error).message}`, location: { file } },
    ]);
  }
  loaderHooks.afterRead?.(file);
  files.push(file);
  return expandIncludes(parseKdl(text, file), file, [...stack, file], st);
}

function expandIncludes(nodes: KdlNode[], file: string, stack: string[], st: LoadState): KdlNode[] {
  const { warnings, snap } = st;
  const out: KdlNode[] = [];
  for (const node of nodes) {
    if (node.name !== 'include') {
      out.push(node);
      continue;
    }
    const pattern = node.values[0];
    if (typeof pattern !== 'string') {
      throw new ConfigError([
        { severity: 'error', path: 'include', message: 'expected a glob string argument, e.g. include "routes/*.kdl"', location: locationOf(node) ?? { file } },
      ]);
    }
    // globbed in the snapshot (onDisk also maps an absolute pattern under the config's folder)
    const lookedIn = (dir: string, name: RegExp): void => void st.globs.push({ dir: asShown(dir, snap), name: name.source });
    const matches = expandGlob(onDisk(isAbsolute(pattern) ? pattern : join(dirname(file), pattern), snap), '/', lookedIn).map((m) => asShown(m, snap));
    if (matches.length === 0) {
      warnings.push({ severity: 'warning', path: `include "${pattern}"`, message: 'pattern matched no files', location: locationOf(node) ?? { file } });
    }
    for (const m of matches) out.push(...loadRecursive(m, stack.length ? stack : [file], st));
  }
  return out;
}

/**
 * Minimal glob: `*` and `?` within a segment, `**` for any depth. Results sorted. `lookedIn` hears
 * every folder the walk looked in and which names there it was after (any name under `**`), so
 * auto-reload can watch for a file that would newly match (session 23 audit).
 */
export function expandGlob(pattern: string, baseDir: string, lookedIn?: (dir: string, name: RegExp) => void): string[] {
  const abs = isAbsolute(pattern) ? pattern : join(baseDir, pattern);
  const parts = abs.split(sep).filter((p, i) => p !== '' || i === 0);
  const results: string[] = [];
  const walk = (dir: string, idx: number): void => {
    if (idx === parts.length) {
      results.push(dir);
      return;
    }
    const part = parts[idx]!;
    if (part === '**') {
      lookedIn?.(dir, ANY_NAME);
      walk(dir, idx + 1);
      for (const e of safeReaddir(dir)) if (isDir(join(dir, e))) walk(join(dir, e), idx);
      return;
    }
    if (!/[*?[]/.test(part)) {
      const next = idx === 0 && part === '' ? sep : join(dir, part);
      if (idx === parts.length - 1 ? exists(next) : isDir(next)) walk(next, idx + 1);
      // only where the walk stopped (the folders above a file that exists need no watch)
      else lookedIn?.(dir, new RegExp(`^${escapeRe(part)}$`));
      return;
    }
    const re = new RegExp('^' + part.split('').map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : escapeRe(c))).join('') + '$');
    lookedIn?.(dir, re);
    for (const e of safeReaddir(dir).sort()) {
      if (!re.test(e)) continue;
      const p = join(dir, e);
      if (idx === parts.length - 1 ? !isDir(p) : isDir(p)) walk(p, idx + 1);
    }
  };
  walk(parts[0] === '' ? sep : parts[0]!, 1);
  return [...new Set(results)].sort();
}

const ANY_NAME = /^/;

function safeReaddir(d: string): string[] {
  try {
    return readdirSync(d);
  } catch {
    return [];
  }
}
function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}
function exists(p: string): boolean {
  try {
    statSync(p);
    return true;
  } catch {
    return false;
  }
}
