// Decoding transformations (URL, HTML, JS, CSS, C escapes, base64, hex).
// All take and return latin1 binary strings; malformed encodings are left as
// they are, the way ModSecurity's "non-strict" decoders behave.
import { ByteWriter, hexValue, isAlnumCode, isDigitCode, isHexCode, isOctalCode, isSpaceCode, looseHexPair } from '../strings.ts';

const PERCENT = 0x25;
const PLUS = 0x2b;
const BACKSLASH = 0x5c;

/** Fullwidth ASCII (U+FF01..U+FF5E) maps to ASCII by adding 0x20 to the low byte. */
function lowByteWithFullwidth(lowByte: number, highIsFF: boolean): number {
  return highIsFF && lowByte > 0x00 && lowByte < 0x5f ? lowByte + 0x20 : lowByte;
}

function isFF(s: string, i: number): boolean {
  return (s[i] === 'f' || s[i] === 'F') && (s[i + 1] === 'f' || s[i + 1] === 'F');
}

export function urlDecode(input: string): string {
  return decodePercent(input, false);
}

/** urlDecode plus IIS-style %uHHHH (only the low byte is kept, fullwidth ASCII folded). */
export function urlDecodeUni(input: string): string {
  return decodePercent(input, true);
}

function decodePercent(input: string, unicode: boolean): string {
  if (input.indexOf('%') < 0) return input.indexOf('+') < 0 ? input : plusToSpace(input, unicode);
  return decodeBytes(input, unicode);
}

/** A value with '+' and no escape (a query string, a request line): replaceAll, not the byte
 * writer (a Buffer and its latin1 decoding, ~3 k instructions a call, six a benign GET), unless
 * a char above 0xff needs the byte path's masking. */
function plusToSpace(input: string, unicode: boolean): string {
  // A regex's scan, not a charCodeAt loop: ~40 instructions a character in the loop (its loads
  // meet strings of every representation) against a few in the compiled character class (the
  // loop was ~15 k instructions of a benign GET: the URI, request line and query, ~60 each).
  if (ABOVE_LATIN1.test(input)) return decodeBytes(input, unicode);
  return input.replace(PLUSES, ' ');
}

const ABOVE_LATIN1 = /[^\u0000-\u00ff]/;
/** A one-char global regex (V8 replaces it as an atom, into a flat string): ~10% fewer
 * instructions than replaceAll's cons string of slices, which its first reader flattens. */
const PLUSES = /\+/g;
const UTF8_LEAD = /[^\u0000-\u00bf]/;

function decodeBytes(input: string, unicode: boolean): string {
  const out = new ByteWriter(input.length);
  const n = input.length;
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    if (c === PLUS) {
      out.byte(0x20);
      i += 1;
      continue;
    }
    if (c === PERCENT) {
      if (
        unicode &&
        (input[i + 1] === 'u' || input[i + 1] === 'U') &&
        i + 5 < n &&
        allHex(input, i + 2, 4)
      ) {
        out.byte(lowByteWithFullwidth(looseHexPair(input, i + 4), isFF(input, i + 2)));
        i += 6;
        continue;
      }
      if (i + 2 < n && isHexCode(input.charCodeAt(i + 1)) && isHexCode(input.charCodeAt(i + 2))) {
        out.byte(looseHexPair(input, i + 1));
        i += 3;
        continue;
      }
    }
    out.byte(c);
    i += 1;
  }
  return out.toString();
}

function allHex(s: string, from: number, count: number): boolean {
  for (let k = from; k < from + count; k++) if (!isHexCode(s.charCodeAt(k))) return false;
  return true;
}

const HEX_DIGITS = '0123456789abcdef';

/** Everything but letters, digits and '*' is %-encoded (lowercase hex); space becomes '+'. */
export function urlEncode(input: string): string {
  const out = new ByteWriter(input.length * 3);
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i) & 0xff;
    if (c === 0x20) out.byte(0x2b);
    else if (isAlnumCode(c) || c === 0x2a) out.byte(c);
    else {
      out.byte(PERCENT);
      out.byte(HEX_DIGITS.charCodeAt(c >> 4));
      out.byte(HEX_DIGITS.charCodeAt(c & 0x0f));
    }
  }
  return out.toString();
}

/** Named entities ModSecurity decodes; everything else numeric (&#..; / &#x..;). A Map, not an
 * object literal: `&constructor` found Object.prototype.constructor and decoded to a NUL. */
const NAMED_ENTITIES: ReadonlyMap<string, number> = new Map([['quot', 0x22], ['amp', 0x26], ['lt', 0x3c], ['gt', 0x3e], ['nbsp', 0xa0]]);

/** Parse digits as C's strtol would into an unsigned char: saturates at LONG_MAX. */
function strtolByte(digits: string, radix: 10 | 16): number {
  const value = BigInt(radix === 16 ? `0x${digits}` : digits);
  const LONG_MAX = 0x7fffffffffffffffn;
  return Number((value > LONG_MAX ? LONG_MAX : value) & 0xffn);
}

export function htmlEntityDecode(input: string): string {
  const amp = input.indexOf('&');
  if (amp < 0 || !entityDecodeChanges(input, amp)) return input;
  const n = input.length;
  const out = new ByteWriter(input.length);
  let i = 0;
  while (i < n) {
    if (input.charCodeAt(i) !== 0x26 || i + 1 >= n) {
      out.byte(input.charCodeAt(i));
      i += 1;
      continue;
    }
    let k = i + 1;
    if (input[k] === '#') {
      k += 1;
      const hex = input[k] === 'x' || input[k] === 'X';
      if (hex) k += 1;
      let j = k;
      while (j < n && (hex ? isHexCode(input.charCodeAt(j)) : isDigitCode(input.charCodeAt(j)))) j++;
      if (j > k) {
        out.byte(strtolByte(input.slice(k, j), hex ? 16 : 10));
        i = input[j] === ';' ? j + 1 : j;
        continue;
      }
      // Not an entity: keep '&#' (and the 'x') literally and carry on after them.
      out.text(input, i, k);
      i = k;
      continue;
    }
    let j = k;
    while (j < n && isAlnumCode(input.charCodeAt(j))) j++;
    const code = j > k ? NAMED_ENTITIES.get(input.slice(k, j).toLowerCase()) : undefined;
    if (code !== undefined) {
      out.byte(code);
      i = input[j] === ';' ? j + 1 : j;
      continue;
    }
    out.text(input, i, j);
    i = j;
  }
  return out.toString();
}

/** Whether htmlEntityDecode changes a value whose first '&' is at `amp`: a char above 0xff (the
 * byte path keeps only the low byte), '&#' (maybe a numeric entity) or '&' and a named entity.
 * A query string's '&size=...' is none of these: no byte writer for it (three a benign GET). */
function entityDecodeChanges(input: string, amp: number): boolean {
  const n = input.length;
  if (ABOVE_LATIN1.test(input)) return true;
  for (let i = amp; i >= 0 && i + 1 < n; i = input.indexOf('&', i + 1)) {
    const k = i + 1;
    if (input.charCodeAt(k) === 0x23) return true;
    let j = k;
    while (j < n && isAlnumCode(input.charCodeAt(j))) j++;
    if (j - k >= 2 && j - k <= 4 && NAMED_ENTITIES.has(input.slice(k, j).toLowerCase())) return true;
  }
  return false;
}

const SIMPLE_C_ESCAPES: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11 };

/** Reads up to three octal digits at s[i]; returns [value, digits used]. */
function readOctal(s: string, i: number, maxDigits: number): [number, number] {
  let j = 0;
  while (j < maxDigits && i + j < s.length && isOctalCode(s.charCodeAt(i + j))) j++;
  return [Number.parseInt(s.slice(i, i + j), 8), j];
}

/** JavaScript escapes: \uHHHH (low byte, fullwidth folded), \xHH, \OOO, \C. */
export function jsDecode(input: string): string {
  if (input.indexOf('\\') < 0) return input;
  const n = input.length;
  const out = new ByteWriter(input.length);
  let i = 0;
  while (i < n) {
    if (input.charCodeAt(i) !== BACKSLASH) {
      out.byte(input.charCodeAt(i));
      i += 1;
      continue;
    }
    if (i + 5 < n && input[i + 1] === 'u' && allHex(input, i + 2, 4)) {
      out.byte(lowByteWithFullwidth(looseHexPair(input, i + 4), isFF(input, i + 2)));
      i += 6;
    } else if (i + 3 < n && input[i + 1] === 'x' && allHex(input, i + 2, 2)) {
      out.byte(looseHexPair(input, i + 2));
      i += 4;
    } else if (i + 1 < n && isOctalCode(input.charCodeAt(i + 1))) {
      // At most one byte: a 3-digit octal starting above '3' would overflow, so use 2 digits.
      const maxDigits = input.charCodeAt(i + 1) > 0x33 ? 2 : 3;
      const [value, used] = readOctal(input, i + 1, maxDigits);
      out.byte(value);
      i += 1 + used;
    } else if (i + 1 < n) {
      const next = input[i + 1]!;
      const simple = SIMPLE_C_ESCAPES[next];
      out.byte(simple ?? next.charCodeAt(0));
      i += 2;
    } else {
      out.byte(input.charCodeAt(i));
      i += 1;
    }
  }
  return out.toString();
}

/** CSS 2.x escapes: \H{1,6} (low byte, optional following whitespace eaten), \<newline>, \C. */
export function cssDecode(input: string): string {
  if (input.indexOf('\\') < 0) return input;
  const n = input.length;
  const out = new ByteWriter(input.length);
  let i = 0;
  while (i < n) {
    if (input.charCodeAt(i) !== BACKSLASH) {
      out.byte(input.charCodeAt(i));
      i += 1;
      continue;
    }
    i += 1; // the backslash itself is never kept
    if (i >= n) break;
    let j = 0;
    while (j < 6 && i + j < n && isHexCode(input.charCodeAt(i + j))) j++;
    if (j > 0) {
      let byte = j === 1 ? hexValue(input.charCodeAt(i)) : looseHexPair(input, i + j - 2);
      // Fullwidth ASCII written with 4+ digits (00ff01, ff01): fold like jsDecode does.
      const widthDigits = input.slice(i, i + j - 2);
      const fullwidthCandidate =
        j === 4 || (j === 5 && input[i] === '0') || (j === 6 && input.startsWith('00', i));
      if (fullwidthCandidate && /[fF]{2}$/.test(widthDigits)) byte = lowByteWithFullwidth(byte, true);
      out.byte(byte);
      i += j;
      // One whitespace after a hex escape terminates it and is dropped.
      if (i < n && isSpaceCode(input.charCodeAt(i))) i += 1;
      continue;
    }
    if (input[i] === '\n') {
      i += 1; // line continuation
      continue;
    }
    out.byte(input.charCodeAt(i));
    i += 1;
  }
  return out.toString();
}

/** ANSI C escape sequences: \a \b \f \n \r \t \v \\ \? \' \" \xHH \OOO. */
export function escapeSeqDecode(input: string): string {
  if (input.indexOf('\\') < 0) return input;
  const n = input.length;
  const out = new ByteWriter(input.length);
  let i = 0;
  while (i < n) {
    if (input.charCodeAt(i) !== BACKSLASH || i + 1 >= n) {
      out.byte(input.charCodeAt(i));
      i += 1;
      continue;
    }
    const next = input[i + 1]!;
    const simple = SIMPLE_C_ESCAPES[next];
    if (simple !== undefined) {
      out.byte(simple);
      i += 2;
    } else if ((next === 'x' || next === 'X') && i + 3 < n && allHex(input, i + 2, 2)) {
      out.byte(looseHexPair(input, i + 2));
      i += 4;
    } else if (isOctalCode(next.charCodeAt(0))) {
      const [value, used] = readOctal(input, i + 1, 3);
      out.byte(value & 0xff);
      i += 1 + used;
    } else {
      // Unknown escape (including \\ \? \' \"): keep the escaped char, drop the backslash.
      out.byte(next.charCodeAt(0));
      i += 2;
    }
  }
  return out.toString();
}

const B64_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_VALUE = new Int16Array(256).fill(-1);
for (let k = 0; k < B64_ALPHABET.length; k++) B64_VALUE[B64_ALPHABET.charCodeAt(k)] = k;

/**
 * base64Decode stops at the first char outside the alphabet (padding, NUL, ...);
 * base64DecodeExt (forgiving) skips such chars and keeps going.
 */
function decodeBase64(input: string, forgiving: boolean): string {
  const out = new ByteWriter(input.length);
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < input.length; i++) {
    const code = input.charCodeAt(i);
    const v = code < 256 ? B64_VALUE[code]! : -1;
    if (v < 0) {
      if (forgiving) continue;
      break;
    }
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.byte((acc >> bits) & 0xff);
    }
  }
  return out.toString();
}

export function base64Decode(input: string): string {
  return decodeBase64(input, false);
}

export function base64DecodeExt(input: string): string {
  return decodeBase64(input, true);
}

export function base64Encode(input: string): string {
  return Buffer.from(input, 'latin1').toString('base64');
}

/** Pairs of hex digits -> bytes; like ModSecurity, pairs are not validated and an odd last char is dropped. */
export function hexDecode(input: string): string {
  const out = new ByteWriter(input.length);
  for (let i = 0; i + 1 < input.length; i += 2) out.byte(looseHexPair(input, i));
  return out.toString();
}

export function hexEncode(input: string): string {
  return Buffer.from(input, 'latin1').toString('hex');
}

/** MySQL-style hex literals 0xHHHH... -> bytes; everything else copied. */
export function sqlHexDecode(input: string): string {
  const n = input.length;
  const out = new ByteWriter(input.length);
  let i = 0;
  while (i < n) {
    if (
      input[i] === '0' &&
      (input[i + 1] === 'x' || input[i + 1] === 'X') &&
      i + 3 < n &&
      allHex(input, i + 2, 2)
    ) {
      let j = i + 2;
      while (j + 1 < n && allHex(input, j, 2)) {
        out.byte(looseHexPair(input, j));
        j += 2;
      }
      i = j;
      continue;
    }
    out.byte(input.charCodeAt(i));
    i += 1;
  }
  return out.toString();
}

/**
 * UTF-8 multi-byte sequences -> %uHHHH (lowercase, at least 4 digits); ASCII and
 * bytes that do not start a complete sequence are copied unchanged. Overlong
 * forms are decoded too (a WAF wants %c0%af to become '/').
 */
export function utf8toUnicode(input: string): string {
  const n = input.length;
  // Only a byte >= 0xc0 can start a sequence: without one the value is copied as it is (a
  // regex's class, not a charCodeAt loop: ~40 instructions a character there).
  if (!UTF8_LEAD.test(input)) return input;
  const out = new ByteWriter(input.length);
  let i = 0;
  while (i < n) {
    const c = input.charCodeAt(i);
    let len = 0;
    let cp = 0;
    if (c >= 0xc0 && c < 0xe0) {
      len = 2;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c < 0xf0) {
      len = 3;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c < 0xf8) {
      len = 4;
      cp = c & 0x07;
    }
    let ok = len > 0 && i + len <= n;
    for (let k = 1; ok && k < len; k++) {
      const cc = input.charCodeAt(i + k);
      if ((cc & 0xc0) !== 0x80) ok = false;
      else cp = (cp << 6) | (cc & 0x3f);
    }
    if (!ok) {
      out.byte(input.charCodeAt(i));
      i += 1;
      continue;
    }
    out.text(`%u${cp.toString(16).padStart(4, '0')}`);
    i += len;
  }
  return out.toString();
}
