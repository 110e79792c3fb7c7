// `sentinel migrate -c FILE [--write]`: rewrites the deprecated forms the loader accepts with a
// warning (each carries its fix: src/config/diagnostics.ts DeprecationFix) into the current ones,
// prints a unified diff, and proves the result: it loads with no deprecation warning and compiles
// to the same configuration. Nothing is written without --write.
// Exit codes: 0 done (or nothing to do), 1 some forms need a person (listed), 2 the config cannot
// be loaded (e.g. a schema-version newer than this gateway reads) or a usage error.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ConfigError, formatDiagnostic, type Diagnostic } from '../../config/diagnostics.ts';
import { loadConfigFile } from '../../config/load.ts';
import { configView } from '../../config/view.ts';
import type { CompiledConfig } from '../../config/compile.ts';
import { pluginValidators } from '../../server/validators.ts';
import { applyFixes, type PlacedFix } from './edits.ts';
import { unifiedDiff } from './diff.ts';

interface MigrateArgs {
  config: string;
  write: boolean;
}

export function parseMigrateArgs(argv: string[]): MigrateArgs {
  let config: string | undefined;
  let write = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config') {
      config = argv[++i];
      if (config === undefined) throw new Error(`${a} needs a file argument`);
    } else if (a.startsWith('--config=')) config = a.slice(9);
    else if (a === '--write' || a === '-w') write = true;
    else throw new Error(`unknown argument "${a}" (sentinel migrate -c FILE [--write])`);
  }
  config ??= process.env.SENTINEL_CONFIG || undefined;
  if (config === undefined) throw new Error('migrate needs a configuration file: sentinel migrate -c FILE [--write]');
  return { config, write };
}

function load(file: string, sources?: ReadonlyMap<string, string>): CompiledConfig {
  return loadConfigFile(file, { validators: pluginValidators, ...(sources ? { sources } : {}) });
}

/** The compiled meaning of a config, without its warnings (a migration changes only those). */
function meaning(c: CompiledConfig): unknown {
  const { warnings: _warnings, ...rest } = configView(c) as Record<string, unknown>;
  return rest;
}

function where(d: Diagnostic): string {
  return formatDiagnostic({ ...d, location: d.location ? { ...d.location, file: relative(process.cwd(), d.location.file) || d.location.file } : undefined } as Diagnostic);
}

export function migrateCommand(argv: string[]): number {
  let args: MigrateArgs;
  try {
    args = parseMigrateArgs(argv);
  } catch (err) {
    console.error(`sentinel migrate: ${(err as Error).message}`);
    return 2;
  }
  const file = resolve(args.config);
  if (!existsSync(file)) {
    console.error(`sentinel migrate: configuration file not found: ${args.config}`);
    return 2;
  }
  let before: CompiledConfig;
  try {
    before = load(file);
  } catch (err) {
    if (err instanceof ConfigError) for (const d of err.diagnostics.filter((x) => x.severity === 'error')) console.error(where(d));
    else console.error(`error: ${(err as Error).message}`);
    console.error(`sentinel migrate: ${args.config} cannot be loaded; nothing was changed`);
    return 2;
  }
  const deprecated = before.warnings.filter((w) => w.fix);
  if (deprecated.length === 0) {
    console.error(`sentinel migrate: ${args.config} uses no deprecated form; nothing to do`);
    return 0;
  }
  // fixes per file (a config may include others)
  const byFile = new Map<string, PlacedFix[]>();
  const manual: string[] = [];
  for (const w of deprecated) {
    const l = w.location;
    if (!l?.line || !l.column) {
      manual.push(`${where(w)} (no position to edit)`);
      continue;
    }
    const list = byFile.get(l.file) ?? [];
    list.push({ line: l.line, column: l.column, fix: w.fix! });
    byFile.set(l.file, list);
  }
  const originals = new Map<string, string>();
  const rewritten = new Map<string, string>();
  let applied = 0;
  for (const [f, fixes] of byFile) {
    const text = readFileSync(f, 'utf8');
    const r = applyFixes(text, fixes);
    originals.set(f, text);
    rewritten.set(f, r.text);
    applied += r.applied.length;
    for (const x of r.failed) manual.push(`${relative(process.cwd(), f) || f}:${x.at.line}:${x.at.column}: ${x.reason}`);
  }
  // Proof: the rewrite loads, has no deprecation left that was fixed, and means the same.
  let after: CompiledConfig;
  try {
    after = load(file, rewritten);
  } catch (err) {
    console.error(`sentinel migrate: internal error: the rewritten config does not load; nothing was written:\n${(err as Error).message}`);
    return 2;
  }
  if (!isDeepStrictEqual(meaning(before), meaning(after))) {
    console.error('sentinel migrate: internal error: the rewritten config compiles to a different configuration; nothing was written');
    return 2;
  }
  const left = after.warnings.filter((w) => w.fix);
  if (left.length > manual.length) {
    console.error('sentinel migrate: internal error: deprecation warnings remain after the rewrite; nothing was written');
    for (const w of left) console.error(`  ${where(w)}`);
    return 2;
  }
  // the main file first, then the included ones by name
  const files = [...rewritten.keys()].sort((a, b) => Number(b === file) - Number(a === file) || a.localeCompare(b));
  for (const f of files) process.stdout.write(unifiedDiff(originals.get(f)!, rewritten.get(f)!, relative(process.cwd(), f) || f));
  if (args.write) for (const [f, text] of rewritten) if (text !== originals.get(f)) writeFileSync(f, text);
  console.error(
    `sentinel migrate: ${applied} deprecated form${applied === 1 ? '' : 's'} rewritten; the result loads with ${left.length === 0 ? 'no deprecation warning' : `${left.length} deprecation warning(s) left`} and the same meaning; ` +
      (args.write ? `written to ${[...rewritten.keys()].map((f) => relative(process.cwd(), f) || f).join(', ')}` : 'nothing written (--write saves it)'),
  );
  if (manual.length > 0) {
    console.error('to change by hand:');
    for (const m of manual) console.error(`  ${m}`);
    return 1;
  }
  return 0;
}
