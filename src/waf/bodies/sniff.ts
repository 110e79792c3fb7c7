// Bodies no processor was chosen for (no Content-Type, `text/plain`, `application/octet-stream`,
// ...), read as the applications that ignore the type read them. ModSecurity and Coraza leave such
// a body to REQUEST_BODY, which few CRS rules read, so an attack in it passed wherever the CRS
// content-type policy (920420, 920340) had been relaxed.
import { parseJson } from './json.ts';
import { formPairs, type Pair } from './urlencoded.ts';
import { parseXml, type XmlResult } from './xml.ts';

export interface Sniffed {
  /** ARGS_POST: a JSON document's values (named as the JSON processor names them), a form's pairs */
  args: Pair[];
  /** XML:/* and XML://@* of a well-formed XML document */
  xml?: XmlResult;
}

/**
 * - a JSON document (first character `{` or `[` after a UTF-8 BOM and whitespace): Go's
 *   json.Decoder, Flask's get_json(force=True), permissive Express parsers (session 16 audit); a
 *   JSON Lines body line by line, each line that parses alone (session 23 WAF evasion audit);
 *   a document only lenient parsers read (Python's `NaN`, Gson's comments and single quotes) as
 *   they read it (session 26 WAF evasion audit);
 * - a well-formed XML document (first character `<`): PHP's simplexml_load_string and lxml over
 *   the raw body ignore the type (session 24 WAF evasion audit);
 * - otherwise, without a Content-Type or as `text/plain`, a body with an `=` is also a form, its
 *   pairs that hold no control byte but tab and line ends: Bottle's `request.forms` reads every
 *   body that is not multipart as one, and Python's cgi.FieldStorage a POST without a type
 *   (session 24 WAF evasion audit). Other types (`application/octet-stream`, ...) are not: file
 *   uploads carry them, and a text file's code would be read as arguments.
 * - a JSON document in UTF-16 or UTF-32, with or without a byte order mark, as Python's
 *   `json.loads` reads bytes (Flask's get_json(force=True)): session 29 WAF evasion audit.
 * Nothing is an error: the body never said it was any of these.
 */
export function sniffBody(body: string, separator: string, contentType: string): Sniffed {
  // GraphQL over HTTP as `application/graphql`: the body is the query document (graphql-go's
  // handler, gqlgen's GRAPHQL transport, express-graphql: `{ query: rawBody }`), which the JSON
  // transport carries as `json.query` and the CRS reads there; here it was REQUEST_BODY only, and
  // an attack in a string argument passed wherever 920420 allows the type (session 31 WAF evasion
  // audit). One ARG `query`: the document as the JSON transport's value, no more.
  if (isGraphql(contentType)) return { args: [['query', body]] };
  const doc = sniffDocument(body);
  if (doc.whole) return doc.xml ? { args: doc.args, xml: doc.xml } : { args: doc.args };
  const args = doc.args;
  if (body.indexOf('=') >= 0 && formLike(contentType)) {
    // CGI.pm reads a POST without a type as a form, ';' a separator too
    for (const pair of formPairs(body, separator)) if (isText(pair[0]) && isText(pair[1])) args.push(pair);
  }
  return { args };
}

/**
 * The body read as the JSON or XML document it may be, whatever its type says (sniffBody's
 * readings but the form's): `whole` when it is one document (JSON strict or lenient, UTF-16/32
 * JSON, XML), else the values of its JSON Lines that parse alone. Also used for a body typed as a
 * form (session 31 WAF evasion audit): Go's `json.NewDecoder(r.Body)`, PHP's
 * `json_decode(file_get_contents('php://input'))`, Flask's `get_json(force=True)` and XML readers
 * of the raw body ignore the type, while a form reader cuts `{"q":"1' OR '1'='1"}` at its `=`
 * and `&` into pieces the CRS passes.
 */
export function sniffDocument(body: string): Sniffed & { whole: boolean } {
  const wide = wideJsonText(body);
  if (wide !== undefined) {
    const r = parseJson(wide, { lenient: true });
    if (r.error === undefined) return { args: r.args, whole: true };
  }
  let i = body.startsWith('\xef\xbb\xbf') ? 3 : 0;
  while (i < body.length && (body[i] === ' ' || body[i] === '\t' || body[i] === '\r' || body[i] === '\n')) i++;
  const first = body[i];
  const args: Pair[] = [];
  if (first === '/' || first === '#') {
    // a lenient document may open with a comment
    const lenient = parseJson(body, { lenient: true });
    if (lenient.error === undefined && lenient.args.length > 0) return { args: lenient.args, whole: true };
  } else if (first === '{' || first === '[') {
    const r = parseJson(body);
    if (r.error === undefined) return { args: r.args, whole: true };
    // Python's json (NaN), Gson's lenient reader (comments, single quotes): session 26 audit
    const lenient = parseJson(body, { lenient: true });
    if (lenient.error === undefined) return { args: lenient.args, whole: true };
    jsonLines(body, args);
  } else if (first === '<') {
    const xml = parseXml(body);
    if (xml.error === undefined) return { args, xml, whole: true };
  }
  return { args, whole: false };
}

/**
 * The body as UTF-8 (one character a byte) when Python's `json.detect_encoding` takes it for UTF-16
 * or UTF-32 (a byte order mark, or NUL among its first four bytes), undefined otherwise or when it
 * does not decode. Flask reads such a JSON body whatever its type, while to the WAF it was bytes
 * with NULs: REQUEST_BODY only.
 */
export function wideJsonText(body: string): string | undefined {
  if (body.length < 2) return undefined;
  let unit: 2 | 4;
  let le: boolean;
  let skip = 0;
  if (body.startsWith('\xff\xfe\x00\x00') || body.startsWith('\x00\x00\xfe\xff')) [unit, le, skip] = [4, body[0] === '\xff', 4];
  else if (body.startsWith('\xff\xfe') || body.startsWith('\xfe\xff')) [unit, le, skip] = [2, body[0] === '\xff', 2];
  else if (body[0] === '\x00') [unit, le] = [body.length >= 4 && body[1] === '\x00' ? 4 : 2, false];
  else if (body[1] === '\x00') [unit, le] = [body.length >= 4 && body[2] === '\x00' && body[3] === '\x00' ? 4 : 2, true];
  else return undefined;
  const bytes = Buffer.from(body.slice(skip), 'latin1');
  if (bytes.length % unit !== 0) return undefined;
  if (unit === 2) {
    if (!le) bytes.swap16();
    return Buffer.from(bytes.toString('utf16le'), 'utf8').toString('latin1');
  }
  let text = '';
  for (let i = 0; i < bytes.length; i += 4) {
    const cp = le ? bytes.readUInt32LE(i) : bytes.readUInt32BE(i);
    if (cp > 0x10ffff) return undefined;
    text += String.fromCodePoint(cp);
  }
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** `application/graphql`, with parameters or none. */
function isGraphql(contentType: string): boolean {
  const t = contentType.trim().toLowerCase();
  if (!t.startsWith('application/graphql')) return false;
  const next = t.charCodeAt('application/graphql'.length);
  return Number.isNaN(next) || next === 0x3b || next === 0x20 || next === 0x09;
}

/** No Content-Type, or `text/plain` (also what a browser form with enctype="text/plain" sends). */
function formLike(contentType: string): boolean {
  const t = contentType.trim().toLowerCase();
  return t === '' || t.startsWith('text/plain');
}

/** JSON Lines / NDJSON: each line that parses alone (linear in the body: each line once). */
function jsonLines(body: string, args: Pair[]): void {
  for (let start = 0; start < body.length; ) {
    let end = body.indexOf('\n', start);
    if (end < 0) end = body.length;
    const line = body.slice(start, end).trim();
    start = end + 1;
    if (line[0] !== '{' && line[0] !== '[') continue;
    const doc = parseJson(line);
    if (doc.error === undefined) for (const pair of doc.args) args.push(pair);
  }
}

/** No control bytes but tab, LF and CR (binary data has them). */
function isText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return false;
  }
  return true;
}
