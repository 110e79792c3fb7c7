// test/run.sh's choice of what to run, given the third-party data beside the checkout:
//   node --import tsx test/select.ts files     the test files to run, one a line
//   node --import tsx test/select.ts suites    the conformance suites to run
// A test file that needs a data set says so in a line `// needs-data: <set>` (test/helpers/needs.ts
// DATA_SETS). When a set is missing, outside CI its files and suite are left out with a loud
// `*** SKIPPING ... ***` line on stderr; in CI (the `CI` variable set) this exits 1 with a message
// saying how to get it, before anything runs.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { conformanceData, DATA_SETS, inCI, missingMessage, type DataSet } from './helpers/needs.ts';

const repoRoot = resolve(import.meta.dirname, '..');

/** Every test/**\/*.test.ts, relative to the checkout, sorted (as run.sh's glob gives them). */
export function testFiles(dir = join(repoRoot, 'test')): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...testFiles(path));
    else if (e.name.endsWith('.test.ts')) out.push(relative(repoRoot, path));
  }
  return out.sort();
}

/** The data sets a file declares with `// needs-data: <set>` lines. */
export function declaredNeeds(text: string): DataSet[] {
  return [...text.matchAll(/^\/\/ needs-data: (\S+)(?: .*)?$/gm)].map((m) => {
    if (!(m[1]! in DATA_SETS)) throw new Error(`needs-data: unknown data set "${m[1]}" (one of ${Object.keys(DATA_SETS).join(', ')})`);
    return m[1] as DataSet;
  });
}

/** The conformance suite each data set feeds (test/conformance/suites/<name>.ts). */
const SUITE_OF: Record<DataSet, string> = { crs: 'crs', libinjection: 'libinjection', 'secrules-language-tests': 'seclang' };

function main(what: string | undefined): number {
  if (what !== 'files' && what !== 'suites') {
    process.stderr.write('usage: test/select.ts files|suites\n');
    return 2;
  }
  const missing = (Object.keys(DATA_SETS) as DataSet[]).flatMap((set) => {
    const m = conformanceData(set).missing;
    return m ? [{ set, m }] : [];
  });
  if (missing.length && inCI()) {
    for (const { set, m } of missing) process.stderr.write(`CI: ${missingMessage(`the ${set} tests and the ${SUITE_OF[set]} conformance suite`, m)}\n`);
    return 1;
  }
  const gone = new Set(missing.map((x) => x.set));
  if (what === 'suites') {
    for (const { set, m } of missing) process.stderr.write(`\n*** SKIPPING ${missingMessage(`the ${SUITE_OF[set]} conformance suite`, m)} ***\n\n`);
    const skip = new Set([...gone].map((set) => SUITE_OF[set]));
    const suites = readdirSync(join(repoRoot, 'test', 'conformance', 'suites')).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3));
    for (const suite of suites.sort()) if (!skip.has(suite)) process.stdout.write(`${suite}\n`);
    return 0;
  }
  const skipped = new Map<DataSet, string[]>();
  for (const f of testFiles()) {
    const need = declaredNeeds(readFileSync(join(repoRoot, f), 'utf8')).find((s) => gone.has(s));
    if (need) skipped.set(need, [...(skipped.get(need) ?? []), f]);
    else process.stdout.write(`${f}\n`);
  }
  for (const { set, m } of missing) {
    const files = skipped.get(set) ?? [];
    // a set no test file reads (secrules-language-tests feeds the seclang suite only): the suites line says it
    if (files.length === 0) continue;
    process.stderr.write(`\n*** SKIPPING ${files.length} test files (${files.join(', ')}): missing ${m.what}; ${m.how} ***\n\n`);
  }
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = main(process.argv[2]);
