// Text edits for `sentinel migrate`: each deprecation the loader reports carries the fix and the
// line and column of its node (src/config/diagnostics.ts DeprecationFix), so only the words that
// change are touched; comments, spacing and every other line stay as they were.
import type { DeprecationFix } from '../../config/diagnostics.ts';

export interface PlacedFix {
  /** 1-based, as the KDL parser reports them (column in code points) */
  line: number;
  column: number;
  fix: DeprecationFix;
}

export interface EditResult {
  text: string;
  applied: PlacedFix[];
  /** fixes that could not be placed in the text (e.g. several nodes on one line to remove) */
  failed: { at: PlacedFix; reason: string }[];
}

const IDENT_CHAR = /[^\s\\/(){}[\];="#]/u;

/** String index of a 1-based code-point column. */
function indexOfColumn(line: string, column: number): number {
  let i = 0;
  for (let c = 1; c < column && i < line.length; c++) i += line.codePointAt(i)! > 0xffff ? 2 : 1;
  return i;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The word `w` at `i` (bare or quoted), as [start, end, quoted], or undefined. */
function wordAt(line: string, i: number, w: string): [number, number, boolean] | undefined {
  if (line.startsWith(`"${w}"`, i)) return [i, i + w.length + 2, true];
  if (line.startsWith(w, i) && !IDENT_CHAR.test(line.charAt(i + w.length) || ' ')) return [i, i + w.length, false];
  return undefined;
}

/** Where the node's name starts: after a `(type)` annotation, if any. */
function nameStart(line: string, i: number): number {
  if (line.charAt(i) !== '(') return i;
  const close = line.indexOf(')', i);
  return close < 0 ? i : close + 1;
}

function applyOne(lines: string[], at: PlacedFix): string | undefined {
  const row = at.line - 1;
  const line = lines[row];
  if (line === undefined) return 'line is past the end of the file';
  const i = nameStart(line, indexOfColumn(line, at.column));
  const f = at.fix;
  switch (f.kind) {
    case 'rename-node': {
      const w = wordAt(line, i, f.from);
      if (!w) return `"${f.from}" is not at line ${at.line}, column ${at.column}`;
      lines[row] = line.slice(0, w[0]) + (w[2] ? `"${f.to}"` : f.to) + line.slice(w[1]);
      return undefined;
    }
    case 'rename-property': {
      const re = new RegExp(`(^|[\\s;{])("?)${escapeRe(f.from)}\\2=`, 'u');
      const m = re.exec(line.slice(i));
      if (!m) return `property ${f.from}= not found on line ${at.line}`;
      const start = i + m.index + m[1]!.length;
      lines[row] = line.slice(0, start) + `${m[2]}${f.to}${m[2]}=` + line.slice(start + m[0].length - m[1]!.length);
      return undefined;
    }
    case 'replace-value': {
      const re = new RegExp(`(\\s)("${escapeRe(f.from)}"|${escapeRe(f.from)})(?=[\\s;}]|$)`, 'u');
      const m = re.exec(line.slice(i));
      if (!m) return `value "${f.from}" not found on line ${at.line}`;
      const start = i + m.index + 1;
      const quoted = m[2]!.startsWith('"');
      lines[row] = line.slice(0, start) + (quoted ? `"${f.to}"` : f.to) + line.slice(start + m[2]!.length);
      return undefined;
    }
    case 'remove-node': {
      // only a node alone on its line: removing one of several `;`-separated nodes is left to a person
      if (line.slice(0, i).trim() !== '' || !wordAt(line, i, f.name) || /[;{}]/.test(line.slice(i).replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\/\/.*$/, ''))) {
        return `"${f.name}" shares line ${at.line} with other nodes: remove it by hand`;
      }
      lines.splice(row, 1);
      return undefined;
    }
  }
}

/** Applies the fixes of one file (bottom-up, right to left, so earlier positions stay valid). */
export function applyFixes(text: string, fixes: readonly PlacedFix[]): EditResult {
  const lines = text.split('\n');
  const order = [...fixes].sort((a, b) => b.line - a.line || b.column - a.column);
  const applied: PlacedFix[] = [];
  const failed: EditResult['failed'] = [];
  for (const at of order) {
    const why = applyOne(lines, at);
    if (why === undefined) applied.push(at);
    else failed.push({ at, reason: why });
  }
  return { text: lines.join('\n'), applied: applied.reverse(), failed: failed.reverse() };
}
