// What a test needs from outside the checkout (a program, root, the shared conformance data).
// In CI (the `CI` variable set) its absence is a failure that says how to get it; elsewhere the
// test is skipped with a loud `*** SKIPPING ... ***` line on stderr, so a fresh clone's
// `npm test` runs everything else and says what it did not run.
import { describe, it, type TestOptions } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface Missing {
  /** what is missing, with where it was looked for */
  what: string;
  /** how to get it */
  how: string;
}

export const inCI = (): boolean => Boolean(process.env.CI);

/** The one line a skip prints (and a CI failure throws). */
export const missingMessage = (title: string, m: Missing): string => `${title}: missing ${m.what}; ${m.how}`;

/**
 * `describe(title, options, fn)` when nothing is missing; else in CI a suite whose one test fails
 * with the message, outside CI a loud skip.
 */
export function describeNeeding(missing: Missing | undefined, title: string, options: TestOptions, fn: () => void): void {
  if (!missing) {
    describe(title, options, fn);
    return;
  }
  const message = missingMessage(title, missing);
  if (inCI()) {
    describe(title, () => {
      it('has what it needs', () => assert.fail(message));
    });
    return;
  }
  process.stderr.write(`\n*** SKIPPING ${message} ***\n\n`);
  describe(title, () => {
    it('skipped: see the SKIPPING line', { skip: message }, () => undefined);
  });
}

/** `it(title, options, fn)`, or as describeNeeding when something is missing (one test of a file). */
export function itNeeding(missing: Missing | undefined, title: string, options: TestOptions, fn: () => Promise<void> | void): void {
  if (!missing) {
    it(title, options, fn);
    return;
  }
  const message = missingMessage(title, missing);
  if (inCI()) {
    it(title, () => assert.fail(message));
    return;
  }
  process.stderr.write(`\n*** SKIPPING ${message} ***\n\n`);
  it(title, { skip: message }, () => undefined);
}

const repoRoot = resolve(import.meta.dirname, '..', '..');
/** ../shared/conformance beside the checkout (CI puts the data set there). */
export const sharedConformance = join(repoRoot, '..', 'shared', 'conformance');

const HOW_SHARED =
  'it is third-party data, not in the repository, and scripts/setup.sh does not fetch it: put the conformance data set ' +
  '(crs/, libinjection/, secrules-language-tests/, each with a SOURCE.txt naming the upstream commit it was extracted from) ' +
  'at ../shared/conformance beside the checkout, where CI\'s clean clone reads it, or point CRS_DIR, LIBINJECTION_DIR, ' +
  'SECRULES_TESTS_DIR at copies (README.md, "Tests")';

export type DataSet = 'crs' | 'libinjection' | 'secrules-language-tests';
/** Each set: its override variable and a file or folder it must hold. */
export const DATA_SETS: Record<DataSet, { env: string; marker: string }> = {
  crs: { env: 'CRS_DIR', marker: 'crs-setup.conf.example' },
  libinjection: { env: 'LIBINJECTION_DIR', marker: 'tests' },
  'secrules-language-tests': { env: 'SECRULES_TESTS_DIR', marker: 'operators' },
};

/** The test copy of a conformance data set, or what is missing. */
export function conformanceData(set: DataSet): { dir: string; missing?: Missing } {
  const { env: envName, marker } = DATA_SETS[set];
  const dir = process.env[envName] ?? join(sharedConformance, set);
  if (existsSync(join(dir, marker))) return { dir };
  return { dir, missing: { what: `the ${set} test data (no ${join(dir, marker)}${process.env[envName] ? `, from ${envName}` : ''})`, how: HOW_SHARED } };
}
