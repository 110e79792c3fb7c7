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
  const digit = (c: number): number => (c >= 0x41 ? ((c & 0xdf) - 0x41) + 10 : c - 0x30);
  return (digit(s.charCodeAt(i)) * 16 + digit(s.charCodeAt(i + 1))) & 0xff;
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

export function asciiLower(s: string): string {
  // Only A-Z: bytes >= 0x80 are not letters in the C locale ModSecurity uses.
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

export function asciiUpper(s: string): string {
  return s.replace(/[a-z]+/g, (m) => m.toUpperCase());
}
