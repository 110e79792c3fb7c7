// Where sentinel-waf finds the OWASP CRS: --crs-dir, else $CRS_DIR (both land in
// WafAgentConfig.crsDir), else the install location of the container image. Never a path
// beside the checkout: a deployment has none. Pure (the file test is injected), table-tested.
import { join } from 'node:path';
import { INSTALLED_CRS_DIR } from '../crs/index.ts';

export type CrsLocation = { ok: true; crsDir: string } | { ok: false; message: string };

export function locateCrs(c: { crsDir?: string; rulesDir?: string }, exists: (path: string) => boolean): CrsLocation {
  const crsDir = c.crsDir ?? INSTALLED_CRS_DIR;
  const from = c.crsDir === undefined ? 'the default location' : '--crs-dir / CRS_DIR';
  const rulesDir = c.rulesDir ?? join(crsDir, 'rules');
  const missing: string[] = [];
  if (!exists(rulesDir)) missing.push(`${rulesDir} does not exist`);
  if (!exists(join(crsDir, 'crs-setup.conf')) && !exists(join(crsDir, 'crs-setup.conf.example'))) {
    missing.push(`${crsDir} has no crs-setup.conf or crs-setup.conf.example`);
  }
  if (missing.length === 0) return { ok: true, crsDir };
  return {
    ok: false,
    message:
      `no OWASP CRS found at ${crsDir} (${from}): ${missing.join('; ')}.\n` +
      `  Point sentinel-waf at a CRS v4 root (rules/ and crs-setup.conf.example) with --crs-dir DIR or the CRS_DIR\n` +
      `  environment variable, or install it at ${INSTALLED_CRS_DIR}. scripts/fetch-crs.sh --dest DIR downloads the\n` +
      `  pinned OWASP CRS release and checks its sha256 (the container image has it already).`,
  };
}
