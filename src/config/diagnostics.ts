// Config diagnostics: every message names the KDL node path (and file:line where known),
// says what was expected, and suggests the nearest valid key.
import { redactUrl } from './redact.ts';

export interface SourceLocation {
  file: string;
  line?: number;
  /** 1-based, in code points; only with a line. */
  column?: number;
}

export interface Diagnostic {
  severity: 'error' | 'warning';
  /** e.g. `routes > route "api" > matches` */
  path: string;
  message: string;
  location?: SourceLocation;
  /** a deprecated form, and the edit at `location` (the node) that gives the current one (`sentinel migrate`) */
  fix?: DeprecationFix;
}

/**
 * How `sentinel migrate` rewrites a deprecated form, at the node the diagnostic points to:
 * rename the node (`server` -> `system`), one of its properties (`x=`), replace one of its string
 * arguments (`"not_found"` -> `"not-found"`), or remove the node (a legacy key that does nothing).
 */
export type DeprecationFix =
  | { kind: 'rename-node'; from: string; to: string }
  | { kind: 'rename-property'; from: string; to: string }
  | { kind: 'replace-value'; from: string; to: string }
  | { kind: 'remove-node'; name: string };

export function formatDiagnostic(d: Diagnostic): string {
  const l = d.location;
  const where = l ? `${l.file}${l.line ? `:${l.line}${l.column ? `:${l.column}` : ''}` : ''}: ` : '';
  const path = d.path ? `${d.path}: ` : '';
  return `${d.severity}: ${where}${path}${d.message}`;
}

/**
 * A config error as it may leave the process outside the CLI (the status page's reload history,
 * the `reload_failed` audit event, the error log): each error's file:line:column and message
 * without the quoted source line a syntax error carries (that line is where a mistyped secret
 * is), URL passwords redacted. The CLI (`sentinel test`, startup) still prints the line.
 */
export function reportableError(err: unknown): string {
  const text =
    err instanceof ConfigError
      ? `invalid configuration (${err.diagnostics.filter((d) => d.severity === 'error').length} error(s)):\n` +
        err.diagnostics
          .filter((d) => d.severity === 'error')
          .map((d) => '  ' + formatDiagnostic({ ...d, message: d.message.split('\n', 1)[0]! }))
          .join('\n')
      : err instanceof Error
        ? err.message
        : String(err);
  return redactUrl(text);
}

/** Thrown when a configuration cannot be used; carries every error found, not just the first. */
export class ConfigError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  constructor(diagnostics: readonly Diagnostic[]) {
    const errors = diagnostics.filter((d) => d.severity === 'error');
    super(
      `invalid configuration (${errors.length} error${errors.length === 1 ? '' : 's'}):\n` +
        errors.map((d) => '  ' + formatDiagnostic(d)).join('\n'),
    );
    this.name = 'ConfigError';
    this.diagnostics = diagnostics;
  }
}

/** Levenshtein distance, small inputs only (config keys). */
export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}

/** The closest candidate within a distance that scales with the word, or undefined. */
export function nearest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const w = word.toLowerCase();
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= limit ? best : undefined;
}

export function didYouMean(word: string, candidates: Iterable<string>): string {
  const s = nearest(word, candidates);
  return s ? ` (did you mean "${s}"?)` : '';
}
