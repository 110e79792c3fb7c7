// Request body buffering and bounded decompression for agent body inspection.
// The bytes read from the client are kept exactly as received (they are replayed upstream);
// agents may see a decompressed copy, produced under a ratio cap and an absolute cap, and
// a decompression bomb is stopped at the cap, never expanded.
import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate, createInflateRaw } from 'node:zlib';

// Reading a whole body is the core's (the forwarder buffers small bodies with it too).
export { readBody, type ReadResult } from '../../src/server/request-body.ts';

/** Content-type allowlist by prefix (parameters such as charset are ignored). */
export function isInspectedContentType(contentType: string | undefined, allowed: readonly string[]): boolean {
  if (!contentType) return false;
  const ct = contentType.split(';')[0]!.trim().toLowerCase();
  if (allowed.some((prefix) => ct.startsWith(prefix))) return true;
  // A structured-syntax suffix (RFC 6839) is its base type to the WAF (recommended rules 200000,
  // 200006, 200007; 920420 allows application/soap+xml as shipped): with `application/json` or
  // `application/xml` listed, `application/vnd.api+json` and `application/soap+xml` are too, else a
  // fail-open filter skipped them (session 24 WAF evasion audit).
  const suffix = /^application\/[a-z0-9.!#$&^_-]+\+(json|xml)$/.exec(ct)?.[1];
  return suffix !== undefined && allowed.includes(`application/${suffix}`);
}

/**
 * Charsets an agent reads as the application does: ASCII-compatible, every byte below 0x80 the
 * ASCII character (the syntax attacks are made of), so the bytes an agent matches are the
 * characters the application decodes. The list of CRS 920480 (utf-8, iso-8859-1, iso-8859-15,
 * windows-1252) plus us-ascii, with their IANA aliases.
 */
const READABLE_CHARSETS = new Set([
  'utf-8', 'utf8', 'unicode-1-1-utf-8',
  'us-ascii', 'ascii', 'us', 'iso646-us', 'iso-ir-6', 'ansi_x3.4-1968', 'ansi_x3.4-1986', 'cp367', 'ibm367', 'csascii',
  'iso-8859-1', 'iso8859-1', 'iso_8859-1', 'iso_8859-1:1987', 'latin1', 'l1', 'iso-ir-100', 'ibm819', 'cp819', 'csisolatin1',
  'iso-8859-15', 'iso8859-15', 'iso_8859-15', 'latin-9', 'latin9',
  'windows-1252', 'cp1252', 'x-cp1252',
]);

/**
 * Whether a multipart Content-Type gives its boundary as an RFC 2231 parameter (`boundary*=`,
 * continued `boundary*0=` …, any case). Parsers that decode such parameters (werkzeug's
 * parse_options_header, Python's email get_param) split the body on it, while the WAF's parser
 * and the form charset scan read `boundary=`: beside a plain one, the agents read other parts
 * than the application (session 19 audit). No browser or common client writes one.
 */
export function extendedBoundary(contentType: string | undefined): boolean {
  if (!contentType || contentType.indexOf('*') < 0) return false;
  const params = contentType.split(';');
  if (!params[0]!.trim().toLowerCase().startsWith('multipart/')) return false;
  for (let i = 1; i < params.length; i++) {
    const p = params[i]!;
    const eq = p.indexOf('=');
    if (eq >= 0 && parameterName(p, eq).startsWith('boundary*')) return true;
  }
  return false;
}

/**
 * The first `charset` parameter of a Content-Type an agent would not read as the application
 * does (EBCDIC `ibm037`, `utf-7`, `utf-16`, `shift_jis` whose second bytes may be `\` or `'`, …),
 * or undefined when every one is readable or there is none. Every parameter named `charset`
 * (any case, quoted or not, `charset*` too) counts: a parser that takes the last one must not
 * read another text than one that takes the first.
 */
export function unreadableCharset(contentType: string | undefined): string | undefined {
  if (!contentType || !contentType.includes('=')) return undefined;
  for (const value of parameterValues(contentType, 'charset')) {
    const bad = charsetVerdict(value.toLowerCase());
    if (bad !== undefined) return bad;
  }
  return undefined;
}

/**
 * Every value of the parameter `base` in a header with `;`-separated parameters: `base=` (unquoted,
 * trimmed), RFC 2231's `base*=charset'language'%XX` (decoded; spaces after the prefix kept), and
 * the continuation `base*0=`/`base*0*=`, `base*1=`… joined, last (werkzeug's
 * `parse_options_header` and Python's `email` `get_param` join the pieces).
 */
function parameterValues(header: string, base: string): string[] {
  const params = header.split(';');
  const values: string[] = [];
  const pieces: string[] = [];
  for (let i = 1; i < params.length; i++) {
    const p = params[i]!;
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    const name = parameterName(p, eq);
    if (!name.startsWith(base)) continue;
    const value = parameterValue(p, eq);
    if (name.length === base.length) {
      values.push(value.trim());
      continue;
    }
    const ext = /^\*(?:(\d{1,3})(\*)?)?$/.exec(name.slice(base.length));
    if (!ext) continue;
    const index = ext[1] === undefined ? -1 : Number(ext[1]);
    // `*`-encoded: percent escapes, and the first piece starts with charset'language'
    const encoded = ext[1] === undefined || ext[2] !== undefined;
    const text = encoded && index <= 0 ? value.slice(value.indexOf("'", value.indexOf("'") + 1) + 1) : value;
    const decoded = encoded ? percentDecoded(text) : text;
    if (index < 0) values.push(decoded);
    else pieces[index] = decoded;
  }
  if (pieces.length > 0) values.push(pieces.join(''));
  return values;
}

/** A Content-Type parameter's value (the first of that name), unquoted; undefined when absent. */
function parameter(contentType: string, wanted: string): string | undefined {
  const params = contentType.split(';');
  for (let i = 1; i < params.length; i++) {
    const p = params[i]!;
    const eq = p.indexOf('=');
    if (eq >= 0 && parameterName(p, eq) === wanted) return parameterValue(p, eq);
  }
  return undefined;
}

/** The name of the parameter `p` (text between two `;`, its `=` at `eq`), lower case. */
const parameterName = (p: string, eq: number): string => p.slice(0, eq).trim().toLowerCase();

/** The value of the parameter `p`, unquoted (a quoted-string's escapes are left as they are). */
function parameterValue(p: string, eq: number): string {
  const v = p.slice(eq + 1).trim();
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/** A lower-case charset label: undefined when the agents read it as the application does, else its name for the refusal. */
function charsetVerdict(label: string): string | undefined {
  return READABLE_CHARSETS.has(label) ? undefined : label === '' ? '(empty)' : label;
}

/** `%XX` escapes as bytes, read as Latin-1 (the name compared is ASCII, whatever charset the value names). */
function percentDecoded(s: string): string {
  return s.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/**
 * Whether a part's Content-Disposition names the field `_charset_` (any case, as before): by
 * `name=`, or by RFC 2231's `name*=` or continued `name*0=`… (undici's `Request.formData()`
 * prefers `name*` to `name`; Python's `email` package joins continuations).
 */
const namesCharsetField = (disposition: string): boolean =>
  parameterValues(disposition, 'name').some((v) => v.toLowerCase() === '_charset_');

/** A charset named as a field value (the HTML form convention `_charset_`), readable or not. */
function unreadableCharsetName(value: string): string | undefined {
  return charsetVerdict(value.trim().toLowerCase());
}

function decodedOrUndefined(s: string): string | undefined {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * The first charset inside a form body an agent would not read as the application does: a
 * multipart part's own `Content-Type: ...; charset=` (Apache Commons FileUpload's
 * `FileItem.getString()`, servlet containers and others decode the part with it), or a
 * `_charset_` field (the HTML convention some servers use to pick the form's charset), in a
 * multipart or urlencoded body. The request's own Content-Type is `unreadableCharset`'s. Only
 * the part headers are read (lines up to the first empty one after each boundary), so a part's
 * content that looks like headers (an uploaded e-mail) is not mistaken for them.
 */
export function unreadableFormCharset(contentType: string | undefined, body: Buffer): string | undefined {
  if (!contentType) return undefined;
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') {
    // the name may be escaped (`%5Fcharset%5F`): a body without `charset` in either spelling has none
    if (body.indexOf('charset') < 0 && body.indexOf('%') < 0) return undefined;
    for (const pair of body.toString('latin1').split(/[&;]/)) {
      const eq = pair.indexOf('=');
      if (eq < 0) continue;
      if (decodedOrUndefined(pair.slice(0, eq)) !== '_charset_') continue;
      const value = decodedOrUndefined(pair.slice(eq + 1));
      if (value === undefined) return '(undecodable)';
      const bad = unreadableCharsetName(value);
      if (bad !== undefined) return bad;
    }
    return undefined;
  }
  if (!type.startsWith('multipart/')) return undefined;
  for (const part of multipartParts(contentType, body)) {
    let charsetField = false;
    for (const [name, value] of part.headers) {
      if (name === 'content-type') {
        const bad = unreadableCharset(value);
        if (bad !== undefined) return bad;
      } else if (name === 'content-disposition' && namesCharsetField(value)) charsetField = true;
    }
    if (charsetField) {
      const bad = unreadableCharsetName(body.toString('latin1', part.start, part.end));
      if (bad !== undefined) return bad;
    }
  }
  return undefined;
}

interface MultipartPart {
  /** the part's headers (name lower-cased, folded lines joined) */
  headers: [string, string][];
  /** its content: body[start, end) */
  start: number;
  end: number;
}

/**
 * The parts of a multipart body split on the Content-Type's `boundary=`, headers only read (the
 * lines up to the first empty one after each boundary), so a part's content that looks like
 * headers (an uploaded e-mail) is never taken for them. A line that starts with a space or tab
 * continues the header before it (obs-fold: Commons FileUpload and the WAF's parser unfold it).
 * Stops at the close delimiter or where the body ends (a part cut inside its headers is yielded
 * with what was read and no content).
 */
function* multipartParts(contentType: string, body: Buffer): Generator<MultipartPart> {
  const boundary = parameter(contentType, 'boundary');
  if (!boundary) return;
  const delimiter = Buffer.from(`--${boundary}`, 'latin1');
  let at = body.indexOf(delimiter);
  while (at >= 0) {
    let line = at + delimiter.length;
    if (body[line] === 0x2d && body[line + 1] === 0x2d) return; // the close delimiter
    line = body.indexOf(0x0a, line);
    if (line < 0) return;
    line++;
    const headers: [string, string][] = [];
    let header = '';
    const flush = () => {
      const colon = header.indexOf(':');
      if (colon >= 0) headers.push([header.slice(0, colon).trim().toLowerCase(), header.slice(colon + 1)]);
    };
    for (;;) {
      const end = body.indexOf(0x0a, line);
      if (end < 0) {
        flush(); // cut inside the headers: what was read still counts
        yield { headers, start: body.length, end: body.length };
        return;
      }
      const text = body.toString('latin1', line, body[end - 1] === 0x0d ? end - 1 : end);
      line = end + 1;
      if (header !== '' && (text.startsWith(' ') || text.startsWith('\t'))) {
        header += ` ${text.trim()}`;
        continue;
      }
      flush();
      if (text === '') break;
      header = text;
    }
    const next = body.indexOf(delimiter, line);
    let end = next < 0 ? body.length : next;
    if (body[end - 1] === 0x0a) end--;
    if (body[end - 1] === 0x0d) end--;
    yield { headers, start: line, end: Math.max(line, end) };
    at = next;
  }
}

/**
 * A multipart body of another type than `multipart/form-data` (`multipart/related`, `mixed`, …)
 * with a part whose Content-Disposition is `form-data`: Apache Commons FileUpload (Spring's
 * multipart resolver, servlet containers) and Go's `Request.MultipartReader` read such parts as
 * form fields under any `multipart/` type, while the WAF parses only `multipart/form-data` as a
 * form and leaves the others to REQUEST_BODY, which few CRS rules read (session 19 audit). Parts
 * without a form-data disposition (SOAP MTOM's XML and attachments) are not fields to them.
 */
export function formFieldsOutsideFormData(contentType: string | undefined, body: Buffer): boolean {
  if (!contentType) return false;
  const semi = contentType.indexOf(';');
  const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (!type.startsWith('multipart/') || type === 'multipart/form-data') return false;
  for (const part of multipartParts(contentType, body)) {
    for (const [name, value] of part.headers) if (name === 'content-disposition' && /^\s*form-data\s*(?:;|$)/i.test(value)) return true;
  }
  return false;
}

export type DecompressResult =
  | { ok: true; data: Buffer; encodings: string[] }
  | { ok: false; reason: 'ratio_exceeded' | 'size_exceeded' | 'corrupt' | 'unsupported'; encoding: string };

export interface DecompressLimits {
  maxRatio: number;
  maxBytes: number;
}

function decoderFor(encoding: string): (() => Transform) | undefined {
  switch (encoding) {
    case 'gzip':
    case 'x-gzip':
      return createGunzip;
    case 'deflate':
      return createInflate;
    case 'br':
      return createBrotliDecompress;
    default:
      return undefined;
  }
}

/**
 * The `encoding` label of sentinel_decompression_total for `codings`. Content-Encoding comes from
 * the client (or upstream), so unknown codings fold into `other` and stacked ones into `multiple`:
 * the label has a handful of values whatever is sent.
 */
export function encodingLabel(codings: readonly string[]): string {
  if (codings.length > 1) return 'multiple';
  const c = codings[0] ?? '';
  return decoderFor(c) ? c : 'other';
}

/** Parses Content-Encoding into the codings to undo, last applied first. */
export function contentCodings(header: string | string[] | undefined): string[] {
  const joined = Array.isArray(header) ? header.join(',') : (header ?? '');
  return joined
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '' && s !== 'identity')
    .reverse();
}

/**
 * Undoes `codings` (from contentCodings) under the limits. The output of every layer is capped
 * at min(maxBytes, maxRatio x original compressed size); the decoder is destroyed the moment a
 * cap is crossed.
 */
export async function decompressBounded(body: Buffer, codings: string[], limits: DecompressLimits): Promise<DecompressResult> {
  const cap = Math.min(limits.maxBytes, Math.floor(Math.max(1, body.length) * limits.maxRatio));
  let data = body;
  for (const encoding of codings) {
    const make = decoderFor(encoding);
    if (!make) return { ok: false, reason: 'unsupported', encoding };
    let r = await inflateCapped(make(), data, cap);
    // "deflate" is zlib-wrapped per RFC 9110, but raw deflate is common in the wild.
    if (!r.ok && r.reason === 'corrupt' && encoding === 'deflate') r = await inflateCapped(createInflateRaw(), data, cap);
    if (!r.ok) {
      const reason = r.reason === 'corrupt' ? 'corrupt' : cap === limits.maxBytes ? 'size_exceeded' : 'ratio_exceeded';
      return { ok: false, reason, encoding };
    }
    data = r.data;
  }
  return { ok: true, data, encodings: codings };
}

function inflateCapped(decoder: Transform, input: Buffer, cap: number): Promise<{ ok: true; data: Buffer } | { ok: false; reason: 'corrupt' | 'cap' }> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (r: { ok: true; data: Buffer } | { ok: false; reason: 'corrupt' | 'cap' }) => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    decoder.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > cap) {
        settle({ ok: false, reason: 'cap' });
        decoder.destroy();
        return;
      }
      out.push(chunk);
    });
    decoder.once('end', () => settle({ ok: true, data: Buffer.concat(out, size) }));
    decoder.once('error', () => settle({ ok: false, reason: 'corrupt' }));
    decoder.end(input);
  });
}

/**
 * Incremental decoding of one compressed stream (stream-mode response inspection): each pushed
 * chunk yields the bytes decodable so far. Bounded like decompressBounded: the output may not pass
 * min(maxBytes, maxRatio x compressed bytes seen, with a 64 KiB allowance for the first chunks,
 * whose ratio says little); the decoder is destroyed the moment it does.
 */
export class StreamingDecoder {
  private readonly decoder: Transform;
  private out: Buffer[] = [];
  private outBytes = 0;
  private inBytes = 0;
  private totalOut = 0;
  private failure: 'ratio_exceeded' | 'size_exceeded' | 'corrupt' | undefined;

  private constructor(
    make: () => Transform,
    private readonly limits: DecompressLimits,
  ) {
    this.decoder = make();
    this.decoder.on('data', (c: Buffer) => {
      this.totalOut += c.length;
      if (this.totalOut > this.cap()) {
        this.failure ??= this.cap() === this.limits.maxBytes ? 'size_exceeded' : 'ratio_exceeded';
        this.decoder.destroy();
        return;
      }
      this.out.push(c);
      this.outBytes += c.length;
    });
    this.decoder.on('error', () => (this.failure ??= 'corrupt'));
  }

  /** undefined when the codings cannot be decoded incrementally (unknown, or stacked). */
  static for(codings: string[], limits: DecompressLimits): StreamingDecoder | undefined {
    if (codings.length !== 1) return undefined;
    const make = decoderFor(codings[0]!);
    return make ? new StreamingDecoder(make, limits) : undefined;
  }

  private cap(): number {
    return Math.min(this.limits.maxBytes, Math.max(64 * 1024, Math.floor(this.inBytes * this.limits.maxRatio)));
  }

  async push(chunk: Buffer, last: boolean): Promise<{ ok: true; data: Buffer } | { ok: false; reason: 'ratio_exceeded' | 'size_exceeded' | 'corrupt' }> {
    if (!this.failure) {
      this.inBytes += chunk.length;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.decoder.off('close', done);
          resolve();
        };
        this.decoder.once('close', done);
        if (last) {
          this.decoder.once('end', done);
          this.decoder.end(chunk);
        } else {
          this.decoder.write(chunk);
          (this.decoder as Transform & { flush(cb: () => void): void }).flush(done);
        }
      });
    }
    if (this.failure) return { ok: false, reason: this.failure };
    const data = Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    return { ok: true, data };
  }

  destroy(): void {
    this.decoder.destroy();
  }
}
