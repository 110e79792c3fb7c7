// SecLang (ModSecurity configuration language) lexer and parser.
// Turns configuration text into directives with their source position, and splits the
// three sub-languages of SecRule: variables, operator and actions.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';

/** Where a directive came from; every parse error carries one. */
export interface SourcePos {
  file: string;
  line: number;
}

export interface Directive extends SourcePos {
  name: string;
  args: string[];
  /** The directive's text as written (continuations joined), for error messages. */
  text: string;
}

export class SecLangError extends Error {
  constructor(
    message: string,
    readonly pos: SourcePos,
    readonly snippet: string,
  ) {
    super(`${pos.file}:${pos.line}: ${message}: ${snippet.length > 160 ? snippet.slice(0, 160) + '...' : snippet}`);
    this.name = 'SecLangError';
  }
}

/** Splits a directive's argument text into words; double-quoted words keep inner spaces. */
export function splitArgs(text: string, pos: SourcePos): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= text.length) break;
    if (text[i] === '"') {
      i++;
      let word = '';
      let closed = false;
      while (i < text.length) {
        const c = text[i]!;
        // Inside double quotes only \" is an escape; every other backslash stays (regexes need it).
        if (c === '\\' && text[i + 1] === '"') {
          word += '"';
          i += 2;
          continue;
        }
        if (c === '"') {
          closed = true;
          i++;
          break;
        }
        word += c;
        i++;
      }
      if (!closed) throw new SecLangError('unterminated double quote', pos, text);
      args.push(word);
    } else {
      let word = '';
      while (i < text.length && text[i] !== ' ' && text[i] !== '\t') word += text[i++];
      args.push(word);
    }
  }
  return args;
}

/** Splits configuration text into logical lines (continuations joined) and directives. */
export function parseText(text: string, file: string): Directive[] {
  const out: Directive[] = [];
  const lines = text.split(/\r?\n/);
  let buf = '';
  let startLine = 0;
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    if (buf === '') {
      startLine = n + 1;
      const trimmed = raw.trimStart();
      if (trimmed === '' || trimmed.startsWith('#')) continue;
    }
    const trimmedEnd = raw.replace(/[ \t]+$/, '');
    if (trimmedEnd.endsWith('\\')) {
      buf += trimmedEnd.slice(0, -1);
      if (n < lines.length - 1) continue;
    } else {
      buf += raw;
    }
    const logical = buf.trim();
    buf = '';
    if (logical === '') continue;
    const pos = { file, line: startLine };
    const m = /^(\S+)\s*([\s\S]*)$/.exec(logical);
    if (!m) continue;
    out.push({ ...pos, name: m[1]!, args: splitArgs(m[2]!, pos), text: logical });
  }
  return out;
}

/** Expands `Include` directives (with * ? [..] globs in the last path segment) recursively. */
export function loadDirectives(text: string, file: string, baseDir: string, depth = 0): Directive[] {
  const out: Directive[] = [];
  for (const d of parseText(text, file)) {
    if (d.name.toLowerCase() !== 'include') {
      out.push(d);
      continue;
    }
    if (depth > 20) throw new SecLangError('Include nested too deeply', d, d.text);
    const pattern = d.args[0];
    if (!pattern) throw new SecLangError('Include needs a path', d, d.text);
    const files = expandGlob(isAbsolute(pattern) ? pattern : join(baseDir, pattern));
    if (files.length === 0) throw new SecLangError('Include matched no file', d, d.text);
    for (const f of files) {
      out.push(...loadDirectives(readFileSync(f, 'latin1'), f, dirname(f), depth + 1));
    }
  }
  return out;
}

export function loadFile(path: string): Directive[] {
  const abs = resolve(path);
  return loadDirectives(readFileSync(abs, 'latin1'), abs, dirname(abs));
}

function expandGlob(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = pattern.slice(dir.length + 1);
  if (!/[*?[]/.test(base)) {
    try {
      return statSync(pattern).isFile() ? [pattern] : [];
    } catch {
      return [];
    }
  }
  const re = new RegExp(
    '^' +
      base
        .replace(/[.+^${}()|\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]') +
      '$',
  );
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => re.test(n))
    .sort()
    .map((n) => join(dir, n))
    .filter((f) => statSync(f).isFile());
}

// ---------------------------------------------------------------- variables

export interface VariableSpec {
  /** Upper-case collection or variable name, e.g. ARGS, REQUEST_HEADERS, TX. */
  name: string;
  /** Literal key (lower-cased for case-insensitive collections later), if any. */
  key?: string;
  /** Key given as /regex/. */
  keyRegex?: string;
  /** `&VAR`: count instead of values. */
  count: boolean;
  /** `!VAR:key`: exclusion. */
  exclude: boolean;
}

/** Parses `ARGS|!ARGS:foo|&TX:x|REQUEST_HEADERS:/^x-/` into specs. */
export function parseVariables(text: string, pos: SourcePos): VariableSpec[] {
  const parts: string[] = [];
  let cur = '';
  let inRegex = false;
  let inQuote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inRegex) {
      cur += c;
      if (c === '\\' && i + 1 < text.length) cur += text[++i];
      else if (c === '/') inRegex = false;
      continue;
    }
    if (inQuote) {
      cur += c;
      if (c === "'") inQuote = false;
      continue;
    }
    if (c === '/' && cur.endsWith(':') && !/^[!&]?XML:$/i.test(cur) && closesRegex(text, i + 1)) inRegex = true;
    else if (c === "'" && cur.endsWith(':')) inQuote = true;
    if (c === '|') {
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  if (inRegex) throw new SecLangError('unterminated /regex/ in variable key', pos, text);
  parts.push(cur);
  const specs: VariableSpec[] = [];
  for (let p of parts) {
    p = p.trim();
    if (p === '') throw new SecLangError('empty variable', pos, text);
    let exclude = false;
    let count = false;
    if (p.startsWith('!')) {
      exclude = true;
      p = p.slice(1);
    } else if (p.startsWith('&')) {
      count = true;
      p = p.slice(1);
    }
    const colon = p.indexOf(':');
    const name = (colon < 0 ? p : p.slice(0, colon)).toUpperCase();
    if (!/^[A-Z_0-9]+$/.test(name)) throw new SecLangError(`invalid variable name "${name}"`, pos, text);
    const spec: VariableSpec = { name, count, exclude };
    if (colon >= 0) {
      let key = p.slice(colon + 1);
      if (key.length >= 2 && key.startsWith('/') && key.endsWith('/')) {
        spec.keyRegex = key.slice(1, -1);
      } else {
        if (key.length >= 2 && key.startsWith("'") && key.endsWith("'")) key = key.slice(1, -1);
        spec.key = key;
      }
    }
    specs.push(spec);
  }
  return specs;
}

/** Whether a /regex/ key opened before `from` is closed by a '/' that ends the variable. */
function closesRegex(text: string, from: number): boolean {
  for (let j = from; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '/' && (j + 1 === text.length || text[j + 1] === '|')) return true;
  }
  return false;
}

// ---------------------------------------------------------------- operator

export interface OperatorSpec {
  name: string;
  param: string;
  negated: boolean;
}

/** `"!@rx foo"` -> { name: 'rx', param: 'foo', negated: true }; a bare pattern means @rx. */
export function parseOperator(text: string, _pos: SourcePos): OperatorSpec {
  let s = text;
  let negated = false;
  if (s.startsWith('!')) {
    negated = true;
    s = s.slice(1);
  }
  if (!s.startsWith('@')) return { name: 'rx', param: s, negated };
  const m = /^@([A-Za-z0-9_]+)(?:\s([\s\S]*))?$/.exec(s);
  if (!m) return { name: s.slice(1), param: '', negated };
  return { name: m[1]!, param: m[2] ?? '', negated };
}

// ---------------------------------------------------------------- actions

export interface ActionSpec {
  name: string;
  value: string;
}

/** Splits `id:1,phase:2,msg:'a, b',t:none` into name/value pairs (single quotes group). */
export function parseActions(text: string, pos: SourcePos): ActionSpec[] {
  const out: ActionSpec[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === ',')) i++;
    if (i >= n) break;
    let name = '';
    while (i < n && text[i] !== ':' && text[i] !== ',') name += text[i++];
    name = name.trim();
    let value = '';
    if (text[i] === ':') {
      i++;
      while (i < n && (text[i] === ' ' || text[i] === '\t')) i++;
      if (text[i] === "'") {
        i++;
        let closed = false;
        while (i < n) {
          const c = text[i]!;
          if (c === '\\' && text[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          if (c === "'") {
            closed = true;
            i++;
            break;
          }
          value += c;
          i++;
        }
        if (!closed) throw new SecLangError(`unterminated quote in action "${name}"`, pos, text);
        // Anything after the closing quote up to the comma is kept (e.g. setvar:'a'=b is rare).
        while (i < n && text[i] !== ',') value += text[i++];
      } else {
        while (i < n && text[i] !== ',') value += text[i++];
        value = value.trim();
      }
    }
    if (name === '') throw new SecLangError('empty action name', pos, text);
    out.push({ name: name.toLowerCase(), value });
  }
  return out;
}
