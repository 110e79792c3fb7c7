// Helpers for latin1 "binary" strings: every char code 0..255 is one byte of HTTP input.

/** C isspace() in the C locale: space, \t, \n, \v, \f, \r. */
export function isSpaceCode(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** Non-breaking space in latin1; ModSecurity treats it as whitespace in several transformations. */
export const NBSP = 0xa0;

export function isHexCode(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

export function isDigitCode(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

export function isOctalCode(c: number): boolean {
  return c >= 0x30 && c <= 0x37;
}

export function isAlnumCode(c: number): boolean {
  return isDigitCode(c) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** Value of one hex digit (caller checked it is one). */
export function hexValue(c: number): number {
  if (c <= 0x39) return c - 0x30;
  return (c | 0x20) - 0x61 + 10;
}

/**
 * Two chars -> one byte, the way ModSecurity's x2c() does it: no validation,
 * so non-hex chars produce "garbage" bytes exactly like the reference (hexDecode relies on this).
 */
export function looseHexPair(s: string, i: number): number {
  return (looseHexDigit(s.charCodeAt(i)) * 16 + looseHexDigit(s.charCodeAt(i + 1))) & 0xff;
}

function looseHexDigit(c: number): number {
  return c >= 0x41 ? (c & 0xdf) - 0x41 + 10 : c - 0x30;
}

/** Build a latin1 string from byte values without call-stack limits on large inputs. */
export function fromBytes(bytes: ArrayLike<number>): string {
  let out = '';
  const CHUNK = 8192;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    const part: number[] = [];
    const end = Math.min(bytes.length, i + CHUNK);
    for (let j = i; j < end; j++) part.push(bytes[j]! & 0xff);
    out += String.fromCharCode(...part);
  }
  return out;
}

/** UTF-16 JS text (e.g. read from a UTF-8 file) -> latin1 binary string of its UTF-8 bytes. */
export function utf8Bytes(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

/** latin1 binary string -> Buffer of the same bytes. */
export function toBuffer(binary: string): Buffer {
  return Buffer.from(binary, 'latin1');
}

// Only ASCII letters change case: bytes >= 0x80 are not letters in the C
// locale ModSecurity uses (and String#toUpperCase would turn \xff into U+0178).
export function asciiLower(s: string): string {
  return shiftCase(s, 0x41, 0x5a, 0x20);
}

export function asciiUpper(s: string): string {
  return shiftCase(s, 0x61, 0x7a, -0x20);
}

function shiftCase(s: string, from: number, to: number, delta: number): string {
  let first = -1;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= from && c <= to) {
      first = i;
      break;
    }
  }
  if (first < 0) return s;
  const out = new ByteWriter(s.length);
  out.text(s, 0, first);
  for (let i = first; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out.byte(c >= from && c <= to ? c + delta : c);
  }
  return out.toString();
}

/**
 * Builds a latin1 string byte by byte. Appending chars to a JS string one at a
 * time costs about ten times more on large bodies than filling a Buffer.
 */
export class ByteWriter {
  private buf: Buffer;
  private len = 0;

  constructor(expectedLength: number) {
    this.buf = Buffer.allocUnsafe(Math.max(16, expectedLength));
  }

  private reserve(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + extra));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  /** One byte (only the low 8 bits count). */
  byte(value: number): void {
    if (this.len === this.buf.length) this.reserve(1);
    this.buf[this.len++] = value & 0xff;
  }

  /** Chars of a latin1 string, s[from..to). */
  text(s: string, from = 0, to = s.length): void {
    this.reserve(to - from);
    for (let i = from; i < to; i++) this.buf[this.len++] = s.charCodeAt(i) & 0xff;
  }

  get length(): number {
    return this.len;
  }

  /** Drops the last byte (if any). */
  pop(): void {
    if (this.len > 0) this.len--;
  }

  toString(): string {
    return this.buf.toString('latin1', 0, this.len);
  }
}
