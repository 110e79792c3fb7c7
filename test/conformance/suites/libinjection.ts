// `npm run conformance -- libinjection`: libinjection's unit cases plus the three
// sample-set allowance checks (each counted as one case).
import type { SuiteResult } from '../types.ts';
import { actualOutput, evaluateSampleSets, libinjectionDataRoot, loadUnitCases } from '../../unit/libinjection/harness.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export async function run(): Promise<SuiteResult> {
  const root = libinjectionDataRoot();
  if (!existsSync(join(root, 'tests')) || !existsSync(join(root, 'data'))) {
    console.log(`libinjection: FAIL conformance data not found, looked in ${root} (set LIBINJECTION_DIR)`);
    return { passed: 0, failed: 1 };
  }
  let passed = 0;
  let failed = 0;
  for (const c of loadUnitCases(root)) {
    const got = actualOutput(c);
    if (got === c.expected) {
      passed++;
    } else {
      failed++;
      console.log(`libinjection: FAIL ${c.file} (${c.title}) input=${JSON.stringify(c.input)}`);
      console.log(`  expected ${JSON.stringify(c.expected)}\n  got      ${JSON.stringify(got)}`);
    }
  }
  for (const set of evaluateSampleSets(root)) {
    const ok = set.wrong.length <= set.allowed;
    console.log(`libinjection: ${ok ? 'ok  ' : 'FAIL'} ${set.name}: ${set.wrong.length} wrong of ${set.total} (allowed ${set.allowed})`);
    if (ok) {
      passed++;
    } else {
      failed++;
      for (const w of set.wrong) console.log(`  ${w}`);
    }
  }
  return { passed, failed };
}
