// Pure translation of the tls block's protocol settings to node:tls options.
// Sentinel (rustls) silently turned unknown versions into 1.2; here they are errors.
import type { SecureVersion } from 'node:tls';

/** "1.2", "tls1.2", "TLSv1.2", "tls12" -> "TLSv1.2"; same for 1.3. */
export function parseTlsVersion(key: string, v: string): SecureVersion {
  const m = /^(?:tls\s*v?)?1\.?([23])$/i.exec(v.trim());
  if (!m) throw new Error(`tls ${key} "${v}": expected "1.2" or "1.3" (also written "tls1.3", "TLSv1.3"); older versions are not supported`);
  return m[1] === '3' ? 'TLSv1.3' : 'TLSv1.2';
}

export function versionRange(min: string | undefined, max: string | undefined): { minVersion: SecureVersion; maxVersion: SecureVersion } {
  const minVersion = parseTlsVersion('min-version', min ?? '1.2');
  const maxVersion = max === undefined ? 'TLSv1.3' : parseTlsVersion('max-version', max);
  if (minVersion > maxVersion) throw new Error(`tls min-version ${min} is higher than max-version ${max}`);
  return { minVersion, maxVersion };
}

// IANA / rustls names (what Sentinel configs contain) -> OpenSSL names (what node takes).
// TLS 1.3 suites keep their IANA names in OpenSSL.
const SUITES: ReadonlyArray<readonly [openssl: string, tls13: boolean, ...aliases: string[]]> = [
  ['TLS_AES_128_GCM_SHA256', true, 'TLS13_AES_128_GCM_SHA256'],
  ['TLS_AES_256_GCM_SHA384', true, 'TLS13_AES_256_GCM_SHA384'],
  ['TLS_CHACHA20_POLY1305_SHA256', true, 'TLS13_CHACHA20_POLY1305_SHA256'],
  ['ECDHE-ECDSA-AES128-GCM-SHA256', false, 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
  ['ECDHE-ECDSA-AES256-GCM-SHA384', false, 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'],
  ['ECDHE-ECDSA-CHACHA20-POLY1305', false, 'TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256'],
  ['ECDHE-RSA-AES128-GCM-SHA256', false, 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256'],
  ['ECDHE-RSA-AES256-GCM-SHA384', false, 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384'],
  ['ECDHE-RSA-CHACHA20-POLY1305', false, 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256'],
];

const BY_NAME = new Map<string, { openssl: string; tls13: boolean }>();
for (const [openssl, tls13, ...aliases] of SUITES) {
  for (const n of [openssl, ...aliases]) BY_NAME.set(n.toUpperCase(), { openssl, tls13 });
}

export const SUPPORTED_CIPHER_SUITES = SUITES.map((s) => s[2]);

/**
 * `cipher-suite` nodes -> node's `ciphers` string. Only AEAD suites with forward secrecy are
 * accepted. When the list names no suite for a version that the range allows, that version
 * keeps OpenSSL's defaults for it (so "only TLS 1.2 suites" does not silently disable 1.3).
 */
export function cipherList(suites: readonly string[] | undefined, range: { minVersion: SecureVersion; maxVersion: SecureVersion }): string | undefined {
  if (!suites || suites.length === 0) return undefined;
  const mapped = suites.map((s) => {
    const hit = BY_NAME.get(s.trim().toUpperCase());
    if (!hit) throw new Error(`tls cipher-suite "${s}": unknown or not allowed; supported: ${SUPPORTED_CIPHER_SUITES.join(', ')}`);
    return hit;
  });
  const t13 = mapped.filter((m) => m.tls13).map((m) => m.openssl);
  const t12 = mapped.filter((m) => !m.tls13).map((m) => m.openssl);
  if (t12.length === 0 && range.minVersion === 'TLSv1.2') {
    throw new Error('tls cipher-suite lists only TLS 1.3 suites but min-version allows TLS 1.2: add TLS 1.2 suites or set min-version "1.3"');
  }
  if (t13.length === 0 && range.maxVersion === 'TLSv1.3') t13.push(...SUITES.filter((s) => s[1]).map((s) => s[0]));
  return [...new Set([...t13, ...t12])].join(':');
}
