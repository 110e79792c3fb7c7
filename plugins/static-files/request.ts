// Pure decisions for one static-file request: which file segments a path names (traversal
// refused), validators (ETag / Last-Modified), conditional requests (RFC 9110 §13) and ranges
// (RFC 9110 §14). No I/O: the server (server.ts) stats and opens.

export type PathVerdict =
  | { ok: true; segments: string[]; trailingSlash: boolean }
  | { ok: false; status: 400 | 404; reason: 'bad_encoding' | 'nul' | 'backslash' | 'slash' | 'dot_segment' | 'dotfile' };

/**
 * The decoded segments of a request path (the front door normalised it: dot segments removed,
 * %2F / %5C / NUL / '\' refused). Each segment is percent-decoded exactly once, so a
 * double-encoded '..' (%252e%252e) names a file literally called "%2e%2e"; anything that decodes
 * into a separator, NUL or a dot segment is refused here again, whatever the front door did.
 * Names starting with '.' are hidden (404) unless `dotfiles`, except `.well-known` (RFC 8615).
 */
export function resolveSegments(path: string, dotfiles: boolean): PathVerdict {
  const segments: string[] = [];
  const parts = path.split('/');
  for (const part of parts) {
    if (part === '') continue;
    let seg: string;
    try {
      seg = decodeURIComponent(part);
    } catch {
      return { ok: false, status: 400, reason: 'bad_encoding' };
    }
    if (seg.includes('\0')) return { ok: false, status: 400, reason: 'nul' };
    if (seg.includes('\\')) return { ok: false, status: 400, reason: 'backslash' };
    if (seg.includes('/')) return { ok: false, status: 400, reason: 'slash' };
    if (seg === '.' || seg === '..') return { ok: false, status: 400, reason: 'dot_segment' };
    if (seg.startsWith('.') && !dotfiles && seg !== '.well-known') return { ok: false, status: 404, reason: 'dotfile' };
    segments.push(seg);
  }
  return { ok: true, segments, trailingSlash: path.endsWith('/') };
}

export interface Validators {
  /** strong ETag, quoted */
  readonly etag: string;
  /** mtime in whole seconds (HTTP dates have no finer precision) */
  readonly mtimeSecs: number;
  readonly lastModified: string;
}

export function validatorsOf(size: number, mtimeMs: number, suffix = ''): Validators {
  const secs = Math.floor(mtimeMs / 1000);
  return {
    etag: `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}${suffix}"`,
    mtimeSecs: secs,
    lastModified: new Date(secs * 1000).toUTCString(),
  };
}

type Header = string | string[] | undefined;
const one = (h: Header): string | undefined => (Array.isArray(h) ? h.join(', ') : h);

/** Entity tags of an If-Match / If-None-Match list (`*` kept as is). */
function etagList(h: string): string[] {
  const out: string[] = [];
  const re = /\s*(\*|(?:W\/)?"[^"]*")\s*(?:,|$)/gy;
  for (let m = re.exec(h); m && m[0] !== ''; m = re.exec(h)) out.push(m[1]!);
  return out;
}
const opaque = (t: string): string => (t.startsWith('W/') ? t.slice(2) : t);

function httpDateSecs(h: string | undefined): number | undefined {
  if (h === undefined) return undefined;
  const t = Date.parse(h);
  return Number.isNaN(t) ? undefined : Math.floor(t / 1000);
}

/**
 * RFC 9110 §13.2.2 evaluation order for a GET/HEAD of a file that exists: If-Match (strong
 * comparison) or else If-Unmodified-Since -> 412; If-None-Match (weak comparison) or else
 * If-Modified-Since -> 304. Undefined: serve the representation.
 */
export function conditionalStatus(headers: { 'if-match'?: Header; 'if-unmodified-since'?: Header; 'if-none-match'?: Header; 'if-modified-since'?: Header }, v: Validators): 304 | 412 | undefined {
  const ifMatch = one(headers['if-match']);
  if (ifMatch !== undefined) {
    const tags = etagList(ifMatch);
    if (!tags.some((t) => t === '*' || (!t.startsWith('W/') && t === v.etag))) return 412;
  } else {
    const since = httpDateSecs(one(headers['if-unmodified-since']));
    if (since !== undefined && v.mtimeSecs > since) return 412;
  }
  const ifNoneMatch = one(headers['if-none-match']);
  if (ifNoneMatch !== undefined) {
    const tags = etagList(ifNoneMatch);
    if (tags.some((t) => t === '*' || opaque(t) === opaque(v.etag))) return 304;
    return undefined;
  }
  const modSince = httpDateSecs(one(headers['if-modified-since']));
  if (modSince !== undefined && v.mtimeSecs <= modSince) return 304;
  return undefined;
}

export type RangeVerdict =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

/**
 * A Range header against a representation of `size` bytes. Only `bytes` ranges; a header that
 * does not parse is ignored (full response, RFC 9110 §14.2). One satisfiable range -> 206.
 * Several ranges -> the full 200 response (allowed by §14.2: a server may ignore Range), so no
 * multipart/byteranges and no amplification through many small or overlapping ranges. None
 * satisfiable -> 416.
 */
export function evaluateRange(range: Header, size: number): RangeVerdict {
  const h = one(range);
  if (h === undefined) return { kind: 'full' };
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(h);
  if (!m) return { kind: 'full' };
  const specs = m[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0) return { kind: 'full' };
  const satisfiable: { start: number; end: number }[] = [];
  for (const spec of specs) {
    const r = /^(\d*)\s*-\s*(\d*)$/.exec(spec);
    if (!r || (r[1] === '' && r[2] === '')) return { kind: 'full' };
    if (r[1] === '') {
      // suffix range: the last N bytes
      const n = Number(r[2]);
      if (n > 0 && size > 0) satisfiable.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = Number(r[1]);
    const end = r[2] === '' ? size - 1 : Number(r[2]);
    if (r[2] !== '' && end < start) return { kind: 'full' }; // invalid spec: ignore the header
    if (start < size) satisfiable.push({ start, end: Math.min(end, size - 1) });
  }
  if (satisfiable.length === 0) return { kind: 'unsatisfiable' };
  if (specs.length > 1) return { kind: 'full' };
  return { kind: 'partial', ...satisfiable[0]! };
}

/**
 * If-Range (RFC 9110 §13.1.5): the Range applies only when the validator matches the current
 * representation: an entity tag by strong comparison (a weak one never matches), or an HTTP
 * date equal to Last-Modified.
 */
export function ifRangeAllows(ifRange: Header, v: Validators): boolean {
  const h = one(ifRange)?.trim();
  if (h === undefined) return true;
  if (h.startsWith('"') || h.startsWith('W/')) return h === v.etag;
  const secs = httpDateSecs(h);
  return secs !== undefined && secs === v.mtimeSecs;
}
