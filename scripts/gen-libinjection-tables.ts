// Generates src/waf/libinjection/tables.generated.ts (character classes, SQL keyword
// table, SQLi fingerprint list) from libinjection's data files in the shared
// conformance folder. Run: npx tsx scripts/gen-libinjection-tables.ts
// The unit test test/unit/libinjection/tables.test.ts re-runs generateTables() in memory
// and fails when the committed file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const generatedTablesPath = join(repoRoot, 'src', 'waf', 'libinjection', 'tables.generated.ts');

/** Where libinjection's tests/, data/ and src/ live (env LIBINJECTION_DIR overrides). */
export function libinjectionDataRoot(): string {
  return process.env.LIBINJECTION_DIR ?? join(repoRoot, '..', 'shared', 'conformance', 'libinjection');
}

interface SqlparseData {
  charmap: string[];
  keywords: Record<string, string>;
  fingerprints: string[];
}

/** Builds the text of tables.generated.ts from the files under `dataRoot`. */
export function generateTables(dataRoot: string = libinjectionDataRoot()): string {
  const jsonPath = join(dataRoot, 'src', 'sqlparse_data.json');
  const fpPath = join(dataRoot, 'src', 'fingerprints.txt');
  const data = JSON.parse(readFileSync(jsonPath, 'utf8')) as SqlparseData;
  const fingerprints = readFileSync(fpPath, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  const source = readFileSync(join(dataRoot, 'SOURCE.txt'), 'utf8');
  const commit = /commit ([0-9a-f]{40})/.exec(source)?.[1] ?? 'unknown';

  if (data.charmap.length !== 256) throw new Error(`charmap must have 256 entries, got ${data.charmap.length}`);
  // Class names lose their CHAR_ prefix; the tokenizer maps each to a parser.
  const classes = data.charmap.map((c) => c.replace(/^CHAR_/, ''));
  const keywordLines = Object.keys(data.keywords)
    .sort()
    .map((k) => `  ${JSON.stringify(k)}: ${JSON.stringify(data.keywords[k])},`);
  const fpLines: string[] = [];
  for (let i = 0; i < fingerprints.length; i += 12) {
    fpLines.push('  ' + fingerprints.slice(i, i + 12).map((f) => JSON.stringify(f)).join(', ') + ',');
  }

  return [
    '// GENERATED FILE - do not edit by hand. Regenerate: npx tsx scripts/gen-libinjection-tables.ts',
    '// Data from libinjection (https://github.com/libinjection/libinjection), BSD-3-Clause,',
    '// Copyright (c) 2012-2016 Nick Galbreath. See COPYING beside the source data.',
    // paths relative to the data root, so the output does not depend on where it lives
    "// Generated from libinjection's src/sqlparse_data.json and src/fingerprints.txt",
    `// at libinjection commit ${commit} (see SOURCE.txt there).`,
    '',
    '/** Character class of each byte 0..255 (libinjection charmap without the CHAR_ prefix). */',
    'export const CHAR_CLASSES: readonly string[] = [',
    ...chunk(classes, 8).map((row) => '  ' + row.map((c) => JSON.stringify(c)).join(', ') + ','),
    '];',
    '',
    '/** Upper-case SQL words and multi-char operators -> token type. */',
    'export const SQL_KEYWORDS: Readonly<Record<string, string>> = {',
    ...keywordLines,
    '};',
    '',
    '/** Token-type fingerprints that libinjection considers SQLi (matched case-insensitively). */',
    'export const SQLI_FINGERPRINTS: readonly string[] = [',
    ...fpLines,
    '];',
    '',
  ].join('\n');
}

function chunk<T>(items: T[], size: number): T[][] {
  const rows: T[][] = [];
  for (let i = 0; i < items.length; i += size) rows.push(items.slice(i, i + size));
  return rows;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(generatedTablesPath, generateTables());
  console.log(`wrote ${relative(repoRoot, generatedTablesPath)}`);
}
