// Loading and validating PEM certificates and keys (node:crypto X509Certificate).
// Every failure is an Error whose message names the config key and the file, so startup and
// `sentinel test` can print it as is.
import { readFile } from 'node:fs/promises';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { MountedSnapshot } from '../../src/config/mounted.ts';

export interface LoadedCert {
  certPath: string;
  keyPath: string;
  /** PEM text of the certificate chain (leaf first) and of the key, as handed to createSecureContext */
  certPem: string;
  keyPem: string;
  leaf: X509Certificate;
  /** certificates after the leaf in cert-file (intermediates), in file order */
  chain: X509Certificate[];
  /** DNS names from the SAN extension, else the subject CN (lower-cased) */
  names: string[];
  subject: string;
  fingerprint256: string;
  notAfter: Date;
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const KEY_BLOCK = /-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----[\s\S]+?-----END \1-----/;

export function resolvePath(path: string, baseDir: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

/** Test seam: called after each certificate, key or CA file is read (a Secret swap is injected here). */
export const certHooks: { afterRead?: (path: string) => void } = {};

/**
 * Reads a config-referenced file, turning fs errors into a message an operator can act on. With a
 * `view`, a file of a mounted Secret is read in the version the view resolved first (MountedSnapshot).
 */
export async function readConfigFile(key: string, path: string, view?: MountedSnapshot): Promise<string> {
  try {
    const text = await readFile(view ? view.path(path) : path, 'utf8');
    certHooks.afterRead?.(path);
    return text;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'file not found' : code === 'EACCES' || code === 'EPERM' ? 'permission denied (not readable)' : code === 'EISDIR' ? 'is a directory, expected a file' : (err as Error).message;
    throw new Error(`tls ${key} "${path}": ${why}`, { cause: err });
  }
}

/** All certificates of a PEM bundle; throws when there is none or one does not parse. */
export function parseCertificates(key: string, path: string, pem: string): X509Certificate[] {
  const blocks = pem.match(CERT_BLOCK);
  if (!blocks || blocks.length === 0) {
    const hint = KEY_BLOCK.test(pem) ? ' (it holds a private key: are cert-file and key-file swapped?)' : '';
    throw new Error(`tls ${key} "${path}": not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)${hint}`);
  }
  return blocks.map((b, i) => {
    try {
      return new X509Certificate(b);
    } catch (err) {
      throw new Error(`tls ${key} "${path}": certificate #${i + 1} is not valid PEM/DER: ${(err as Error).message}`, { cause: err });
    }
  });
}

export function parsePrivateKey(key: string, path: string, pem: string): KeyObject {
  if (!KEY_BLOCK.test(pem)) {
    const hint = CERT_BLOCK.test(pem) ? ' (it holds a certificate: are cert-file and key-file swapped?)' : '';
    CERT_BLOCK.lastIndex = 0;
    throw new Error(`tls ${key} "${path}": not a PEM private key (no "-----BEGIN PRIVATE KEY-----" block)${hint}`);
  }
  if (/ENCRYPTED/.test(pem)) throw new Error(`tls ${key} "${path}": the private key is encrypted; Sentinel needs an unencrypted key file`);
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new Error(`tls ${key} "${path}": private key does not parse: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Splits the `subjectAltName` string node prints ("DNS:a.com, DNS:*.b.com, IP Address:1.2.3.4").
 * Values containing separators are JSON-quoted by node (CVE-2021-44532), so a quoted value is
 * read as a JSON string.
 */
export function parseSubjectAltName(san: string | undefined): { dns: string[]; ip: string[]; uri: string[]; email: string[] } {
  const out = { dns: [] as string[], ip: [] as string[], uri: [] as string[], email: [] as string[] };
  if (!san) return out;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon < 0) break;
    const type = san.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      // JSON string: find the closing quote that is not escaped
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      next = san.indexOf(',', j + 1);
    } else {
      next = san.indexOf(', ', colon + 1);
      value = san.slice(colon + 1, next < 0 ? undefined : next);
    }
    if (type === 'DNS') out.dns.push(value);
    else if (type === 'IP Address') out.ip.push(value);
    else if (type === 'URI') out.uri.push(value);
    else if (type === 'email') out.email.push(value);
    if (next < 0) break;
    i = next + 1;
    while (san[i] === ' ') i++;
  }
  return out;
}

/** The CN of a node-formatted subject ("C=US\nO=x\nCN=name"). */
export function commonName(subject: string): string | undefined {
  for (const line of subject.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3);
  }
  return undefined;
}

/** Host names a certificate serves: SAN DNS names, else the CN (RFC 6125 fallback). */
export function certificateNames(cert: X509Certificate): string[] {
  const dns = parseSubjectAltName(cert.subjectAltName).dns;
  const names = dns.length > 0 ? dns : [commonName(cert.subject)].filter((n): n is string => !!n);
  return [...new Set(names.map((n) => n.toLowerCase().replace(/\.$/, '')))];
}

/** The OCSP responder URL from the Authority Information Access extension, if any. */
export function ocspResponderUrl(cert: X509Certificate): string | undefined {
  const aia = cert.infoAccess;
  if (!aia) return undefined;
  for (const line of aia.split('\n')) {
    const m = /^OCSP - URI:(.+)$/.exec(line.trim());
    if (m) return m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : m[1];
  }
  return undefined;
}

/**
 * Reads and cross-checks a cert-file/key-file pair. `what` prefixes messages (e.g. `sni[2]`). `view`:
 * one load's MountedSnapshot, so a pair (and the CA bundle) in a Secret volume is read from one version.
 */
export async function loadCertKeyPair(certFile: string, keyFile: string, baseDir: string, what = '', view = new MountedSnapshot()): Promise<LoadedCert> {
  const prefix = what ? `${what} ` : '';
  const certPath = resolvePath(certFile, baseDir);
  const keyPath = resolvePath(keyFile, baseDir);
  const certPem = await readConfigFile(`${prefix}cert-file`, certPath, view);
  const keyPem = await readConfigFile(`${prefix}key-file`, keyPath, view);
  const certs = parseCertificates(`${prefix}cert-file`, certPath, certPem);
  const key = parsePrivateKey(`${prefix}key-file`, keyPath, keyPem);
  const leaf = certs[0]!;
  if (!leaf.checkPrivateKey(key)) {
    throw new Error(`tls ${prefix}key-file "${keyPath}" does not match the certificate in cert-file "${certPath}" (subject ${oneLine(leaf.subject)})`);
  }
  const chain = certs.slice(1);
  for (let i = 0; i < certs.length - 1; i++) {
    if (!certs[i]!.checkIssued(certs[i + 1]!)) {
      throw new Error(`tls ${prefix}cert-file "${certPath}": certificate #${i + 2} did not issue certificate #${i + 1}; the chain must be leaf first, then each issuer`);
    }
  }
  return {
    certPath,
    keyPath,
    certPem,
    keyPem,
    leaf,
    chain,
    names: certificateNames(leaf),
    subject: oneLine(leaf.subject),
    fingerprint256: leaf.fingerprint256,
    notAfter: new Date(leaf.validTo),
  };
}

/** A CA bundle for client verification (mTLS). */
export async function loadCaBundle(caFile: string, baseDir: string, view?: MountedSnapshot): Promise<{ path: string; pem: string; certs: X509Certificate[] }> {
  const path = resolvePath(caFile, baseDir);
  const pem = await readConfigFile('ca-file', path, view);
  const certs = parseCertificates('ca-file', path, pem);
  for (const c of certs) {
    if (!c.ca) throw new Error(`tls ca-file "${path}": certificate ${oneLine(c.subject)} is not a CA certificate (basicConstraints CA:FALSE)`);
  }
  return { path, pem, certs };
}

/** "C=US\nCN=x" -> "C=US, CN=x" for logs and labels. */
export function oneLine(dn: string): string {
  return dn.split('\n').join(', ');
}
