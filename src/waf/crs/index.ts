// Locating the OWASP CRS and assembling the directive list around it: recommended engine
// config -> caller's setup -> crs-setup -> generated tuning (paranoia, thresholds) -> rules.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadDirectives, loadFile, type Directive } from '../seclang/parser.ts';

const here = dirname(fileURLToPath(import.meta.url));
export const recommendedConfPath = join(here, 'recommended.conf');

/** Where the container image (and docs/deploy.md) installs the CRS: scripts/fetch-crs.sh --dest. */
export const INSTALLED_CRS_DIR = '/usr/share/sentinel/crs';

/** CRS root (holding rules/ and crs-setup.conf.example): $CRS_DIR, else the install location. */
export function defaultCrsDir(): string {
  return process.env.CRS_DIR ?? INSTALLED_CRS_DIR;
}

export interface CrsTuning {
  paranoiaLevel?: number;
  /** Rules up to this level run but only score for detection (defaults to paranoiaLevel). */
  detectionParanoiaLevel?: number;
  inboundThreshold?: number;
  outboundThreshold?: number;
}

/** SecActions that set the CRS tuning variables before the rules' own defaults apply. */
export function tuningDirectives(t: CrsTuning): string {
  const sets: string[] = [];
  const int = (name: string, v: number | undefined, min: number, max: number): void => {
    if (v === undefined) return;
    if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`);
    sets.push(`setvar:tx.${name}=${v}`);
  };
  int('blocking_paranoia_level', t.paranoiaLevel, 1, 4);
  int('detection_paranoia_level', t.detectionParanoiaLevel, 1, 4);
  int('inbound_anomaly_score_threshold', t.inboundThreshold, 1, 1_000_000);
  int('outbound_anomaly_score_threshold', t.outboundThreshold, 1, 1_000_000);
  if (sets.length === 0) return '';
  return `SecAction "id:900001,phase:1,pass,t:none,nolog,${sets.join(',')}"\n`;
}

export interface CrsLoadOptions extends CrsTuning {
  crsDir?: string;
  /** Directory of the *.conf rule files (default <crsDir>/rules). */
  rulesDir?: string;
  /** crs-setup file (default <crsDir>/crs-setup.conf, else crs-setup.conf.example). */
  crsSetupFile?: string;
  /** Files loaded after the recommended config and before crs-setup. */
  setupFiles?: string[];
  /** SecLang text loaded right before the CRS rules. */
  beforeRules?: string;
  /** SecLang text loaded after the CRS rules (exclusions: SecRuleRemoveById ...). */
  afterRules?: string;
  /** Skip the CRS entirely (only the recommended config and the caller's directives). */
  withoutCrs?: boolean;
}

export function crsDirectives(o: CrsLoadOptions): Directive[] {
  const crsDir = o.crsDir ?? defaultCrsDir();
  const out: Directive[] = [...loadFile(recommendedConfPath)];
  for (const f of o.setupFiles ?? []) out.push(...loadFile(f));
  if (!o.withoutCrs) {
    const setup =
      o.crsSetupFile ?? (existsSync(join(crsDir, 'crs-setup.conf')) ? join(crsDir, 'crs-setup.conf') : join(crsDir, 'crs-setup.conf.example'));
    if (!existsSync(setup)) {
      throw new Error(`CRS not found: ${setup} does not exist (set CRS_DIR or pass crsDir/rulesDir)`);
    }
    out.push(...loadFile(setup));
  }
  const tuning = tuningDirectives(o);
  if (tuning) out.push(...loadDirectives(tuning, '<tuning>', crsDir));
  if (o.beforeRules) out.push(...loadDirectives(o.beforeRules, '<before-rules>', crsDir));
  if (!o.withoutCrs) {
    const rulesDir = o.rulesDir ?? join(crsDir, 'rules');
    out.push(...loadDirectives('Include *.conf', '<crs>', rulesDir));
  }
  if (o.afterRules) out.push(...loadDirectives(o.afterRules, '<after-rules>', crsDir));
  return out;
}
