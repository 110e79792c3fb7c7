// Pure content-coding decisions shared by the compress filter and static files: Accept-Encoding
// parsing (RFC 9110 §12.5.3), picking a coding by q-value, compressible media types, and the
// header edits a transformed representation needs (Vary, weak ETag).
import type { HeaderMap } from '../../src/pipeline/types.ts';

/** Codings the gateway can produce (Node 20 zlib); `br` is brotli. */
export type Coding = 'br' | 'gzip' | 'deflate';

export interface AcceptedCoding {
  readonly coding: string;
  readonly q: number;
}

/**
 * Parses Accept-Encoding into (coding, q) pairs, lower-cased. Malformed q-values make the entry
 * q=0 (refused) rather than q=1: a client that wrote garbage did not ask for that coding.
 * `x-gzip` is read as `gzip` (RFC 9110 §8.4.1.3).
 */
export function parseAcceptEncoding(header: string | string[] | undefined): AcceptedCoding[] {
  if (header === undefined) return [];
  const text = Array.isArray(header) ? header.join(',') : header;
  const out: AcceptedCoding[] = [];
  for (const part of text.split(',')) {
    const [name, ...params] = part.split(';');
    let coding = (name ?? '').trim().toLowerCase();
    if (coding === '') continue;
    if (coding === 'x-gzip') coding = 'gzip';
    let q = 1;
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== 'q') continue;
      const v = p.slice(eq + 1).trim();
      q = /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(v) ? Number(v) : 0;
    }
    out.push({ coding, q });
  }
  return out;
}

/** The q-value the client gives `coding`: its own entry, else `*`, else undefined (not mentioned). */
function qualityOf(accepted: readonly AcceptedCoding[], coding: string): number | undefined {
  let star: number | undefined;
  let own: number | undefined;
  for (const a of accepted) {
    if (a.coding === coding) own = own === undefined ? a.q : Math.max(own, a.q);
    else if (a.coding === '*') star = a.q;
  }
  return own ?? star;
}

/**
 * The codings of `available` the client accepts, best first: highest q, ties in the server's
 * order (`available` is its preference). Codings the client rates below identity are left out.
 */
export function rankCodings<T extends string>(header: string | string[] | undefined, available: readonly T[]): T[] {
  const accepted = parseAcceptEncoding(header);
  if (accepted.length === 0) return [];
  const identityQ = accepted.find((a) => a.coding === 'identity')?.q ?? 0;
  const ranked: { c: T; q: number; i: number }[] = [];
  available.forEach((c, i) => {
    const q = qualityOf(accepted, c) ?? 0;
    if (q > 0 && q >= identityQ) ranked.push({ c, q, i });
  });
  ranked.sort((a, b) => b.q - a.q || a.i - b.i);
  return ranked.map((r) => r.c);
}

/**
 * The coding to send, among `available` (in the server's order of preference), or undefined for
 * identity. Highest q wins; ties go to the server's order. No header, or an empty one, means
 * identity (RFC 9110: an empty value asks for no coding; without the header we stay
 * conservative like nginx). Identity is never refused here: when the client excludes identity
 * (`identity;q=0` or `*;q=0`) and accepts none of ours, the response goes out unencoded anyway
 * (a gateway does not turn a representation into a 406).
 */
export function chooseCoding<T extends string>(header: string | string[] | undefined, available: readonly T[]): T | undefined {
  return rankCodings(header, available)[0];
}

/** Media types compressed by default: text formats a gateway commonly carries. */
export const DEFAULT_COMPRESSIBLE = [
  'text/html',
  'text/css',
  'text/plain',
  'text/javascript',
  'text/xml',
  'text/csv',
  'text/markdown',
  'application/javascript',
  'application/json',
  'application/xml',
  'application/xhtml+xml',
  'application/rss+xml',
  'application/atom+xml',
  'application/manifest+json',
  'application/ld+json',
  'application/problem+json',
  'application/wasm',
  'image/svg+xml',
] as const;

/**
 * Whether a Content-Type is in `types`: exact media type (parameters ignored, case-insensitive),
 * or a `type/*` entry. A response without Content-Type is not compressed (its nature is unknown).
 */
export function isCompressible(contentType: string | string[] | undefined, types: readonly string[]): boolean {
  if (contentType === undefined) return false;
  const ct = (Array.isArray(contentType) ? contentType[0] ?? '' : contentType).split(';')[0]!.trim().toLowerCase();
  if (ct === '') return false;
  for (const t of types) {
    if (t === ct) return true;
    if (t.endsWith('/*') && ct.startsWith(t.slice(0, -1))) return true;
  }
  return false;
}

/** Adds `name` to Vary unless it is there already (or Vary is `*`). */
export function addVary(headers: HeaderMap, name: string): void {
  const cur = headers.vary;
  const list = (Array.isArray(cur) ? cur.join(',') : cur ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (list.some((v) => v === '*' || v.toLowerCase() === name.toLowerCase())) return;
  list.push(name);
  headers.vary = list.join(', ');
}

/** A strong ETag made weak (the encoded bytes are not the ones it named); weak ones stay. */
export function weakenEtag(etag: string | string[] | undefined): string | undefined {
  if (etag === undefined || Array.isArray(etag)) return undefined;
  return etag.startsWith('W/') ? etag : `W/${etag}`;
}

/** Whether Cache-Control carries no-transform (RFC 9111 §5.2.2.6): intermediaries must not re-encode. */
export function hasNoTransform(cacheControl: string | string[] | undefined): boolean {
  if (cacheControl === undefined) return false;
  const v = Array.isArray(cacheControl) ? cacheControl.join(',') : cacheControl;
  return /(^|,)\s*no-transform\s*(,|$)/i.test(v);
}
