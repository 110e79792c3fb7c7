// Conformance dispatcher: `npm run conformance -- <suite> [...]` (or `all`).
// Each suite lives in test/conformance/suites/<name>.ts and exports
// `run(): Promise<SuiteResult>`; this prints the suite's own lines and a closing
// `N passed, N failed` line per suite, and exits non-zero when any case failed.
import { readdirSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join, dirname } from 'node:path';

import type { SuiteResult } from './types.ts';

const suitesDir = join(dirname(fileURLToPath(import.meta.url)), 'suites');
const available = readdirSync(suitesDir)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => f.slice(0, -3))
  .sort();

const asked = process.argv.slice(2).filter((a) => a !== '--');
const names = asked.length === 0 || asked.includes('all') ? available : asked;
let anyFailed = false;
let total: SuiteResult = { passed: 0, failed: 0, skipped: 0 };
for (const name of names) {
  if (!available.includes(name)) {
    console.error(`unknown conformance suite "${name}"; available: ${available.join(', ')}`);
    process.exit(2);
  }
  const mod = (await import(pathToFileURL(join(suitesDir, `${name}.ts`)).href)) as {
    run: () => Promise<SuiteResult>;
  };
  const r = await mod.run();
  const skipped = r.skipped ? `, ${r.skipped} skipped` : '';
  console.log(`${name}: ${r.passed} passed, ${r.failed} failed${skipped}`);
  total = { passed: total.passed + r.passed, failed: total.failed + r.failed, skipped: (total.skipped ?? 0) + (r.skipped ?? 0) };
  if (r.failed > 0) anyFailed = true;
}
if (names.length > 1) console.log(`conformance: ${total.passed} passed, ${total.failed} failed`);
process.exit(anyFailed ? 1 : 0);
