// Text-shaping transformations: case, whitespace, NULs, comments, parity, hashes, paths.
import { createHash } from 'node:crypto';

import { asciiLower, asciiUpper, ByteWriter, isSpaceCode, NBSP } from '../strings.ts';

/** ASCII text (no byte >= 0x80): String#toLowerCase/toUpperCase change exactly the ASCII letters
 * there, in V8's native code a word at a time; byte by byte in JavaScript (asciiLower) the 2 KiB
 * JSON body's t:lowercase cost ~65 instructions a byte. Latin1 bytes >= 0x80 are not letters in
 * the C locale ModSecurity uses, so those strings take the byte-wise path. The check is a
 * regex's compiled class, not a charCodeAt loop (~40 instructions a character). */
const ABOVE_ASCII = /[^\u0000-\u007f]/;

export function lowercase(input: string): string {
  return ABOVE_ASCII.test(input) ? asciiLower(input) : input.toLowerCase();
}

export function uppercase(input: string): string {
  return ABOVE_ASCII.test(input) ? asciiUpper(input) : input.toUpperCase();
}

export function length(input: string): string {
  return String(input.length);
}

function isSpaceOrNbsp(c: number): boolean {
  return isSpaceCode(c) || c === NBSP;
}

/** Whether compressWhitespace would change the input: a whitespace char other than a space, or
 * two in a row. Most values have neither, and the copy through a ByteWriter costs a Buffer. */
function compressible(input: string): boolean {
  let prev = false;
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    const space = isSpaceOrNbsp(c);
    if (space && (prev || c !== 0x20)) return true;
    prev = space;
  }
  return false;
}

export function compressWhitespace(input: string): string {
  if (!compressible(input)) return input;
  const out = new ByteWriter(input.length);
  let inSpace = false;
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (isSpaceOrNbsp(c)) {
      if (!inSpace) out.byte(0x20);
      inSpace = true;
    } else {
      out.byte(c);
      inSpace = false;
    }
  }
  return out.toString();
}

/** isSpaceOrNbsp's chars as a class: a regex's scan, not a charCodeAt loop. */
const WHITESPACE = /[\t\n\v\f\r \u00a0]/;

export function removeWhitespace(input: string): string {
  if (!WHITESPACE.test(input)) return input;
  const out = new ByteWriter(input.length);
  for (let i = 0; i < input.length; i++) {
    const c = input.charCodeAt(i);
    if (!isSpaceOrNbsp(c)) out.byte(c);
  }
  return out.toString();
}

export function trimLeft(input: string): string {
  let i = 0;
  while (i < input.length && isSpaceCode(input.charCodeAt(i))) i++;
  return input.slice(i);
}

export function trimRight(input: string): string {
  let end = input.length;
  while (end > 0 && isSpaceCode(input.charCodeAt(end - 1))) end--;
  return input.slice(0, end);
}

export function trim(input: string): string {
  return trimRight(trimLeft(input));
}

export function removeNulls(input: string): string {
  return input.indexOf('\0') < 0 ? input : input.replaceAll('\0', '');
}

export function replaceNulls(input: string): string {
  return input.indexOf('\0') < 0 ? input : input.replaceAll('\0', ' ');
}

/**
 * Removes C (/* *\/) and HTML (<!-- -->) comments; a SQL/shell line comment
 * (-- or #) outside a comment ends the value. An unterminated comment becomes
 * one space. Like ModSecurity v3 (and the reference test data), a comment that
 * closes exactly at the end of the input leaves a NUL byte behind.
 */
export function removeComments(input: string): string {
  const n = input.length;
  const out = new ByteWriter(input.length);
  let inComment = false;
  let i = 0;
  while (i < n) {
    if (!inComment) {
      if (input.startsWith('/*', i)) {
        inComment = true;
        i += 2;
      } else if (input.startsWith('<!--', i)) {
        inComment = true;
        i += 4;
      } else if (input.startsWith('--', i) || input[i] === '#') {
        break;
      } else {
        out.byte(input.charCodeAt(i));
        i += 1;
      }
      continue;
    }
    const closer = input.startsWith('*/', i) ? 2 : input.startsWith('-->', i) ? 3 : 0;
    if (closer === 0) {
      i += 1;
      continue;
    }
    inComment = false;
    i += closer;
    // The reference copies the char right after the closer unconditionally (the NUL terminator at the end).
    out.byte(i < n ? input.charCodeAt(i) : 0);
    i += 1;
  }
  if (inComment) out.byte(0x20);
  return out.toString();
}

/** Removes the comment markers themselves (/* *\/ <!-- --> -- #), keeping the text between them. */
export function removeCommentsChar(input: string): string {
  return input.replace(/\/\*|\*\/|<!--|-->|--|#/g, '');
}

/** Each C comment (terminated or running to the end) becomes a single space. */
export function replaceComments(input: string): string {
  if (input.indexOf('/*') < 0) return input;
  let out = '';
  let i = 0;
  while (i < input.length) {
    const start = input.indexOf('/*', i);
    if (start < 0) {
      out += input.slice(i);
      break;
    }
    out += `${input.slice(i, start)} `;
    const end = input.indexOf('*/', start + 2);
    if (end < 0) break;
    i = end + 2;
  }
  return out;
}

/** What cmdLine changes: a char it drops, a separator other than a space, an upper-case letter,
 * or a space that is not alone (another separator after it) or goes (before '/' or '('): a lone
 * space stays, so the URI of a query with '+' for spaces comes back as it is. */
const CMD_CHANGES = /["'\\^,;\t\r\nA-Z]| [ /(]/;
const CMD_DROP = /["'\\^]/g;
/** A run of separators becomes one space, then a space before '/' or '(' goes (in this order:
 * a lookahead after a run would backtrack through long runs, quadratic in their length). */
const CMD_SEP = /[ ,;\t\r\n]+/g;
const CMD_SPACE_BEFORE = / (?=[/(])/g;
const ABOVE_LATIN1 = /[^\u0000-\u00ff]/;

/**
 * Windows command-line evasion normalisation: drop \ " ' ^, collapse
 * separators (space , ; tab CR LF) into one space, drop a space before / or (,
 * lowercase.
 *
 * As regex passes (native scans), not a charCodeAt loop into a ByteWriter: the request line
 * and the URI of every GET change (upper case, spaces), and the loop cost ~40 instructions a
 * character and a Buffer a call. A char above 0xff takes the byte loop (its low byte counts).
 */
export function cmdLine(input: string): string {
  if (!CMD_CHANGES.test(input)) return input;
  if (ABOVE_LATIN1.test(input)) return cmdLineBytes(input);
  const s = input.replace(CMD_DROP, '').replace(CMD_SEP, ' ').replace(CMD_SPACE_BEFORE, '');
  // Only A-Z: String#toLowerCase would also change latin1 letters (the C locale does not).
  return ABOVE_ASCII.test(s) ? asciiLower(s) : s.toLowerCase();
}

function cmdLineBytes(input: string): string {
  const out = new ByteWriter(input.length);
  // A run of separators becomes one space, written only once we know no / or ( follows.
  let pendingSpace = false;
  for (let i = 0; i < input.length; i++) {
    const ch = input[i]!;
    switch (ch) {
      case '"':
      case "'":
      case '\\':
      case '^':
        break;
      case ' ':
      case ',':
      case ';':
      case '\t':
      case '\r':
      case '\n':
        pendingSpace = true;
        break;
      case '/':
      case '(':
        pendingSpace = false;
        out.text(ch);
        break;
      default:
        if (pendingSpace) out.byte(0x20);
        pendingSpace = false;
        out.byte(ch >= 'A' && ch <= 'Z' ? ch.charCodeAt(0) + 0x20 : ch.charCodeAt(0));
    }
  }
  if (pendingSpace) out.byte(0x20);
  return out.toString();
}

function popcount7(c: number): number {
  let bits = 0;
  for (let v = c & 0x7f; v; v >>= 1) bits += v & 1;
  return bits;
}

function mapBytes(input: string, f: (c: number) => number): string {
  const out = new ByteWriter(input.length);
  for (let i = 0; i < input.length; i++) out.byte(f(input.charCodeAt(i)));
  return out.toString();
}

export function parityEven7bit(input: string): string {
  return mapBytes(input, (c) => (c & 0x7f) | (popcount7(c) % 2 === 1 ? 0x80 : 0));
}

export function parityOdd7bit(input: string): string {
  return mapBytes(input, (c) => (c & 0x7f) | (popcount7(c) % 2 === 0 ? 0x80 : 0));
}

export function parityZero7bit(input: string): string {
  return mapBytes(input, (c) => c & 0x7f);
}

function digest(algorithm: 'md5' | 'sha1', input: string): string {
  return createHash(algorithm).update(Buffer.from(input, 'latin1')).digest().toString('latin1');
}

export function md5(input: string): string {
  return digest('md5', input);
}

export function sha1(input: string): string {
  return digest('sha1', input);
}

/**
 * Removes self references (.), back references (..) together with the segment
 * before them, and repeated slashes. A relative path keeps leading '..' it
 * cannot resolve; an absolute path never climbs above '/'. A trailing slash is
 * kept only when the input ended with one.
 */
function normalise(path: string): string {
  if (path === '') return path;
  // Without an empty segment inside the path ('//') or a '.'/'..' segment (they start the path or
  // follow a '/'), every segment is kept as it is: the path is its own result (split and join
  // made a copy of every request's path, ~5 k instructions a call).
  if (path.charCodeAt(0) !== 0x2e && !path.includes('//') && !path.includes('/.')) return path;
  const absolute = path.startsWith('/');
  const parts = path.split('/');
  const last = parts[parts.length - 1];
  const trailing = path.endsWith('/') && last === '';
  const stack: string[] = [];
  for (const part of parts) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (stack.length > 0 && stack[stack.length - 1] !== '..') stack.pop();
      else if (!absolute) stack.push('..');
      continue;
    }
    stack.push(part);
  }
  const body = stack.join('/');
  if (absolute) return trailing && body ? `/${body}/` : `/${body}`;
  return trailing && body ? `${body}/` : body;
}

export function normalisePath(input: string): string {
  return normalise(input);
}

export function normalisePathWin(input: string): string {
  return normalise(input.includes('\\') ? input.replaceAll('\\', '/') : input);
}

const PHP_INDEX_SPACE = /^[ \t\n\r\v\f]*/;

/**
 * How PHP turns a parameter name into a variable name: leading spaces dropped,
 * ' ' and '.' in the base name become '_', '[index]' parts kept (leading
 * whitespace in an index dropped), anything after the last complete index
 * dropped, an unclosed '[' becomes '_' with the rest kept verbatim, and an empty
 * base name discards the whole name.
 */
export function phpArgsNames(input: string): string {
  let i = 0;
  while (input[i] === ' ') i++;
  const baseBytes = new ByteWriter(input.length);
  for (; i < input.length && input[i] !== '['; i++) {
    const c = input.charCodeAt(i);
    baseBytes.byte(c === 0x20 || c === 0x2e ? 0x5f : c);
  }
  const base = baseBytes.toString();
  if (i >= input.length) return base;
  if (base === '') return '';
  let out = base;
  while (input[i] === '[') {
    const afterBracket = i + 1;
    const indexStart = afterBracket + (PHP_INDEX_SPACE.exec(input.slice(afterBracket))?.[0].length ?? 0);
    const close = input.indexOf(']', indexStart);
    if (close < 0) return `${out}_${input.slice(afterBracket)}`;
    out += `[${input.slice(indexStart, close)}]`;
    i = close + 1;
  }
  return out;
}
