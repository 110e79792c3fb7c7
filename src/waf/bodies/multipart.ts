// multipart/form-data bodies, with ModSecurity's strictness flags: the
// evasion tricks (odd boundaries, folding, LF-only lines, data outside the
// parts, bad quoting) are parsed as best we can AND reported, so rules can
// refuse them (MULTIPART_STRICT_ERROR).
import type { Pair } from './urlencoded.ts';

export interface MultipartFile {
  name: string;
  filename: string;
  contentType?: string;
  size: number;
  content: string;
}

export interface MultipartResult {
  args: Pair[];
  files: MultipartFile[];
  /** MULTIPART_PART_HEADERS: [part name, raw header line "Name: value"] */
  headers: Pair[];
  /** MULTIPART_* flags and REQBODY_PROCESSOR_ERROR, 0 or 1 */
  flags: Record<string, number>;
  error?: string;
}

export interface MultipartOptions {
  /** SecUploadFileLimit: file parts beyond this are dropped and flagged */
  fileLimit?: number;
}

/** The flags MULTIPART_STRICT_ERROR combines (as ModSecurity's recommended rule 200003 does). */
const STRICT_COMPONENTS = [
  'REQBODY_PROCESSOR_ERROR',
  'MULTIPART_BOUNDARY_QUOTED',
  'MULTIPART_BOUNDARY_WHITESPACE',
  'MULTIPART_DATA_BEFORE',
  'MULTIPART_DATA_AFTER',
  'MULTIPART_HEADER_FOLDING',
  'MULTIPART_LF_LINE',
  'MULTIPART_MISSING_SEMICOLON',
  'MULTIPART_INVALID_QUOTING',
  'MULTIPART_INVALID_PART',
  'MULTIPART_INVALID_HEADER_FOLDING',
  'MULTIPART_FILE_LIMIT_EXCEEDED',
] as const;

const ALL_FLAGS = [...STRICT_COMPONENTS, 'MULTIPART_CRLF_LINE', 'MULTIPART_CRLF_LF_LINES', 'MULTIPART_UNMATCHED_BOUNDARY', 'MULTIPART_STRICT_ERROR'];

const DEFAULT_FILE_LIMIT = 100;

class MultipartError extends Error {}

interface Boundary {
  value: string;
  quoted: boolean;
  whitespace: boolean;
}

/** Finds boundary=... in the Content-Type header; throws MultipartError when absent or unusable. */
export function parseBoundary(contentType: string): Boundary {
  const matches = [...contentType.matchAll(/(?:^|;)\s*boundary(\s*)=(\s*)("(?:[^"\\]|\\.)*"?|[^;]*)/gi)];
  if (matches.length === 0) throw new MultipartError('multipart: no boundary in Content-Type');
  if (matches.length > 1) throw new MultipartError('multipart: more than one boundary in Content-Type');
  const m = matches[0]!;
  // Other readers find the boundary elsewhere (session 30 WAF evasion audit): PHP's rfc1867 takes
  // the first "boundary" anywhere in the header (`xboundary=B; boundary=A` is B to it), Go's
  // mime.ParseMediaType lets RFC 2231's `boundary*=utf-8''B` / `boundary*0=` override
  // `boundary=A`, PHP and Rack end a value at ','. A body can then hold one set of parts for the
  // WAF and another for the application: refused, as ModSecurity refuses them (400).
  const valueAt = m.index! + m[0].length - (m[3] ?? '').length;
  const others = contentType.slice(0, valueAt) + contentType.slice(valueAt + (m[3] ?? '').length);
  if ((others.match(/boundary/gi) ?? []).length > 1) throw new MultipartError('multipart: "boundary" more than once in Content-Type');
  let raw = (m[3] ?? '').replace(/\s+$/, '');
  let whitespace = (m[1] ?? '') !== '' || (m[2] ?? '') !== '';
  let quoted = false;
  if (raw.startsWith('"')) {
    if (raw.length < 2 || !raw.endsWith('"')) throw new MultipartError('multipart: unterminated quoted boundary');
    quoted = true;
    raw = raw.slice(1, -1);
  }
  if (raw === '') throw new MultipartError('multipart: empty boundary');
  if (raw.length > 70) throw new MultipartError('multipart: boundary longer than 70 characters');
  if (/[^\x20-\x7e]/.test(raw)) throw new MultipartError('multipart: invalid character in boundary');
  if (/[,\\"]/.test(raw)) throw new MultipartError('multipart: a boundary other parsers read differently (",", "\\" or a quote)');
  if (/\s/.test(raw)) whitespace = true;
  return { value: raw, quoted, whitespace };
}

interface Line {
  text: string;
  /** '\r\n', '\n' or '' at the end of the body */
  eol: string;
}

function* lines(body: string): Generator<Line> {
  let start = 0;
  while (start < body.length) {
    const lf = body.indexOf('\n', start);
    if (lf < 0) {
      yield { text: body.slice(start), eol: '' };
      return;
    }
    const cr = lf > start && body.charCodeAt(lf - 1) === 0x0d;
    yield { text: body.slice(start, cr ? lf - 1 : lf), eol: cr ? '\r\n' : '\n' };
    start = lf + 1;
  }
}

interface Disposition {
  name?: string;
  /** `filename`, else `filename*` as sent: the name FILES holds */
  filename?: string;
  /** the plain `filename` parameter, when sent */
  plainFilename?: string;
  /** the RFC 5987 `filename*` parameter as sent */
  filenameStar?: string;
  /** spelled as browsers and client libraries write it (PLAIN_PARAMS): every parser reads it alike */
  plainSpelling: boolean;
  /** when not plainly spelled: the other names a common parser files the part under (otherNames) */
  otherNames: string[];
}

/**
 * The parameters of a Content-Disposition as Chrome, Firefox, curl, Go, urllib3, Java and .NET
 * write them: `; name=` and `; filename=` in lower case, `=` without spaces, a quoted value without
 * backslashes or a token without quotes, and `filename*=` as an RFC 5987 ext-value. Parsers part
 * ways on anything else (session 25 audit): PHP's rfc1867 takes a key up to the `=` as it is
 * (`filename ="a.txt"` is no file name to it) and reads a `'` anywhere as opening a quoted run that
 * swallows the `;`s up to the next one (`x'=1; filename="a.txt"; y'=2`); Rack matches `filename`
 * case-sensitively; ModSecurity refuses all three (REQBODY_ERROR).
 */
const PLAIN_PARAMS = /^(?:;[ \t]*(?:(?:name|filename)=(?:"[^"\\\r\n]*"|[!#$%&*+.^_`|~0-9A-Za-z-]+)|filename\*=[!#$&+.^_`{}~0-9A-Za-z-]*'[0-9A-Za-z-]*'[!#$%&+.^_`|~0-9A-Za-z-]*))*;?$/;

/**
 * Content-Disposition: form-data; name="a"; filename="b". Sets flags for
 * missing semicolons and bad quoting; throws on what cannot be understood.
 */
export function parseDisposition(value: string, flags: Record<string, number>): Disposition {
  const v = value.trim();
  if (!/^form-data\b/i.test(v)) throw new MultipartError('multipart: Content-Disposition is not form-data');
  let i = 'form-data'.length;
  const plainSpelling = PLAIN_PARAMS.test(v.slice(i));
  const out: Disposition = { plainSpelling, otherNames: [] };
  while (i < v.length) {
    const sep = /^\s*(;?)\s*/.exec(v.slice(i))!;
    if (sep[1] === '' && sep[0] !== '' && i < v.length) flags.MULTIPART_MISSING_SEMICOLON = 1;
    i += sep[0].length;
    if (i >= v.length) break;
    const nameMatch = /^([^\s=;]+)\s*=\s*/.exec(v.slice(i));
    if (!nameMatch) throw new MultipartError(`multipart: invalid Content-Disposition parameter at "${v.slice(i, i + 20)}"`);
    const param = (nameMatch[1] ?? '').toLowerCase();
    i += nameMatch[0].length;
    let paramValue = '';
    if (v[i] === '"') {
      i++;
      let closed = false;
      while (i < v.length) {
        const ch = v[i]!;
        if (ch === '\\' && i + 1 < v.length) {
          // ModSecurity unescapes \" and \\ only; other backslashes stay (Windows paths).
          const next = v[i + 1]!;
          if (next === '"' || next === '\\') {
            paramValue += next;
            i += 2;
            continue;
          }
        }
        if (ch === '"') {
          closed = true;
          i++;
          break;
        }
        paramValue += ch;
        i++;
      }
      if (!closed) flags.MULTIPART_INVALID_QUOTING = 1;
    } else {
      const m = /^[^;]*/.exec(v.slice(i))!;
      paramValue = m[0].replace(/\s+$/, '');
      i += m[0].length;
      if (paramValue.startsWith("'") || paramValue.includes('"')) flags.MULTIPART_INVALID_QUOTING = 1;
    }
    const key = param === 'name' ? 'name' : param === 'filename' ? 'plainFilename' : param === 'filename*' ? 'filenameStar' : undefined;
    if (key === undefined) continue;
    if (out[key] !== undefined) throw new MultipartError(`multipart: duplicate Content-Disposition ${param}`);
    out[key] = paramValue;
  }
  // FILES holds `filename`, else the RFC 5987 ext-value (charset''percent-encoded) as sent.
  const filename = out.plainFilename ?? out.filenameStar;
  if (filename !== undefined) out.filename = filename;
  if (!plainSpelling) out.otherNames = otherNames(v).filter((n) => n !== out.name);
  return out;
}

/**
 * The names other parsers give a part whose Content-Disposition is not plainly spelled (session 26
 * audit): the CRS reads the value whatever its name, but a rule exclusion by argument name
 * (`!ARGS:comment`, `ctl:ruleRemoveTargetById=...;ARGS:comment`) skips it under the WAF's name while
 * the application files it under another, and ARGS_NAMES must hold the name the application reads.
 * - PHP's rfc1867: pairs split on `;` outside '...' and "..." runs, the key as sent (no trim),
 *   compared without case; the last `name` wins; the value unquoted (`'q'` is q) or up to a space.
 * - Rack 2.2: the last `;\s*name=` anywhere in the header, even inside another parameter's quotes
 *   (`name="a"; x="; name=q"` is q), backslash escapes dropped.
 * - werkzeug (Flask) and Go's mime: RFC 2231 `name*=utf-8''q` over `name` (werkzeug: the last
 *   one wins), `name*0=`/`name*1=` continuations appended (werkzeug also to a plain `name`).
 */
function otherNames(v: string): string[] {
  const names = new Set<string>();
  const php = phpName(v);
  if (php !== undefined) names.add(php);
  for (const m of v.matchAll(/;\s*name=("(?:\\"|[^"])*"|[^\s()<>,;:\\"/[\]?=]+)/gi)) {
    const raw = m[1]!;
    names.add((raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"') ? raw.slice(1, -1) : raw).replace(/\\(.)/g, '$1'));
  }
  for (const n of rfc2231Names(v)) names.add(n);
  return [...names];
}

const isCSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\v' || c === '\f';

/** PHP's php_ap_getword: from `from` up to `stop` outside '...' and "..." runs (a backslash escapes the run's quote); the word and where the next one starts. */
function phpWord(s: string, from: number, stop: string): [string, number] {
  let i = from;
  while (i < s.length && s[i] !== stop) {
    const q = s[i];
    if (q === '"' || q === "'") {
      i++;
      while (i < s.length && s[i] !== q) i += s[i] === '\\' && s[i + 1] === q ? 2 : 1;
      if (i < s.length) i++;
    } else {
      i++;
    }
  }
  const word = s.slice(from, i);
  while (s[i] === stop) i++;
  return [word, i];
}

/** The part's name as PHP's rfc1867 reads a Content-Disposition value (php_ap_getword, php_ap_getword_conf). */
function phpName(v: string): string | undefined {
  let name: string | undefined;
  let i = 0;
  while (isCSpace(v[i])) i++;
  while (i < v.length) {
    const [pair, next] = phpWord(v, i, ';');
    i = next;
    while (isCSpace(v[i])) i++;
    if (!pair.includes('=')) continue;
    const [key, at] = phpWord(pair, 0, '=');
    if (key.toLowerCase() !== 'name') continue;
    let j = at;
    while (isCSpace(pair[j])) j++;
    const quote = pair[j] === '"' || pair[j] === "'" ? pair[j]! : '';
    if (quote) j++;
    let value = '';
    for (; j < pair.length; j++) {
      const c = pair[j]!;
      if (quote ? c === quote : isCSpace(c)) break;
      if (c === '\\' && (pair[j + 1] === '\\' || (quote !== '' && pair[j + 1] === quote))) value += pair[++j];
      else value += c;
    }
    name = value;
  }
  return name;
}

/** Percent escapes decoded to bytes (one character each, as the body's text holds them). */
const percentBytes = (s: string): string => s.replace(/%([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));

/** werkzeug's token characters (`'` among them). */
const WZ_TOKEN = "[\\w!#$%&'*+\\-.^`|~]+";

/**
 * RFC 2231 readings of `name`: werkzeug's parse_options_header (3.x: `key=` then a token or a
 * quoted string, skipping to the next `;`; `name*` percent-decoded, continuations appended, the last
 * wins) and Go's mime.ParseMediaType (`name*` over `name`).
 */
function rfc2231Names(v: string): string[] {
  const semi = v.indexOf(';');
  if (semi < 0) return [];
  let rest = v.slice(semi + 1).trim();
  const parts: [string, string][] = [];
  for (;;) {
    const k = new RegExp(`^(${WZ_TOKEN})=`).exec(rest);
    if (k) {
      const key = k[1]!.toLowerCase();
      rest = rest.slice(k[0].length);
      const token = new RegExp(`^${WZ_TOKEN}`).exec(rest);
      if (token) {
        parts.push([key, token[0]]);
      } else if (rest[0] === '"') {
        for (let pos = 1; pos < rest.length; ) {
          const two = rest.slice(pos, pos + 2);
          if (two === '\\\\' || two === '\\"') {
            pos += 2;
          } else if (rest[pos] === '"') {
            parts.push([key, rest.slice(0, pos + 1)]);
            rest = rest.slice(pos + 1);
            break;
          } else {
            pos++;
          }
        }
      }
    }
    const end = rest.indexOf(';');
    if (end < 0) break;
    rest = rest.slice(end + 1).replace(/^\s+/, '');
  }
  let werkzeug: string | undefined;
  let star: string | undefined;
  for (const [key, raw] of parts) {
    if (!key.startsWith('name')) continue;
    let k = key;
    let value = raw;
    if (k.endsWith('*')) {
      k = k.slice(0, -1);
      const ext = /^[\w!#$%&*+\-.^`|~]*'[\w!#$%&*+\-.^`|~]*'([\w!#$%&'*+\-.^`|~]+)/.exec(value);
      if (ext) value = ext[1]!;
      value = percentBytes(value);
    }
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\\\/g, '\\').replace(/\\"/g, '"').replace(/%22/g, '"');
    if (/^name\*\d+$/.test(k)) werkzeug = (werkzeug ?? '') + value;
    else if (k === 'name') werkzeug = value;
    if (key === 'name*') star = value;
  }
  return [werkzeug, star].filter((n): n is string => n !== undefined);
}

/** Rack 3.1 reads a Content-Disposition up to this many bytes, and up to this many parameters. */
const RACK_DISPOSITION_BYTES = 1536;
const RACK_MAX_PARAMS = 16;

/**
 * The part as Rack 3.1's rewritten parser reads it (session 27 audit), when that may differ from the
 * WAF's reading: a Content-Disposition over 1536 bytes is ignored (the part is named by its
 * Content-ID header, else `<Content-Type>[]`, and is never a file, whatever its `filename`), and
 * parameters past the sixteenth are not read; `name` is matched exactly (`NAME=` is no name), and a
 * part without a name is named by its file name, else `<Content-Type>[]`. Undefined for a file
 * (Rack keeps a file's content out of the form, as the WAF does) or a dropped part (`filename=""`).
 */
export function rackPart(disposition: string, contentId: string | undefined, contentType: string | undefined): { name: string } | undefined {
  let name: string | undefined;
  let filename: string | undefined;
  if (disposition.length > RACK_DISPOSITION_BYTES) name = contentId;
  else {
    let filenameStar: string | undefined;
    const semi = disposition.indexOf(';');
    let rest = semi < 0 ? '' : disposition.slice(semi + 1);
    let count = 0;
    for (let eq = rest.indexOf('='); eq >= 0 && ++count <= RACK_MAX_PARAMS; eq = rest.indexOf('=')) {
      const param = rest.slice(0, eq).replace(/^\s+/, '');
      rest = rest.slice(eq + 1);
      let value = '';
      if (rest[0] === '"') {
        // a quoted value: backslash escapes dropped (a `filename` keeps `\` before anything but `"`)
        let i = 1;
        for (; i < rest.length && rest[i] !== '"'; i++) {
          if (rest[i] === '\\' && i + 1 < rest.length) {
            if (param === 'filename' && rest[i + 1] !== '"') value += '\\';
            i++;
          }
          value += rest[i];
        }
        rest = rest.slice(i + 1);
      } else {
        const end = rest.indexOf(';');
        value = end < 0 ? rest.trim() : rest.slice(0, end);
        rest = end < 0 ? '' : rest.slice(end);
      }
      if (param === 'name') name = value;
      else if (param === 'filename') filename = value;
      else if (param === 'filename*') filenameStar = value;
      const next = rest.indexOf(';');
      if (next >= 0) rest = rest.slice(next + 1);
    }
    if (filenameStar !== undefined) filename = filenameStar.split("'").slice(2).join("'");
  }
  if (filename !== undefined) return undefined;
  if (name === undefined || name === '') name = `${contentType ?? 'text/plain'}[]`;
  return { name };
}

interface PartState {
  headerLines: string[];
  content: string[];
  /** line break after the last content line, emitted only if more content follows */
  pendingEol?: string;
  inHeaders: boolean;
}

export function parseMultipart(body: string, contentTypeHeader: string, opts: MultipartOptions = {}): MultipartResult {
  const result: MultipartResult = { args: [], files: [], headers: [], flags: {} };
  const flags = result.flags;
  for (const f of ALL_FLAGS) flags[f] = 0;
  const fileLimit = opts.fileLimit ?? DEFAULT_FILE_LIMIT;
  try {
    const boundary = parseBoundary(contentTypeHeader);
    if (boundary.quoted) flags.MULTIPART_BOUNDARY_QUOTED = 1;
    if (boundary.whitespace) flags.MULTIPART_BOUNDARY_WHITESPACE = 1;
    parseParts(body, boundary.value, result, fileLimit);
  } catch (e) {
    if (!(e instanceof MultipartError)) throw e;
    result.error = e.message;
    flags.REQBODY_PROCESSOR_ERROR = 1;
  }
  flags.MULTIPART_STRICT_ERROR = STRICT_COMPONENTS.some((f) => flags[f] === 1) ? 1 : 0;
  return result;
}

function parseParts(body: string, boundary: string, result: MultipartResult, fileLimit: number): void {
  const flags = result.flags;
  const delimiter = `--${boundary}`;
  let part: PartState | null = null;
  let seenFirst = false;
  let finished = false;
  let sawCrlf = false;
  let sawLf = false;
  let before = '';
  let after = '';
  let fileCount = 0;

  const finishPart = (p: PartState): void => {
    if (p.inHeaders) {
      flags.MULTIPART_INVALID_PART = 1;
      throw new MultipartError('multipart: part ended inside its headers');
    }
    const headers = unfoldHeaders(p.headerLines, flags);
    let disposition: Disposition | undefined;
    let rawDisposition = '';
    let contentType: string | undefined;
    let contentId: string | undefined;
    // Every value: Go's mime/multipart decodes by the first Content-Transfer-Encoding header
    // (Header.Get), other readers by the last (session 29 WAF evasion audit).
    const transferEncoding: string[] = [];
    for (const h of headers) {
      if (h.name === 'content-disposition') {
        if (disposition) throw new MultipartError('multipart: duplicate Content-Disposition header');
        disposition = parseDisposition(h.value, flags);
        rawDisposition = h.raw.slice(h.raw.indexOf(':') + 1).replace(/^[ \t]+/, '');
      } else if (h.name === 'content-type') {
        contentType = h.value;
      } else if (h.name === 'content-transfer-encoding') {
        transferEncoding.push(h.value.trim().toLowerCase());
      } else if (h.name === 'content-id' && contentId === undefined) {
        contentId = h.value;
      }
    }
    if (!disposition) throw new MultipartError('multipart: part without Content-Disposition');
    if (disposition.name === undefined) throw new MultipartError('multipart: part without a name');
    const name = disposition.name;
    for (const h of headers) result.headers.push([name, h.raw]);
    // The line break before the next delimiter belongs to the delimiter.
    const content = p.content.join('');
    if (disposition.filename !== undefined) {
      fileCount++;
      if (fileCount > fileLimit) {
        flags.MULTIPART_FILE_LIMIT_EXCEEDED = 1;
        return;
      }
      const file: MultipartFile = { name, filename: disposition.filename, size: content.length, content };
      if (contentType !== undefined) file.contentType = contentType;
      result.files.push(file);
      // A part with a file name no parser keeps is a form field to some (session 23 audit).
      if (isFieldToSomeParser(disposition)) {
        addField(name, content, transferEncoding);
        for (const other of disposition.otherNames) addField(other, content, transferEncoding);
      }
    } else {
      addField(name, content, transferEncoding);
      for (const other of disposition.otherNames) addField(other, content, transferEncoding);
    }
    // Rack 3.1 parts ways only on a long or oddly spelled Content-Disposition: a file here may be
    // a field there (`filename="<1,600 bytes>"` with `Content-ID: q` is the field q to a Rails
    // application), under another name. The CRS then reads it as that field.
    if (!disposition.plainSpelling || rawDisposition.length > RACK_DISPOSITION_BYTES) {
      const rack = rackPart(rawDisposition, contentId, contentType);
      const asField = disposition.filename === undefined || isFieldToSomeParser(disposition);
      if (rack !== undefined && (!asField || (rack.name !== name && !disposition.otherNames.includes(rack.name)))) {
        addField(rack.name, content, transferEncoding);
      }
    }
  };
  const addField = (name: string, content: string, transferEncoding: readonly string[]): void => {
    result.args.push([name, content]);
    // Go's mime/multipart decodes a quoted-printable part for the application, other parsers
    // base64: the decoded value is an ARG too, so an attack is not hidden by the coding (session
    // 16 audit; ModSecurity inspects the coded text only, and CRS 922120 refuses the header).
    for (const [i, encoding] of transferEncoding.entries()) {
      if (transferEncoding.indexOf(encoding) !== i) continue;
      const decoded = decodeTransfer(content, encoding);
      if (decoded !== undefined && decoded !== content) result.args.push([name, decoded]);
    }
  };

  // Line ends count where ModSecurity looks: delimiter lines, the line end before a delimiter
  // (which belongs to it), part headers and the blank line after them. A part's content is data:
  // a text file with LF line ends is not an evasion (it was a 400 until session 25).
  const eolSeen = (eol: string): void => {
    if (eol === '\r\n') sawCrlf = true;
    else if (eol === '\n') sawLf = true;
  };
  let prevEol = '';
  // Flags describe everything read, even when a malformed part stops the parse.
  try {
    for (const line of lines(body)) {
      const eolBefore = prevEol;
      prevEol = line.eol;
      if (finished) {
        after += line.text + line.eol;
        continue;
      }
      if (line.text.startsWith(delimiter)) {
        const rest = line.text.slice(delimiter.length);
        const isFinal = rest.startsWith('--');
        const tail = isFinal ? rest.slice(2) : rest;
        if (/^[ \t]*$/.test(tail)) {
          eolSeen(eolBefore);
          eolSeen(line.eol);
          if (part) finishPart(part);
          seenFirst = true;
          part = null;
          if (isFinal) {
            finished = true;
          } else {
            part = { headerLines: [], content: [], inHeaders: true };
          }
          continue;
        }
        // Looks like our boundary but is not: a classic evasion attempt.
        flags.MULTIPART_UNMATCHED_BOUNDARY = 1;
      }
      if (!seenFirst) {
        before += line.text + line.eol;
        continue;
      }
      if (!part) continue;
      if (part.inHeaders) {
        eolSeen(line.eol);
        if (line.text === '') {
          part.inHeaders = false;
        } else {
          part.headerLines.push(line.text);
        }
        continue;
      }
      // Content: the line break is kept unless the next line turns out to be a delimiter.
      if (part.content.length > 0) part.content.push(part.pendingEol ?? '');
      part.content.push(line.text);
      part.pendingEol = line.eol;
    }
  } finally {
    if (sawLf) flags.MULTIPART_LF_LINE = 1;
    if (sawCrlf) flags.MULTIPART_CRLF_LINE = 1;
    if (sawLf && sawCrlf) flags.MULTIPART_CRLF_LF_LINES = 1;
    if (before.trim() !== '') flags.MULTIPART_DATA_BEFORE = 1;
    if (after.replace(/[\r\n]/g, '') !== '') flags.MULTIPART_DATA_AFTER = 1;
  }
  if (!seenFirst) throw new MultipartError('multipart: no boundary found in the body');
  if (!finished) {
    if (part && !part.inHeaders) finishPart(part);
    throw new MultipartError('multipart: final boundary missing');
  }
}

/**
 * Whether a part that carries a file name is a form field to a common parser: busboy (multer,
 * @fastify/multipart) takes a part as a file only when `filename*` or `filename` is non-empty;
 * Go's mime/multipart (`Request.ParseMultipartForm`) when its file name is non-empty, reading
 * `filename*` over `filename` only when it decodes (utf-8 or us-ascii, `charset'lang'value`).
 * ModSecurity files such a part and the CRS never reads its content, so `filename=""` hid an
 * attack in a field from the WAF (session 23 audit): its content is an ARG as well.
 */
export function isFieldToSomeParser(d: { plainFilename?: string; filenameStar?: string; plainSpelling: boolean }): boolean {
  // PHP's rfc1867 and Python's cgi.FieldStorage read `filename` only: `filename*` alone is a field
  // to them; and a spelling parsers read apart is a field to one of them (PLAIN_PARAMS).
  if (d.plainFilename === undefined || !d.plainSpelling) return true;
  const plain = d.plainFilename;
  const star = d.filenameStar;
  if (plain === '' && (star ?? '') === '') return true; // busboy
  const goName = star === undefined ? plain : (decodeExtValue(star) ?? plain);
  return goName === '';
}

/** An RFC 5987 ext-value as Go's mime package decodes it (us-ascii, utf-8); undefined when it does not. */
function decodeExtValue(v: string): string | undefined {
  const q1 = v.indexOf("'");
  const q2 = q1 < 0 ? -1 : v.indexOf("'", q1 + 1);
  if (q2 < 0) return undefined;
  const charset = v.slice(0, q1).toLowerCase();
  if (charset !== 'utf-8' && charset !== 'us-ascii') return undefined;
  const value = v.slice(q2 + 1);
  if (/%(?![0-9A-Fa-f]{2})/.test(value)) return undefined;
  return value.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

interface Header {
  /** lower-case name */
  name: string;
  value: string;
  /** the unfolded line as sent */
  raw: string;
}

function unfoldHeaders(rawLines: readonly string[], flags: Record<string, number>): Header[] {
  const unfolded: string[] = [];
  for (const line of rawLines) {
    if (line.startsWith(' ') || line.startsWith('\t')) {
      flags.MULTIPART_HEADER_FOLDING = 1;
      if (unfolded.length === 0) {
        flags.MULTIPART_INVALID_HEADER_FOLDING = 1;
        throw new MultipartError('multipart: folded header line without a header before it');
      }
      unfolded[unfolded.length - 1] += ` ${line.trim()}`;
      continue;
    }
    unfolded.push(line);
  }
  return unfolded.map((raw) => {
    const colon = raw.indexOf(':');
    if (colon <= 0) {
      flags.MULTIPART_INVALID_PART = 1;
      throw new MultipartError(`multipart: invalid part header "${raw.slice(0, 40)}"`);
    }
    return { name: raw.slice(0, colon).trim().toLowerCase(), value: raw.slice(colon + 1).trim(), raw };
  });
}

/** A part's value under its Content-Transfer-Encoding (base64, quoted-printable); undefined for others. */
export function decodeTransfer(content: string, encoding: string | undefined): string | undefined {
  if (encoding === 'base64') return Buffer.from(content.replace(/[^A-Za-z0-9+/=_-]/g, ''), 'base64').toString('latin1');
  if (encoding === 'quoted-printable') {
    return content.replace(/=(?:\r?\n|([0-9A-Fa-f]{2}))/g, (_, hex: string | undefined) => (hex === undefined ? '' : String.fromCharCode(Number.parseInt(hex, 16))));
  }
  return undefined;
}
