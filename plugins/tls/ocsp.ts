// OCSP stapling (RFC 6960 / RFC 6066 status_request): build the DER OCSPRequest for a leaf
// certificate, fetch the response from the AIA responder, check it (status, CertID, signature
// by the issuer or its delegated OCSP signer, validity window), cache it until shortly before
// nextUpdate and hand it to handshakes that ask. The responder being down never blocks or
// fails a handshake: the connection simply gets no staple.
import { createHash, verify as verifySignature, X509Certificate, type KeyObject } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { TAG, children, decodeGeneralizedTime, decodeOid, encode, encodeOid, expectTag, readTlv, value, whole } from './der.ts';

const OID_SHA1 = '1.3.14.3.2.26';
const OID_OCSP_BASIC = '1.3.6.1.5.5.7.48.1.1';
const OID_OCSP_SIGNING = '1.3.6.1.5.5.7.3.9';
const SIGNATURE_HASH: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519: no separate digest
};

export interface CertId {
  /** DER of the CertID SEQUENCE (SHA-1, as RFC 5019 requires of lightweight responders) */
  der: Buffer;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  serial: Buffer;
}

/** The tbsCertificate fields OCSP needs, read straight from the DER. */
function tbsFields(certDer: Buffer): { serial: Buffer; issuer: Buffer; spkiKeyBits: Buffer } {
  const cert = expectTag(readTlv(certDer, 0), TAG.SEQUENCE, 'Certificate');
  const tbs = expectTag(children(certDer, cert)[0], TAG.SEQUENCE, 'tbsCertificate');
  const f = children(certDer, tbs);
  const i = f[0]?.tag === 0xa0 ? 1 : 0; // optional [0] version
  const serial = expectTag(f[i], TAG.INTEGER, 'serialNumber');
  const issuer = expectTag(f[i + 2], TAG.SEQUENCE, 'issuer');
  const spki = expectTag(f[i + 5], TAG.SEQUENCE, 'subjectPublicKeyInfo');
  const bits = expectTag(children(certDer, spki)[1], TAG.BIT_STRING, 'subjectPublicKey');
  return { serial: value(certDer, serial), issuer: whole(certDer, issuer), spkiKeyBits: value(certDer, bits).subarray(1) };
}

export function buildCertId(leaf: X509Certificate, issuer: X509Certificate): CertId {
  const l = tbsFields(leaf.raw);
  const iss = tbsFields(issuer.raw);
  const sha1 = (b: Buffer) => createHash('sha1').update(b).digest();
  const issuerNameHash = sha1(l.issuer);
  const issuerKeyHash = sha1(iss.spkiKeyBits);
  const der = encode(
    TAG.SEQUENCE,
    encode(TAG.SEQUENCE, encodeOid(OID_SHA1), encode(TAG.NULL)),
    encode(TAG.OCTET_STRING, issuerNameHash),
    encode(TAG.OCTET_STRING, issuerKeyHash),
    encode(TAG.INTEGER, l.serial),
  );
  return { der, issuerNameHash, issuerKeyHash, serial: l.serial };
}

/** OCSPRequest { tbsRequest { requestList { Request { reqCert } } } }, unsigned, no nonce (cacheable). */
export function buildOcspRequest(certId: CertId): Buffer {
  return encode(TAG.SEQUENCE, encode(TAG.SEQUENCE, encode(TAG.SEQUENCE, encode(TAG.SEQUENCE, certId.der))));
}

export type CertStatus = 'good' | 'revoked' | 'unknown';

export interface ParsedOcspResponse {
  /** OCSPResponseStatus: 0 successful, 1 malformedRequest, 2 internalError, 3 tryLater, 5 sigRequired, 6 unauthorized */
  responseStatus: number;
  certStatus?: CertStatus;
  thisUpdate?: Date;
  nextUpdate?: Date;
  producedAt?: Date;
  /** for signature checking */
  tbsResponseData?: Buffer;
  signatureAlgorithm?: string;
  signature?: Buffer;
  certs: X509Certificate[];
}

const RESPONSE_STATUS = ['successful', 'malformedRequest', 'internalError', 'tryLater', '(4)', 'sigRequired', 'unauthorized'];

/** Parses an OCSPResponse and picks the SingleResponse for `certId`. */
export function parseOcspResponse(der: Buffer, certId: CertId): ParsedOcspResponse {
  const top = expectTag(readTlv(der, 0), TAG.SEQUENCE, 'OCSPResponse');
  if (top.end !== der.length) throw new Error('OCSP: trailing bytes after the response');
  const parts = children(der, top);
  const status = value(der, expectTag(parts[0], TAG.ENUMERATED, 'responseStatus'))[0] ?? 255;
  if (status !== 0) return { responseStatus: status, certs: [] };
  const rb = children(der, expectTag(parts[1], 0xa0, 'responseBytes'))[0];
  const rbParts = children(der, expectTag(rb, TAG.SEQUENCE, 'ResponseBytes'));
  const type = decodeOid(value(der, expectTag(rbParts[0], TAG.OID, 'responseType')));
  if (type !== OID_OCSP_BASIC) throw new Error(`OCSP: unsupported response type ${type}`);
  const basicDer = value(der, expectTag(rbParts[1], TAG.OCTET_STRING, 'response'));

  const basic = children(basicDer, expectTag(readTlv(basicDer, 0), TAG.SEQUENCE, 'BasicOCSPResponse'));
  const tbs = expectTag(basic[0], TAG.SEQUENCE, 'tbsResponseData');
  const sigAlg = children(basicDer, expectTag(basic[1], TAG.SEQUENCE, 'signatureAlgorithm'))[0];
  const signatureAlgorithm = decodeOid(value(basicDer, expectTag(sigAlg, TAG.OID, 'signature algorithm')));
  const signature = value(basicDer, expectTag(basic[2], TAG.BIT_STRING, 'signature')).subarray(1);
  const certs: X509Certificate[] = [];
  if (basic[3]?.tag === 0xa0) {
    const seq = expectTag(children(basicDer, basic[3])[0], TAG.SEQUENCE, 'certs');
    for (const c of children(basicDer, seq)) certs.push(new X509Certificate(whole(basicDer, c)));
  }

  const rd = children(basicDer, tbs);
  let i = rd[0]?.tag === 0xa0 ? 1 : 0; // optional [0] version
  i++; // responderID ([1] byName / [2] byKey): the signature check below identifies the signer
  const producedAt = decodeGeneralizedTime(value(basicDer, expectTag(rd[i], TAG.GENERALIZED_TIME, 'producedAt')));
  const responses = children(basicDer, expectTag(rd[i + 1], TAG.SEQUENCE, 'responses'));
  for (const sr of responses) {
    const f = children(basicDer, expectTag(sr, TAG.SEQUENCE, 'SingleResponse'));
    const cid = children(basicDer, expectTag(f[0], TAG.SEQUENCE, 'certID'));
    const nameHash = value(basicDer, expectTag(cid[1], TAG.OCTET_STRING, 'issuerNameHash'));
    const keyHash = value(basicDer, expectTag(cid[2], TAG.OCTET_STRING, 'issuerKeyHash'));
    const serial = value(basicDer, expectTag(cid[3], TAG.INTEGER, 'serialNumber'));
    if (!serial.equals(certId.serial) || !nameHash.equals(certId.issuerNameHash) || !keyHash.equals(certId.issuerKeyHash)) continue;
    const st = f[1]!;
    const certStatus: CertStatus = st.tag === 0x80 ? 'good' : st.tag === 0xa1 ? 'revoked' : 'unknown';
    const thisUpdate = decodeGeneralizedTime(value(basicDer, expectTag(f[2], TAG.GENERALIZED_TIME, 'thisUpdate')));
    let nextUpdate: Date | undefined;
    if (f[3]?.tag === 0xa0) nextUpdate = decodeGeneralizedTime(value(basicDer, expectTag(children(basicDer, f[3])[0], TAG.GENERALIZED_TIME, 'nextUpdate')));
    return { responseStatus: 0, certStatus, thisUpdate, nextUpdate, producedAt, tbsResponseData: whole(basicDer, tbs), signatureAlgorithm, signature, certs };
  }
  throw new Error('OCSP: the response does not cover this certificate (no matching CertID)');
}

function verifiedBy(parsed: ParsedOcspResponse, key: KeyObject): boolean {
  const hash = SIGNATURE_HASH[parsed.signatureAlgorithm!];
  if (hash === undefined) throw new Error(`OCSP: unsupported signature algorithm ${parsed.signatureAlgorithm}`);
  try {
    return verifySignature(hash, parsed.tbsResponseData!, key, parsed.signature!);
  } catch {
    return false;
  }
}

/**
 * Checks a parsed response the way a client would: signed by the issuer, or by a certificate
 * the issuer issued for OCSP signing; `now` within [thisUpdate, nextUpdate]. Returns a reason
 * when it must not be stapled.
 */
export function checkOcspResponse(parsed: ParsedOcspResponse, issuer: X509Certificate, now: number): string | undefined {
  if (parsed.responseStatus !== 0) return `responder answered ${RESPONSE_STATUS[parsed.responseStatus] ?? parsed.responseStatus}`;
  let signed = verifiedBy(parsed, issuer.publicKey);
  if (!signed) {
    signed = parsed.certs.some(
      (c) => c.checkIssued(issuer) && c.verify(issuer.publicKey) && (c.keyUsage ?? []).includes(OID_OCSP_SIGNING) && verifiedBy(parsed, c.publicKey),
    );
  }
  if (!signed) return 'signature is not from the issuer nor from a delegated OCSP signer of the issuer';
  const skew = 5 * 60_000;
  if (parsed.thisUpdate && parsed.thisUpdate.getTime() > now + skew) return `thisUpdate ${parsed.thisUpdate.toISOString()} is in the future`;
  if (parsed.nextUpdate && parsed.nextUpdate.getTime() <= now) return `response expired at nextUpdate ${parsed.nextUpdate.toISOString()}`;
  if (parsed.certStatus !== 'good') return `certificate status is ${parsed.certStatus}`;
  return undefined;
}

/** Without nextUpdate a response is trusted this long after thisUpdate. */
const NO_NEXT_UPDATE_VALIDITY_MS = 24 * 3_600_000;
const MAX_REFRESH_MS = 3_600_000;

/**
 * When to stop stapling a response and when to fetch the next one: refresh a quarter of the
 * validity window (at most one hour) before nextUpdate, and at least hourly.
 */
export function stapleSchedule(thisUpdate: Date, nextUpdate: Date | undefined, now: number): { expiresAt: number; refreshAt: number } {
  const from = thisUpdate.getTime();
  const expiresAt = nextUpdate ? nextUpdate.getTime() : from + NO_NEXT_UPDATE_VALIDITY_MS;
  const margin = Math.min(MAX_REFRESH_MS, Math.max(0, (expiresAt - from) / 4));
  const refreshAt = Math.max(now + 1000, Math.min(expiresAt - margin, now + MAX_REFRESH_MS));
  return { expiresAt, refreshAt };
}

/** Retry delay after the n-th consecutive failure: 10 s doubling up to 10 min. */
export function retryDelayMs(failures: number): number {
  return Math.min(600_000, 10_000 * 2 ** Math.max(0, failures - 1));
}

export type OcspFetch = (url: string, body: Buffer, timeoutMs: number) => Promise<Buffer>;

/** POST application/ocsp-request, bounded in time and size. */
export const fetchOcsp: OcspFetch = (url, body, timeoutMs) =>
  new Promise((resolve, reject) => {
    const u = new URL(url);
    const send = u.protocol === 'https:' ? httpsRequest : u.protocol === 'http:' ? httpRequest : undefined;
    if (!send) return reject(new Error(`unsupported OCSP responder scheme ${u.protocol}`));
    const req = send(u, { method: 'POST', headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response', 'content-length': body.length }, timeout: timeoutMs }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Error(`responder returned HTTP ${res.statusCode}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > 1 << 20) req.destroy(new Error('OCSP response larger than 1 MiB'));
        else chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });

interface Tracked {
  label: string;
  url: string;
  issuer: X509Certificate;
  certId: CertId;
  request: Buffer;
  staple?: { der: Buffer; expiresAt: number };
  failures: number;
  timer?: NodeJS.Timeout;
  inflight?: Promise<void>;
}

export interface StapleTarget {
  /** for logs */
  label: string;
  leaf: X509Certificate;
  issuer: X509Certificate;
  url: string;
}

/** Keeps one fresh, verified OCSP response per tracked certificate. */
export class OcspStapler {
  private readonly tracked = new Map<string, Tracked>();
  private closed = false;

  constructor(
    private readonly opts: {
      log: Logger;
      fetches?: Counter<'result'>;
      fetch?: OcspFetch;
      timeoutMs?: number;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return this.opts.now?.() ?? Date.now();
  }

  /** Key for a certificate: sha256 of its DER (what the OCSPRequest handshake event gives us). */
  static keyOf(der: Buffer): string {
    return createHash('sha256').update(der).digest('hex');
  }

  /** Replaces the set of certificates to staple; keeps cached responses of certificates still present. */
  track(targets: StapleTarget[]): void {
    const next = new Map<string, StapleTarget>();
    for (const t of targets) next.set(OcspStapler.keyOf(t.leaf.raw), t);
    for (const [key, t] of this.tracked) {
      if (!next.has(key)) {
        clearTimeout(t.timer);
        this.tracked.delete(key);
      }
    }
    for (const [key, t] of next) {
      if (this.tracked.has(key)) continue;
      const certId = buildCertId(t.leaf, t.issuer);
      const entry: Tracked = { label: t.label, url: t.url, issuer: t.issuer, certId, request: buildOcspRequest(certId), failures: 0 };
      this.tracked.set(key, entry);
      void this.refresh(entry);
    }
  }

  /** The response to staple for this certificate, or null (never blocks). */
  staple(certDer: Buffer): Buffer | null {
    const t = this.tracked.get(OcspStapler.keyOf(certDer));
    if (!t?.staple) return null;
    if (t.staple.expiresAt <= this.now()) {
      t.staple = undefined;
      return null;
    }
    return t.staple.der;
  }

  /** Resolves when every tracked certificate has finished its current fetch (tests, startup). */
  async settled(): Promise<void> {
    await Promise.all([...this.tracked.values()].map((t) => t.inflight));
  }

  private refresh(t: Tracked): Promise<void> {
    if (t.inflight) return t.inflight;
    const run = async () => {
      let delay: number;
      try {
        const der = await (this.opts.fetch ?? fetchOcsp)(t.url, t.request, this.opts.timeoutMs ?? 5000);
        const parsed = parseOcspResponse(der, t.certId);
        const problem = checkOcspResponse(parsed, t.issuer, this.now());
        if (problem) throw new Error(problem);
        const s = stapleSchedule(parsed.thisUpdate!, parsed.nextUpdate, this.now());
        t.staple = { der, expiresAt: s.expiresAt };
        t.failures = 0;
        delay = s.refreshAt - this.now();
        this.opts.fetches?.inc({ result: 'success' });
        this.opts.log.debug({ cert: t.label, nextUpdate: parsed.nextUpdate?.toISOString() }, 'OCSP response fetched');
      } catch (err) {
        t.failures++;
        delay = retryDelayMs(t.failures);
        this.opts.fetches?.inc({ result: 'failure' });
        const keeping = t.staple && t.staple.expiresAt > this.now() ? 'keeping the cached response' : 'serving without a staple';
        this.opts.log.warn({ cert: t.label, responder: t.url, err: (err as Error).message }, `OCSP fetch failed; ${keeping}, retrying in ${Math.round(delay / 1000)} s`);
      }
      // only reschedule while the certificate is still tracked (a reload may have dropped it)
      if (!this.closed && [...this.tracked.values()].includes(t)) {
        t.timer = setTimeout(() => void this.refresh(t), delay);
        t.timer.unref();
      }
    };
    t.inflight = run().finally(() => {
      t.inflight = undefined;
    });
    return t.inflight;
  }

  close(): void {
    this.closed = true;
    for (const t of this.tracked.values()) clearTimeout(t.timer);
    this.tracked.clear();
  }
}
