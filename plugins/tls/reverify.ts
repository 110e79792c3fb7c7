// Whether a client certificate verified under one CA bundle is still accepted under another, for
// the connections open at a reload that changed client verification (docs/security.md, "Session 29
// (tls29)"). Node cannot verify a peer again, and a hand-written path validator is one more reading
// of certificates to get wrong, so this answers only a sure yes and says no to anything else: the
// connection is then closed and the client verified afresh by a new handshake.
//
// The sure yes: the leaf was issued directly by a self-signed CA certificate that is the only
// candidate for the leaf's issuer in both bundles, byte for byte the same. OpenSSL looks for the
// issuer in the trust store first (X509_V_FLAG_TRUSTED_FIRST, the default since 1.1.0), so the
// chain it verified under the old bundle was [leaf, that CA], and it is the chain a new handshake
// would build under the new one; every check made on it then (signatures, purposes, key usage,
// constraints, security level: the cipher settings cannot change it) gives the same answer, except
// the validity dates, checked again here. Chains through intermediates are not re-checked.
import type { X509Certificate } from 'node:crypto';

/** A `ca-file` bundle as the handshakes saw it. */
export interface TrustView {
  readonly certs: readonly X509Certificate[];
  /** false when OpenSSL loads certificates from the PEM that `certs` lacks (TRUSTED / X509 CERTIFICATE blocks) */
  readonly complete: boolean;
}

export function trustView(ca: { pem: string; certs: readonly X509Certificate[] } | undefined): TrustView {
  if (!ca) return { certs: [], complete: true };
  return { certs: ca.certs, complete: !/-----BEGIN (?:TRUSTED|X509) CERTIFICATE-----/.test(ca.pem) };
}

/**
 * A name as printed, folded further than OpenSSL's canonical comparison (case, blanks, escapes):
 * two names OpenSSL may take as one fold to one string, so counting candidates by it overcounts.
 */
function folded(name: string): string {
  return name.toLowerCase().replace(/[\s\\]/g, '');
}

/** The single certificate of `view` whose subject may be the leaf's issuer, or undefined (none, several, unknown). */
function soleCandidate(issuer: string, view: TrustView): X509Certificate | undefined {
  if (!view.complete) return undefined;
  let found: X509Certificate | undefined;
  for (const c of view.certs) {
    if (folded(c.subject) !== issuer) continue;
    if (found && !found.raw.equals(c.raw)) return undefined;
    found = c;
  }
  return found;
}

function validAt(c: X509Certificate, now: number): boolean {
  return Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
}

/** True only when a handshake under `after` would surely accept `leaf`, as one under `before` did. */
export function stillAccepted(leaf: X509Certificate, before: TrustView, after: TrustView, now = Date.now()): boolean {
  // a multi-valued name component ('+') may be reordered by the canonical form: not compared
  if (leaf.issuer.includes('+')) return false;
  const issuer = folded(leaf.issuer);
  const was = soleCandidate(issuer, before);
  const is = soleCandidate(issuer, after);
  if (!was || !is || !was.raw.equals(is.raw)) return false;
  // the issuer is a trust anchor (self-signed CA) and did sign the leaf
  if (!is.ca || !leaf.checkIssued(is) || !is.checkIssued(is) || !is.verify(is.publicKey) || !leaf.verify(is.publicKey)) return false;
  return validAt(leaf, now) && validAt(is, now);
}
