// The forwarding feature's checks of an upstream block (its manifest's `validators.upstream`):
// the keys it adds (`tls`, `http-version`, plugins/forwarding/schema.ts) must describe pools it
// can build, so a bad file or version range is a config error, not a failed generation.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { RawUpstream } from '../../src/config/schema.ts';

export function validateForwardingUpstream(config: RawUpstream, baseDir: string): string[] {
  const errors: string[] = [];
  for (const key of ['ca-cert', 'client-cert', 'client-key'] as const) {
    const p = config.tls?.[key];
    if (!p) continue;
    try {
      readFileSync(resolve(baseDir, p));
    } catch (e) {
      errors.push(`tls > ${key}: cannot read "${p}": ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  if (config.tls && (config.tls['client-cert'] === undefined) !== (config.tls['client-key'] === undefined)) {
    errors.push('tls: client-cert and client-key must be given together');
  }
  const hv = config['http-version'];
  if (hv && hv['max-version'] !== undefined && (hv['min-version'] ?? 1) > hv['max-version']) errors.push('http-version: min-version is greater than max-version');
  return errors;
}
