// Macro expansion: `%{TX.score}`, `%{MATCHED_VAR}`, `%{request_headers.host}`, `%{rule.id}`.
// Templates are compiled once at load time into literal and lookup parts.
import { intern } from './intern.ts';

export interface MacroRef {
  /** Upper-case collection or variable name. */
  name: string;
  /** Key inside the collection (original case), if any. */
  key?: string;
  /** The key lower-cased (interned: collections are keyed by it), when there is one. */
  lkey?: string;
}

export type MacroPart = string | MacroRef;

export interface Macro {
  /** True when the template has no %{...} at all (expand is then the identity). */
  readonly constant: boolean;
  readonly source: string;
  readonly parts: MacroPart[];
}

const macroRe = /%\{([^}]+)\}/g;

export function compileMacro(source: string): Macro {
  const parts: MacroPart[] = [];
  let last = 0;
  for (const m of source.matchAll(macroRe)) {
    if (m.index > last) parts.push(source.slice(last, m.index));
    const inner = m[1]!.trim();
    const dot = inner.search(/[.:]/);
    const name = intern(dot < 0 ? inner.toUpperCase() : inner.slice(0, dot).toUpperCase());
    const key = dot < 0 ? undefined : inner.slice(dot + 1);
    parts.push({ name, key, lkey: intern(key?.toLowerCase()) });
    last = m.index + m[0].length;
  }
  if (last < source.length) parts.push(source.slice(last));
  return { constant: parts.every((p) => typeof p === 'string'), source, parts };
}

/** Resolves one macro reference to text; unknown references expand to the empty string. */
export type MacroResolver = (ref: MacroRef) => string | undefined;

export function expandMacro(macro: Macro, resolve: MacroResolver): string {
  if (macro.constant) return macro.source;
  let out = '';
  for (const p of macro.parts) out += typeof p === 'string' ? p : (resolve(p) ?? '');
  return out;
}
