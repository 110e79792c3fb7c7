// Shared by cases.test.ts and the libinjection conformance suite: reads libinjection's
// unit cases (tests/*.txt) and sample sets (data/*.txt) from the shared conformance
// folder and evaluates them against our implementation.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { libinjectionDataRoot } from '../../../scripts/gen-libinjection-tables.ts';
import {
  FLAG_QUOTE_NONE,
  FLAG_SQL_ANSI,
  SqliState,
  detectSqli,
  detectXss,
  fold,
  html5Tokens,
  tokenize,
  type SqliToken,
} from '../../../src/waf/libinjection/index.ts';

export { libinjectionDataRoot };

/** Throws with the looked-at path when the shared data is missing. */
export function requireDataRoot(): string {
  const root = libinjectionDataRoot();
  if (!existsSync(join(root, 'tests'))) {
    throw new Error(
      `libinjection conformance data not found: looked in ${root} (expected tests/ and data/ there; ` +
        'set LIBINJECTION_DIR to override)',
    );
  }
  return root;
}

export interface UnitCase {
  file: string;
  title: string;
  input: string;
  expected: string;
}

/** Parses a --TEST-- / --INPUT-- / --EXPECTED-- file (read as latin1 bytes). */
export function parseCaseFile(file: string, text: string): UnitCase {
  const sections = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of text.split('\n')) {
    const marker = /^--(TEST|INPUT|EXPECTED)--$/.exec(line.replace(/\r$/, ''));
    if (marker) {
      current = [];
      sections.set(marker[1] as string, current);
    } else if (current) {
      current.push(line);
    }
  }
  const get = (name: string): string => (sections.get(name) ?? []).join('\n');
  return {
    file,
    title: get('TEST').trim(),
    // the input's trailing newlines belong to the file format, not the input
    input: get('INPUT').replace(/[\r\n]+$/, ''),
    expected: get('EXPECTED').trim(),
  };
}

export function loadUnitCases(root: string): UnitCase[] {
  const dir = join(root, 'tests');
  return readdirSync(dir)
    .filter((f) => /^test-(tokens|folding|sqli|html5)-.*\.txt$/.test(f))
    .sort()
    .map((f) => parseCaseFile(f, readFileSync(join(dir, f), 'latin1')));
}

/** A token as libinjection's test driver prints it: "<type> <value>". */
export function formatToken(t: SqliToken): string {
  let text = t.val;
  if (t.type === 's' || t.type === 'v') text = t.strOpen + text + t.strClose;
  if (t.type === 'v') text = '@'.repeat(Math.min(t.count, 2)) + text;
  return `${t.type} ${text}`;
}

/** Our output for one unit case, in the same format as its EXPECTED section. */
export function actualOutput(c: UnitCase): string {
  const lines: string[] = [];
  if (c.file.startsWith('test-tokens-')) {
    const sf = new SqliState(c.input, FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
    while (tokenize(sf)) lines.push(formatToken(sf.current));
  } else if (c.file.startsWith('test-folding-')) {
    const sf = new SqliState(c.input, FLAG_QUOTE_NONE | FLAG_SQL_ANSI);
    const n = fold(sf);
    for (let i = 0; i < n; i++) lines.push(formatToken(sf.tokenvec[i] as SqliToken));
  } else if (c.file.startsWith('test-sqli-')) {
    lines.push(detectSqli(c.input).fingerprint);
  } else {
    for (const [type, text] of html5Tokens(c.input)) lines.push(`${type},${text.length},${text}`);
  }
  return lines.join('\n').trim();
}

/** Decodes a URL-encoded sample line to latin1 bytes ('+' is a space, bad escapes stay). */
export function urlDecodeToLatin1(line: string): string {
  return line.replace(/\+/g, ' ').replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

export interface SampleSet {
  name: string;
  /** Lines that went the wrong way (missed attacks, or flagged benign input). */
  wrong: string[];
  total: number;
  allowed: number;
}

/** Sample lines as libinjection's reader sees them: right-trimmed, then URL-decoded. */
function sampleLines(path: string): string[] {
  return readFileSync(path, 'latin1')
    .split('\n')
    .map((l) => l.replace(/[ \t\r]+$/, ''))
    .filter((l) => l.length > 0 && !l.startsWith('#'))
    .map(urlDecodeToLatin1);
}

/**
 * The three allowance checks of libinjection's own sample runs: every sqli-*.txt line
 * detected as SQLi (18 misses allowed), every xss-*.txt line as XSS (18 allowed), and
 * false_positives.txt not flagged as SQLi (21 allowed).
 */
export function evaluateSampleSets(root: string): SampleSet[] {
  const dir = join(root, 'data');
  const files = readdirSync(dir).sort();
  const collect = (prefix: RegExp, flagged: (s: string) => boolean, wantFlagged: boolean): { wrong: string[]; total: number } => {
    const wrong: string[] = [];
    let total = 0;
    for (const f of files.filter((n) => prefix.test(n))) {
      for (const line of sampleLines(join(dir, f))) {
        total++;
        if (flagged(line) !== wantFlagged) wrong.push(`${f}: ${JSON.stringify(line)}`);
      }
    }
    return { wrong, total };
  };
  const sqli = (s: string): boolean => detectSqli(s).detected;
  return [
    { name: 'sqli samples detected (data/sqli-*.txt)', allowed: 18, ...collect(/^sqli-.*\.txt$/, sqli, true) },
    { name: 'xss samples detected (data/xss-*.txt)', allowed: 18, ...collect(/^xss-.*\.txt$/, detectXss, true) },
    { name: 'false positives not flagged (data/false_positives.txt)', allowed: 21, ...collect(/^false_positives\.txt$/, sqli, false) },
  ];
}
