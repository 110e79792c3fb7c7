// Pulls every @rx pattern out of the CRS rule files (read from ../shared/conformance/crs,
// override with CRS_DIR). Shared by the CRS compile test and bench/waf-regex.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const crsDir = process.env.CRS_DIR ?? join(repoRoot, '..', 'shared', 'conformance', 'crs');

export interface CrsPattern {
  file: string;
  /** rule id, or `<head id>+chain` for a chained rule's later links */
  id: string;
  pattern: string;
}

/** Every `SecRule VARS "@rx ..."` (and operator-less SecRule, which means @rx) in rules/*.conf. */
export function crsRxPatterns(): CrsPattern[] {
  const rulesDir = join(crsDir, 'rules');
  let files: string[];
  try {
    files = readdirSync(rulesDir).filter((f) => f.endsWith('.conf'));
  } catch (e) {
    throw new Error(
      `CRS rules not found in ${rulesDir} (${(e as Error).message}); put CRS v4 under ../shared/conformance/crs or set CRS_DIR`,
      { cause: e },
    );
  }
  const out: CrsPattern[] = [];
  for (const file of files.sort()) {
    let lastId = '?';
    // Rule files are bytes: read them as latin1 so patterns line up with latin1 inputs.
    const text = readFileSync(join(rulesDir, file), 'latin1').replace(/\\\r?\n/g, '');
    for (const line of text.split(/\r?\n/)) {
      const m = /^\s*SecRule\s+\S+\s+"((?:[^"\\]|\\.)*)"(.*)$/.exec(line);
      if (!m) continue;
      // Inside double quotes only \" is an escape; every other backslash belongs to the regex.
      let operator = (m[1] ?? '').replace(/\\"/g, '"');
      if (operator.startsWith('!')) operator = operator.slice(1);
      let pattern: string;
      if (operator.startsWith('@rx ')) pattern = operator.slice(4);
      else if (!operator.startsWith('@')) pattern = operator;
      else continue;
      const ownId = /\bid:(\d+)/.exec(m[2] ?? '')?.[1];
      if (ownId) lastId = ownId;
      out.push({ file, id: ownId ?? `${lastId}+chain`, pattern });
    }
  }
  return out;
}
