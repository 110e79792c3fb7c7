// Decoders of the extra rule sets (issue #16): what the CRS does not look inside. Inputs and
// outputs are latin1 "binary" strings (char code = byte), as everywhere in the engine.
import { urlDecode } from '../transformations/decode.ts';

/** Runs of the base64 / base64url alphabet long enough to carry a payload (>= 9 bytes). */
const BASE64_RUN = /[A-Za-z0-9+/_-]{12,}={0,2}/g;
const MIN_DECODED = 6;
/** Share of printable bytes a decoded run needs to count as text (random bytes score ~37%). */
const PRINTABLE_SHARE = 0.9;

/**
 * Share of a decoded run's bytes that are text: printable ASCII and whitespace, and the bytes of
 * well-formed UTF-8 sequences of non-control characters (a payload padded with accented words or
 * emoji is text to the application; random bytes seldom form such sequences).
 */
function printableShare(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 0x20 && c < 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d) n++;
    else if (c >= 0xc2 && c <= 0xf4) {
      const len = utf8SequenceAt(s, i, c);
      if (len > 0) {
        n += len;
        i += len - 1;
      }
    }
  }
  return s.length === 0 ? 0 : n / s.length;
}

/** Length of the well-formed UTF-8 sequence of a character from U+00A0 up led by `lead` at `i`; 0 if none. */
function utf8SequenceAt(s: string, i: number, lead: number): number {
  const len = lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
  if (i + len > s.length) return 0;
  for (let k = 1; k < len; k++) if ((s.charCodeAt(i + k) & 0xc0) !== 0x80) return 0;
  // C1 controls (U+0080-U+009F) are not text; overlong 3/4-byte forms are not well-formed
  const second = s.charCodeAt(i + 1);
  if (lead === 0xc2 && second < 0xa0) return 0;
  if ((lead === 0xe0 && second < 0xa0) || (lead === 0xf0 && second < 0x90) || (lead === 0xf4 && second > 0x8f)) return 0;
  return len;
}

/** Decodes base64 or base64url, padded or not; undefined when the length cannot be base64. */
export function decodeBase64Any(run: string): string | undefined {
  let s = run.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
  if (s.length % 4 === 1) s = s.slice(0, -1); // one dangling char carries no whole byte
  if (s.length < 2) return undefined;
  return Buffer.from(s, 'base64').toString('latin1');
}

/** How many decodings deep a text is read (an application that decodes a value twice, session 27). */
const MAX_LAYERS = 3;

/**
 * The text of decoded bytes that are UTF-16LE (.NET's `Encoding.Unicode`, PowerShell's
 * `-EncodedCommand`): an even length with a NUL in at least 90% of the odd bytes (ASCII text), as
 * UTF-8 bytes; else undefined. Random bytes have a NUL in 1 of 256.
 */
function utf16leText(s: string): string | undefined {
  if (s.length < 2 * MIN_DECODED) return undefined;
  const n = s.length & ~1;
  let nul = 0;
  for (let i = 1; i < n; i += 2) if (s.charCodeAt(i) === 0) nul++;
  if (nul < 0.9 * (n / 2)) return undefined;
  return Buffer.from(Buffer.from(s.slice(0, n), 'latin1').toString('utf16le'), 'utf8').toString('latin1');
}

/**
 * Adds a decoded run when it is text (a JSON text as its string leaves); false when it is not.
 * UTF-16LE bytes are read as their text; a text that is itself base64 is read once more, up to
 * MAX_LAYERS decodings (neither the CRS nor ModSecurity decodes any layer).
 */
function addText(out: string[], decoded: string | undefined, layer = 1): boolean {
  if (decoded === undefined || decoded.length < MIN_DECODED) return false;
  if (printableShare(decoded) < PRINTABLE_SHARE) {
    const wide = utf16leText(decoded);
    if (wide === undefined || printableShare(wide) < PRINTABLE_SHARE) return false;
    decoded = wide;
  }
  const leaves = jsonLeaves(decoded);
  if (leaves.length) for (const leaf of leaves) out.push(leaf);
  else out.push(decoded);
  if (layer < MAX_LAYERS && decoded.length >= 12) readBase64(decoded, out, layer + 1);
  return true;
}

/** Characters outside the base64 / base64url alphabet and padding, which decoders skip. */
const NOT_BASE64 = /[^A-Za-z0-9+/_=-]+/g;
/** A JWT (or JWS): three base64url segments, two dots. Its readers decode segment by segment. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/**
 * The base64 / base64url (padded or not) runs of a value that decode to mostly printable text
 * (>= 90% printable ASCII or well-formed UTF-8, >= 6 bytes): hashes, UUIDs, random ids and binary
 * data (images) decode to bytes that are not text and are dropped. A decoded text that is itself
 * JSON (a JWT payload, say) yields its string leaves instead, so JSON punctuation is not read as SQL.
 *
 * Node's `Buffer.from(s, 'base64')` and Python's `b64decode` skip every character outside the
 * alphabet, so `MScg.T1Ig!JzEn...` or a payload cut into lines is one text to the application and
 * runs too short or too misaligned to read to a run-by-run decoder (session 24 WAF evasion audit):
 * a value whose runs are separated by such characters is also read with them dropped, up to the
 * first padding `=` (where both decoders stop), at each of the four alignments (a prefix the
 * application strips, `Bearer `, shifts it). A JWT's dots are not skipped: its readers split on
 * them. A value with percent escapes (a cookie or header the application URL-decodes first) is
 * read decoded as well.
 */
export function base64Texts(value: string): string[] {
  if (value.length < 12) return [];
  const out: string[] = [];
  readBase64(value, out);
  if (value.indexOf('%') >= 0) {
    const decoded = urlDecode(value);
    if (decoded !== value) readBase64(decoded, out);
  }
  return out;
}

function readBase64(value: string, out: string[], layer = 1): void {
  let runs = 0;
  // every run (a cap of 32 texts let a payload follow 32 benign ones: session 24 WAF evasion audit);
  // its own RegExp a layer: a decoded text is read while the outer value's runs are
  const runRe = layer === 1 ? BASE64_RUN : new RegExp(BASE64_RUN.source, 'g');
  runRe.lastIndex = 0;
  for (let m = runRe.exec(value); m; m = runRe.exec(value)) {
    runs++;
    addText(out, decodeBase64Any(m[0]), layer);
  }
  // one run that is the whole value (the usual case): nothing skipped, nothing more to read
  if ((runs === 1 && /^[A-Za-z0-9+/_-]+=*$/.test(value)) || JWT_SHAPE.test(value)) return;
  const eq = value.indexOf('=');
  const head = eq < 0 ? value : value.slice(0, eq);
  NOT_BASE64.lastIndex = 0;
  const joined = head.replace(NOT_BASE64, '');
  if (joined.length < 12 || joined.length === head.length) return;
  for (let shift = 0; shift < 4; shift++) if (addText(out, decodeBase64Any(joined.slice(shift)), layer)) return;
}

/** `t:sentinelBase64Text`: the decoded texts of base64Texts joined by newlines ('' if none). */
export function base64Text(value: string): string {
  return base64Texts(value).join('\n');
}

/**
 * String leaves (and keys) of a value that is a JSON object or array, e.g. a query argument or
 * header carrying JSON, or JSON inside a JSON string; [] for anything else.
 */
export function jsonLeaves(value: string): string[] {
  const t = value.trimStart();
  if (t[0] !== '{' && t[0] !== '[') return [];
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(t, 'latin1').toString('utf8'));
  } catch {
    return [];
  }
  // Every leaf, however many and however deep (the application's JSON.parse has no cap either: a
  // cap of 256 leaves or 32 levels let a payload hide behind padding, session 24 WAF evasion
  // audit); an explicit stack, in document order, so depth cannot overflow ours.
  const out: string[] = [];
  const stack: unknown[] = [doc];
  while (stack.length > 0) {
    const v = stack.pop();
    if (typeof v === 'string') {
      const text = Buffer.from(v, 'utf8').toString('latin1');
      out.push(text);
      // JSON-in-JSON: a string that is a document of its own.
      for (const inner of jsonLeaves(text)) out.push(inner);
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
    } else if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [k, x] = entries[i]!;
        stack.push(x);
        if (k.length > 2) stack.push(k);
      }
    }
  }
  return out;
}

export type Decoder = (value: string) => string[];

export const DECODERS: Record<string, Decoder> = {
  base64: base64Texts,
  json: jsonLeaves,
};
