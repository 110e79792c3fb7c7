// Reads a Sentinel KDL file: parses KDL 2.0 with kdljs, expands top-level `include "glob"` nodes
// (relative to the including file, sorted, recursive, cycles rejected, no match = warning) and tags
// every node with the file and line it came from, so later diagnostics can point at it.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { parse, type Node } from 'kdljs';
import type { Diagnostic, SourceLocation } from './diagnostics.ts';
import { ConfigError } from './diagnostics.ts';

const locations = new WeakMap<Node, SourceLocation>();

export function locationOf(node: Node): SourceLocation | undefined {
  return locations.get(node);
}

export interface LoadedDocument {
  nodes: Node[];
  files: string[];
  warnings: Diagnostic[];
}

/** Parses KDL text (one file) into nodes tagged with their location. Throws ConfigError on syntax errors. */
export function parseKdl(text: string, file: string): Node[] {
  const result = parse(text);
  if (result.errors.length > 0 || !result.output) {
    throw new ConfigError(
      result.errors.slice(0, 5).map((e) => {
        const tok = e.token.startLine ? e.token : (e as unknown as { previousToken?: typeof e.token }).previousToken ?? e.token;
        return {
          severity: 'error' as const,
          path: '',
          message: `KDL syntax error near ${e.token.image ? JSON.stringify(e.token.image) : 'the end of the file (unclosed block?)'}${hintFor(text, tok.startLine ?? undefined)}`,
          location: { file, ...(tok.startLine ? { line: tok.startLine } : {}) },
        };
      }),
    );
  }
  tagLines(result.output, text, file);
  return result.output;
}

/** KDL 2.0 spells booleans #true/#false; a bare true is the commonest mistake, so say so. */
function hintFor(text: string, line: number | undefined): string {
  if (!line) return '';
  const src = text.split('\n')[line - 1] ?? '';
  if (/\s(true|false|null)\s*(;|$|\})/.test(src)) return ' (KDL 2.0 writes booleans and null as #true, #false, #null)';
  return '';
}

// kdljs does not report node positions; walk nodes in document order alongside the source lines.
function tagLines(nodes: Node[], text: string, file: string): void {
  const lines = text.split('\n');
  let cursor = 0;
  const visit = (list: Node[]): void => {
    for (const node of list) {
      const re = new RegExp(`(^|[\\s{;])"?${escapeRe(node.name)}"?(\\s|$|;|\\{)`);
      for (let i = cursor; i < lines.length; i++) {
        const l = lines[i]!.replace(/\/\/.*$/, '');
        if (re.test(l)) {
          cursor = i;
          locations.set(node, { file, line: i + 1 });
          break;
        }
      }
      if (!locations.has(node)) locations.set(node, { file });
      visit(node.children);
    }
  };
  visit(nodes);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Loads a config file and everything it includes, as one list of top-level nodes. */
export function loadKdlFile(path: string): LoadedDocument {
  const warnings: Diagnostic[] = [];
  const files: string[] = [];
  const nodes = loadRecursive(resolve(path), [], warnings, files);
  return { nodes, files, warnings };
}

/** Parses config text that has no file behind it (the embedded default, tests). Includes resolve against baseDir. */
export function loadKdlText(text: string, name: string, baseDir = process.cwd()): LoadedDocument {
  const warnings: Diagnostic[] = [];
  const files: string[] = [];
  const nodes = expandIncludes(parseKdl(text, name), join(baseDir, name), [], warnings, files);
  return { nodes, files, warnings };
}

function loadRecursive(file: string, stack: string[], warnings: Diagnostic[], files: string[]): Node[] {
  if (stack.includes(file)) {
    throw new ConfigError([
      { severity: 'error', path: 'include', message: `circular include: ${[...stack, file].join(' -> ')}`, location: { file } },
    ]);
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([
      { severity: 'error', path: '', message: `cannot read config file: ${(err as Error).message}`, location: { file } },
    ]);
  }
  files.push(file);
  return expandIncludes(parseKdl(text, file), file, [...stack, file], warnings, files);
}

function expandIncludes(nodes: Node[], file: string, stack: string[], warnings: Diagnostic[], files: string[]): Node[] {
  const out: Node[] = [];
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
    const matches = expandGlob(pattern, dirname(file));
    if (matches.length === 0) {
      warnings.push({ severity: 'warning', path: `include "${pattern}"`, message: 'pattern matched no files', location: locationOf(node) ?? { file } });
    }
    for (const m of matches) out.push(...loadRecursive(m, stack.length ? stack : [file], warnings, files));
  }
  return out;
}

/** Minimal glob: `*` and `?` within a segment, `**` for any depth. Results sorted. */
export function expandGlob(pattern: string, baseDir: string): string[] {
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
      walk(dir, idx + 1);
      for (const e of safeReaddir(dir)) if (isDir(join(dir, e))) walk(join(dir, e), idx);
      return;
    }
    if (!/[*?[]/.test(part)) {
      const next = idx === 0 && part === '' ? sep : join(dir, part);
      if (idx === parts.length - 1 ? exists(next) : isDir(next)) walk(next, idx + 1);
      return;
    }
    const re = new RegExp('^' + part.split('').map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : escapeRe(c))).join('') + '$');
    for (const e of safeReaddir(dir).sort()) {
      if (!re.test(e)) continue;
      const p = join(dir, e);
      if (idx === parts.length - 1 ? !isDir(p) : isDir(p)) walk(p, idx + 1);
    }
  };
  walk(parts[0] === '' ? sep : parts[0]!, 1);
  return [...new Set(results)].sort();
}

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
