// A hand-written recursive-descent parser for KDL 2.0 (https://kdl.dev/spec/). It replaces kdljs at run
// time: kdljs pulls in chevrotain (tens of MiB of RSS for the life of the process; see
// bench/kdl-memory.ts) and reports no node positions. This one is a single pass over the text with no
// token objects; it stops at the first syntax error and says where, what it expected and why.
import type { KdlNode, KdlPosition, KdlValue } from './types.ts';

const EOF = -1;
const TAB = 0x09;
const QUOTE = 0x22;
const HASH = 0x23;
const LPAREN = 0x28;
const RPAREN = 0x29;
const STAR = 0x2a;
const MINUS = 0x2d;
const SLASH = 0x2f;
const SEMI = 0x3b;
const EQUALS = 0x3d;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/** Children blocks nested deeper than this are refused rather than risking the JS stack. */
export const MAX_DEPTH = 200;

/** Code points that may not appear literally anywhere (spec "Disallowed Literal Code Points"), plus lone surrogates. */
const DISALLOWED = /[\u0000-\u0008\u000E-\u001F\u007F\u200E\u200F\u202A-\u202E\u2066-\u2069\uFEFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const KEYWORD_IDENTS = new Set(['true', 'false', 'null', 'inf', '-inf', 'nan']);
const DECIMAL = /^[+-]?[0-9][0-9_]*(?:\.[0-9][0-9_]*)?(?:[eE][+-]?[0-9][0-9_]*)?$/;
const RADIX_PREFIX = /^([+-]?)0([xob])(.*)$/s;
const RADIX_DIGITS: Record<string, { re: RegExp; radix: number; name: string }> = {
  x: { re: /^[0-9a-fA-F][0-9a-fA-F_]*$/, radix: 16, name: 'hexadecimal' },
  o: { re: /^[0-7][0-7_]*$/, radix: 8, name: 'octal' },
  b: { re: /^[01][01_]*$/, radix: 2, name: 'binary' },
};
const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"', b: '\b', f: '\f', s: ' ' };

/** Non-newline whitespace (spec "Whitespace"). */
export function isSpace(c: number): boolean {
  return c === 0x20 || c === TAB || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x202f || c === 0x205f || c === 0x3000;
}

/** Newline code points (spec "Newline"; CRLF is one newline, see newlineLength). */
export function isNewline(c: number): boolean {
  return c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c || c === 0x85 || c === 0x2028 || c === 0x2029;
}

/** identifier-char: anything but whitespace, newlines and `\/(){};[]"#=` (disallowed code points are rejected up front). */
export function isIdentChar(c: number): boolean {
  if (c <= 0x20) return false;
  switch (c) {
    case 0x5c: case 0x2f: case 0x28: case 0x29: case 0x7b: case 0x7d: case 0x3b: case 0x5b: case 0x5d: case 0x22: case 0x23: case 0x3d:
      return false;
  }
  return !isSpace(c) && !isNewline(c);
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

function allSpace(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!isSpace(s.charCodeAt(i))) return false;
  return true;
}

function hexCode(c: number): string {
  return 'U+' + c.toString(16).toUpperCase().padStart(4, '0');
}

/** A syntax error with its 1-based position and the offending source line with a caret under the spot. */
export class KdlSyntaxError extends Error {
  constructor(
    /** What went wrong, without the position. */
    readonly reason: string,
    readonly line: number,
    readonly column: number,
    readonly offset: number,
    /** `  12 | source line` and a caret line under it. */
    readonly snippet: string,
  ) {
    super(`${line}:${column}: ${reason}`);
    this.name = 'KdlSyntaxError';
  }
}

interface Block {
  name: string;
  /** Offset of the '{'. */
  open: number;
  /** Indentation of the line holding the '{'. */
  indent: number;
  /** First child node that starts a line no deeper than `indent`: where a missing '}' probably belongs. */
  suspect?: number;
}

/** Parses a KDL 2.0 document. Throws KdlSyntaxError on the first syntax error. */
export function parseDocument(text: string): KdlNode[] {
  return new Parser(text).document();
}

type Kind = 'string' | 'number' | 'keyword';

class Parser {
  private pos = 0;
  private readonly len: number;
  /** Offsets where each line starts (KDL newlines; CRLF counts once). */
  private readonly lineStarts: number[] = [0];
  /** Children blocks currently open, outermost first. */
  private readonly open: Block[] = [];
  /** What the last value() call read, for the "must be a string" checks. */
  private kind: Kind = 'string';

  constructor(private readonly src: string) {
    this.len = src.length;
    for (let i = 0; i < src.length; i++) {
      const c = src.charCodeAt(i);
      if (isNewline(c)) {
        if (c === 0x0d && src.charCodeAt(i + 1) === 0x0a) i++;
        this.lineStarts.push(i + 1);
      }
    }
  }

  document(): KdlNode[] {
    if (this.src.charCodeAt(0) === 0xfeff) this.pos = 1;
    DISALLOWED.lastIndex = this.pos;
    const bad = DISALLOWED.exec(this.src);
    if (bad) {
      const c = bad[0].charCodeAt(0);
      const why =
        c === 0xfeff
          ? 'a byte order mark (U+FEFF) is only allowed as the very first character'
          : c >= 0xd800 && c <= 0xdfff
            ? `unpaired surrogate ${hexCode(c)} (not a Unicode scalar value)`
            : c >= 0x200e
              ? `Unicode direction control character ${hexCode(c)} is not allowed in KDL (write it as \\u{${c.toString(16)}} inside a quoted string)`
              : `control character ${hexCode(c)} is not allowed in KDL (write it as \\u{${c.toString(16)}} inside a quoted string)`;
      this.fail(bad.index, why);
    }
    return this.nodes(null, 0);
  }

  // ---- structure ----

  private nodes(block: Block | null, depth: number): KdlNode[] {
    const out: KdlNode[] = [];
    for (;;) {
      this.skipLineSpace();
      const c = this.peek();
      if (c === EOF) {
        if (block) this.unclosed();
        return out;
      }
      if (c === RBRACE) {
        if (block) return out;
        this.fail(this.pos, "unexpected '}': there is no open children block to close");
      }
      if (this.at(SLASH, MINUS)) {
        this.slashdash();
        const d = this.peek();
        if (d === EOF || d === RBRACE) this.fail(this.pos, "'/-' must be followed by the node it comments out");
        this.node(depth);
        continue;
      }
      if (block && block.suspect === undefined) {
        const lineStart = this.lineStarts[this.lineIndex(this.pos)]!;
        const indent = this.indentAt(lineStart);
        if (this.pos === lineStart + indent && indent <= block.indent && lineStart > block.open) block.suspect = this.pos;
      }
      out.push(this.node(depth));
    }
  }

  private node(depth: number): KdlNode {
    const start = this.pos;
    let typeTag: string | undefined;
    if (this.peek() === LPAREN) {
      typeTag = this.typeAnnotation();
      this.skipNodeSpace();
    }
    const name = this.stringOnly('a node name');
    const node: KdlNode = {
      name,
      values: [],
      properties: {},
      children: [],
      tags: { name: typeTag, values: [], properties: {} },
      position: this.position(start),
    };
    let hasChildren = false;
    let entriesClosed = false; // any children block, even a /- one, ends the arguments and properties
    for (;;) {
      const spaced = this.skipNodeSpace();
      const c = this.peek();
      if (c === EOF || c === SEMI || c === RBRACE || isNewline(c) || this.at(SLASH, SLASH)) break;
      if (c === LBRACE) {
        if (hasChildren) this.fail(this.pos, `node ${JSON.stringify(name)} already has a children block; only /- commented blocks may follow it`);
        node.children = this.children(name, depth);
        hasChildren = entriesClosed = true;
        continue;
      }
      if (this.at(SLASH, MINUS)) {
        this.slashdash();
        if (this.peek() === LBRACE) {
          this.children(name, depth);
          entriesClosed = true;
          continue;
        }
        if (entriesClosed) this.fail(this.pos, `arguments and properties of node ${JSON.stringify(name)} must come before its children block`);
        this.entry(node, false);
        continue;
      }
      if (entriesClosed) this.fail(this.pos, `arguments and properties of node ${JSON.stringify(name)} must come before its children block`);
      if (!spaced) {
        if (c === QUOTE || c === HASH || c === LPAREN || isIdentChar(c)) this.fail(this.pos, `expected whitespace before ${this.describe(c)} (after the previous item of node ${JSON.stringify(name)})`);
        this.fail(this.pos, `unexpected ${this.describe(c)} in node ${JSON.stringify(name)}`);
      }
      this.entry(node, true);
    }
    const t = this.peek();
    if (t === SEMI) this.pos++;
    else if (isNewline(t)) this.pos += this.newlineLength(this.pos);
    else if (this.at(SLASH, SLASH)) this.lineComment();
    // else EOF, or the parent's '}' (nodes() checks that one is open)
    return node;
  }

  private children(name: string, depth: number): KdlNode[] {
    const open = this.pos;
    if (depth + 1 > MAX_DEPTH) this.fail(open, `children blocks are nested more than ${MAX_DEPTH} deep`);
    this.pos++;
    const block: Block = { name, open, indent: this.indentAt(this.lineStarts[this.lineIndex(open)]!) };
    this.open.push(block);
    const kids = this.nodes(block, depth + 1);
    this.open.pop();
    this.pos++; // nodes() returned on the '}'
    return kids;
  }

  /**
   * The file ended inside children blocks. The innermost one is not necessarily the culprit: when a
   * block holds a node that starts a line no deeper than the block's own line, that block's '}' is
   * probably the missing one, and the error points at that node.
   */
  private unclosed(): never {
    for (const b of this.open) {
      if (b.suspect === undefined) continue;
      const at = this.position(b.open);
      this.fail(b.suspect, `expected '}' to close the children block of node ${JSON.stringify(b.name)} opened at ${at.line}:${at.column} before this line (it is not indented inside the block, and the file ends with the block still open)`);
    }
    const last = this.open[this.open.length - 1]!;
    const at = this.position(last.open);
    this.fail(this.len, `expected '}' to close the children block of node ${JSON.stringify(last.name)} opened at ${at.line}:${at.column}, but the file ended`);
  }

  private indentAt(lineStart: number): number {
    let i = lineStart;
    while (i < this.len && isSpace(this.src.charCodeAt(i))) i++;
    return i - lineStart;
  }

  /** An argument or a property; `keep` is false for a /- commented one (parsed, checked, dropped). */
  private entry(node: KdlNode, keep: boolean): void {
    const start = this.pos;
    if (this.peek() === LPAREN) {
      const tag = this.typeAnnotation();
      this.skipNodeSpace();
      const v = this.value('a value after the type annotation');
      const save = this.pos;
      this.skipNodeSpace();
      if (this.peek() === EQUALS) this.fail(start, 'a property key cannot have a type annotation (put it on the value: key=(type)value)');
      this.pos = save;
      if (keep) {
        node.values.push(v);
        node.tags.values.push(tag);
      }
      return;
    }
    const v = this.value('an argument or property');
    const kind = this.kind;
    const save = this.pos;
    this.skipNodeSpace();
    if (this.peek() !== EQUALS) {
      this.pos = save;
      if (keep) {
        node.values.push(v);
        node.tags.values.push(undefined);
      }
      return;
    }
    if (kind !== 'string') this.fail(start, `a property key must be a string, not ${this.src.slice(start, save)} (quote it: "${this.src.slice(start, save)}"=...)`);
    const key = v as string;
    this.pos++;
    this.skipNodeSpace();
    let tag: string | undefined;
    if (this.peek() === LPAREN) {
      tag = this.typeAnnotation();
      this.skipNodeSpace();
    }
    const pv = this.value(`a value for property ${JSON.stringify(key)}`);
    if (!keep) return;
    if (key === '__proto__') {
      // a plain assignment would set the prototype instead of adding a key
      Object.defineProperty(node.properties, key, { value: pv, enumerable: true, writable: true, configurable: true });
      Object.defineProperty(node.tags.properties, key, { value: tag, enumerable: true, writable: true, configurable: true });
      return;
    }
    node.properties[key] = pv;
    node.tags.properties[key] = tag;
  }

  private typeAnnotation(): string {
    const open = this.pos;
    this.pos++;
    this.skipNodeSpace();
    if (this.peek() === RPAREN) this.fail(this.pos, 'empty type annotation: write (type) with a name inside');
    const t = this.stringOnly('a type name');
    this.skipNodeSpace();
    if (this.peek() !== RPAREN) {
      const at = this.position(open);
      this.fail(this.pos, `expected ')' to close the type annotation opened at ${at.line}:${at.column}, found ${this.describe(this.peek())}`);
    }
    this.pos++;
    return t;
  }

  /** After `/-`: any line space (newlines, comments), but not another `/-`. */
  private slashdash(): void {
    this.pos += 2;
    this.skipLineSpace();
    if (this.at(SLASH, MINUS)) this.fail(this.pos, "'/-' cannot comment out another '/-'");
  }

  // ---- values ----

  private stringOnly(what: string): string {
    const start = this.pos;
    const v = this.value(what);
    if (this.kind !== 'string') {
      const text = this.src.slice(start, this.pos);
      this.fail(start, `${what} must be a string, not the ${this.kind} ${text} (quote it: "${text}")`);
    }
    return v as string;
  }

  private value(what: string): KdlValue {
    const c = this.peek();
    if (c === QUOTE) {
      this.kind = 'string';
      return this.quoted();
    }
    if (c === HASH) {
      const d = this.src.charCodeAt(this.pos + 1);
      if (d === QUOTE || d === HASH) {
        this.kind = 'string';
        return this.raw();
      }
      return this.keyword();
    }
    if (c !== EOF && isIdentChar(c)) return this.bare();
    return this.fail(this.pos, `expected ${what}, found ${this.describe(c)}`);
  }

  private keyword(): KdlValue {
    const start = this.pos;
    this.pos++;
    while (this.pos < this.len && isIdentChar(this.src.charCodeAt(this.pos))) this.pos++;
    const word = this.src.slice(start + 1, this.pos);
    switch (word) {
      case 'true':
        this.kind = 'keyword';
        return true;
      case 'false':
        this.kind = 'keyword';
        return false;
      case 'null':
        this.kind = 'keyword';
        return null;
      case 'inf':
        this.kind = 'number';
        return Infinity;
      case '-inf':
        this.kind = 'number';
        return -Infinity;
      case 'nan':
        this.kind = 'number';
        return NaN;
    }
    if (word === '') return this.fail(start, "'#' must start a keyword (#true, #false, #null, #inf, #-inf, #nan) or a raw string (#\"...\"#)");
    return this.fail(start, `unknown keyword #${word}: KDL 2.0 keywords are #true, #false, #null, #inf, #-inf and #nan`);
  }

  /** A bare word: a number if it starts like one, else an identifier string. */
  private bare(): KdlValue {
    const start = this.pos;
    while (this.pos < this.len && isIdentChar(this.src.charCodeAt(this.pos))) this.pos++;
    const word = this.src.slice(start, this.pos);
    if (looksNumeric(word)) {
      this.kind = 'number';
      return this.number(word, start);
    }
    if (KEYWORD_IDENTS.has(word)) {
      const what = word === 'null' ? 'null' : word === 'true' || word === 'false' ? 'boolean' : 'number';
      this.fail(start, `bare ${word} is not allowed in KDL 2.0: write #${word} for the ${what}, or "${word}" for the string`);
    }
    this.kind = 'string';
    return word;
  }

  private number(word: string, start: number): number {
    const r = RADIX_PREFIX.exec(word);
    if (r) {
      const spec = RADIX_DIGITS[r[2]!]!;
      if (!spec.re.test(r[3]!)) this.fail(start, `invalid ${spec.name} number ${word}`);
      // kdljs computed sign * parseInt(digits); kept so values (including -0) are identical
      return (r[1] === '-' ? -1 : 1) * parseInt(r[3]!.replace(/_/g, ''), spec.radix);
    }
    if (!DECIMAL.test(word)) {
      const c0 = word.charCodeAt(0);
      if (c0 === 0x2e || word.charCodeAt(1) === 0x2e) this.fail(start, `invalid number ${word}: a number needs a digit before the decimal point (0.5, not .5)`);
      this.fail(start, `invalid number ${word} (a bare word that starts like a number must be one; quote it for a string: "${word}")`);
    }
    return parseFloat(word.replace(/_/g, ''));
  }

  private quoted(): string {
    const start = this.pos;
    if (this.src.startsWith('"""', this.pos)) return this.multiline(start);
    this.pos++;
    let out = '';
    let chunk = this.pos;
    for (;;) {
      if (this.pos >= this.len) this.fail(start, 'unterminated string: no closing "');
      const c = this.src.charCodeAt(this.pos);
      if (c === QUOTE) {
        out += this.src.slice(chunk, this.pos);
        this.pos++;
        return out;
      }
      if (c === BACKSLASH) {
        out += this.src.slice(chunk, this.pos);
        out += this.escape(start);
        chunk = this.pos;
        continue;
      }
      if (isNewline(c)) this.fail(this.pos, 'a quoted string cannot span lines: use \\n, a \\ before the line break, or a multi-line """ string');
      this.pos++;
    }
  }

  /** At a backslash inside a quoted string: returns what it stands for ('' for escaped whitespace). */
  private escape(stringStart: number): string {
    const at = this.pos;
    const c = this.src.charCodeAt(at + 1);
    if (Number.isNaN(c)) this.fail(stringStart, 'unterminated string: no closing "');
    if (isSpace(c) || isNewline(c)) {
      this.pos++;
      while (this.pos < this.len) {
        const d = this.src.charCodeAt(this.pos);
        if (isSpace(d)) this.pos++;
        else if (isNewline(d)) this.pos += this.newlineLength(this.pos);
        else break;
      }
      return '';
    }
    const ch = String.fromCharCode(c);
    const simple = SIMPLE_ESCAPES[ch];
    if (simple !== undefined) {
      this.pos += 2;
      return simple;
    }
    if (ch === 'u') {
      this.pos += 2;
      if (this.peek() !== LBRACE) this.fail(at, 'a Unicode escape is written \\u{hex}, e.g. \\u{e9} or \\u{1F600}');
      this.pos++;
      const hs = this.pos;
      while (isHex(this.src.charCodeAt(this.pos)) && this.pos - hs < 7) this.pos++;
      const hex = this.src.slice(hs, this.pos);
      if (this.peek() !== RBRACE || hex.length === 0 || hex.length > 6) this.fail(at, 'a Unicode escape is written \\u{hex} with 1 to 6 hex digits');
      this.pos++;
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.fail(at, `\\u{${hex}} is not a Unicode scalar value`);
      return String.fromCodePoint(cp);
    }
    const shown = String.fromCodePoint(this.src.codePointAt(at + 1)!);
    return this.fail(at, `invalid escape \\${shown}: KDL 2.0 knows \\n \\r \\t \\\\ \\" \\b \\f \\s \\u{...} and \\ before whitespace`);
  }

  /**
   * `"""` strings. The spec resolves whitespace escapes first, then dedents, then the other escapes, so
   * the first pass splits lines with whitespace escapes removed and other escapes kept as written.
   */
  private multiline(start: number): string {
    this.pos += 3;
    this.multilineOpening(start);
    const lines: string[] = [];
    const lineAt: number[] = [this.pos];
    let cur = '';
    let chunk = this.pos;
    for (;;) {
      if (this.pos >= this.len) this.fail(start, 'unterminated multi-line string: no closing """');
      const c = this.src.charCodeAt(this.pos);
      if (c === QUOTE && this.src.startsWith('"""', this.pos)) {
        cur += this.src.slice(chunk, this.pos);
        this.pos += 3;
        break;
      }
      if (c === BACKSLASH) {
        cur += this.src.slice(chunk, this.pos);
        const e = this.pos;
        const next = this.src.charCodeAt(e + 1);
        const dropped = isSpace(next) || isNewline(next);
        this.escape(start); // validates; other escapes are decoded after the dedent
        if (!dropped) cur += this.src.slice(e, this.pos);
        chunk = this.pos;
        continue;
      }
      if (isNewline(c)) {
        lines.push(cur + this.src.slice(chunk, this.pos));
        cur = '';
        this.pos += this.newlineLength(this.pos);
        chunk = this.pos;
        lineAt.push(this.pos);
        continue;
      }
      this.pos++;
    }
    lines.push(cur);
    return this.dedent(lines, lineAt, true);
  }

  private multilineOpening(start: number): void {
    if (!isNewline(this.peek())) {
      this.fail(start, 'a multi-line string needs a line break right after its opening """ (for one line, use "...")');
    }
    this.pos += this.newlineLength(this.pos);
  }

  /** Removes the closing line's whitespace prefix from every line; whitespace-only lines become empty. */
  private dedent(lines: string[], lineAt: number[], escapes: boolean): string {
    const prefix = lines.pop()!;
    if (!allSpace(prefix)) this.fail(lineAt[lines.length]!, 'the closing """ of a multi-line string must be on its own line, after whitespace only');
    const out: string[] = [];
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      if (allSpace(l)) {
        out.push('');
        continue;
      }
      if (!l.startsWith(prefix)) {
        this.fail(lineAt[i]!, `this line of a multi-line string does not start with the closing line's indentation (${prefix.length} whitespace character${prefix.length === 1 ? '' : 's'}, matched exactly)`);
      }
      const body = l.slice(prefix.length);
      out.push(escapes ? decodeEscapes(body) : body);
    }
    return out.join('\n');
  }

  /** `#"..."#`, `##"..."##`, and the multi-line `#"""` form: no escapes at all. */
  private raw(): string {
    const start = this.pos;
    while (this.peek() === HASH) this.pos++;
    const hashes = this.src.slice(start, this.pos);
    if (this.peek() !== QUOTE) this.fail(start, `expected '"' after ${hashes} (a raw string is written #"..."#)`);
    if (this.src.startsWith('"""', this.pos)) {
      this.pos += 3;
      this.multilineOpening(start);
      const close = '"""' + hashes;
      const end = this.src.indexOf(close, this.pos);
      if (end < 0) this.fail(start, `unterminated multi-line raw string: no closing ${close}`);
      const lines: string[] = [];
      const lineAt: number[] = [this.pos];
      let from = this.pos;
      for (let i = this.pos; i < end; i++) {
        if (!isNewline(this.src.charCodeAt(i))) continue;
        lines.push(this.src.slice(from, i));
        i += this.newlineLength(i) - 1;
        from = i + 1;
        lineAt.push(from);
      }
      lines.push(this.src.slice(from, end));
      this.pos = end + close.length;
      return this.dedent(lines, lineAt, false);
    }
    this.pos++;
    const close = '"' + hashes;
    const end = this.src.indexOf(close, this.pos);
    if (end < 0) this.fail(start, `unterminated raw string: no closing ${close}`);
    for (let i = this.pos; i < end; i++) {
      if (isNewline(this.src.charCodeAt(i))) this.fail(i, `a raw string cannot span lines (before its closing ${close}); use a multi-line ${hashes}"""...${'"""'}${hashes} string`);
    }
    const s = this.src.slice(this.pos, end);
    this.pos = end + close.length;
    return s;
  }

  // ---- whitespace and comments ----

  /** node-space: whitespace, /* comments * / and line continuations. Returns whether any was consumed. */
  private skipNodeSpace(): boolean {
    const s = this.pos;
    for (;;) {
      const c = this.peek();
      if (isSpace(c)) this.pos++;
      else if (c === SLASH && this.src.charCodeAt(this.pos + 1) === STAR) this.blockComment();
      else if (c === BACKSLASH) this.escline();
      else break;
    }
    return this.pos > s;
  }

  /** line-space: node-space plus newlines and // comments. */
  private skipLineSpace(): void {
    for (;;) {
      if (this.skipNodeSpace()) continue;
      const c = this.peek();
      if (isNewline(c)) this.pos += this.newlineLength(this.pos);
      else if (this.at(SLASH, SLASH)) this.lineComment();
      else return;
    }
  }

  private escline(): void {
    const at = this.pos;
    this.pos++;
    for (;;) {
      const c = this.peek();
      if (isSpace(c)) this.pos++;
      else if (c === SLASH && this.src.charCodeAt(this.pos + 1) === STAR) this.blockComment();
      else break;
    }
    const c = this.peek();
    if (c === EOF) return;
    if (isNewline(c)) this.pos += this.newlineLength(this.pos);
    else if (this.at(SLASH, SLASH)) this.lineComment();
    else this.fail(at, `a line continuation '\\' must be followed by a line break (or a // comment), found ${this.describe(c)}`);
  }

  private lineComment(): void {
    this.pos += 2;
    while (this.pos < this.len && !isNewline(this.src.charCodeAt(this.pos))) this.pos++;
    if (this.pos < this.len) this.pos += this.newlineLength(this.pos);
  }

  /** `/* ... * /`, nested. */
  private blockComment(): void {
    const open = this.pos;
    this.pos += 2;
    let depth = 1;
    while (depth > 0) {
      if (this.pos >= this.len) this.fail(open, "unterminated /* comment: no closing '*/'");
      const c = this.src.charCodeAt(this.pos);
      const d = this.src.charCodeAt(this.pos + 1);
      if (c === SLASH && d === STAR) {
        depth++;
        this.pos += 2;
      } else if (c === STAR && d === SLASH) {
        depth--;
        this.pos += 2;
      } else this.pos++;
    }
  }

  // ---- helpers ----

  private peek(): number {
    return this.pos < this.len ? this.src.charCodeAt(this.pos) : EOF;
  }

  private at(a: number, b: number): boolean {
    return this.src.charCodeAt(this.pos) === a && this.src.charCodeAt(this.pos + 1) === b;
  }

  private newlineLength(i: number): number {
    return this.src.charCodeAt(i) === 0x0d && this.src.charCodeAt(i + 1) === 0x0a ? 2 : 1;
  }

  private describe(c: number): string {
    if (c === EOF) return 'the end of the file';
    if (isNewline(c)) return 'a line break';
    const ch = String.fromCodePoint(this.src.codePointAt(this.pos) ?? c);
    return c === 0x27 ? `"'"` : `'${ch}'`;
  }

  private lineIndex(offset: number): number {
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  position(offset: number): KdlPosition {
    const li = this.lineIndex(offset);
    const from = this.lineStarts[li]!;
    let column = 1;
    for (let i = from; i < offset; i++) {
      const c = this.src.charCodeAt(i);
      if (c < 0xdc00 || c > 0xdfff) column++; // a low surrogate belongs to the code point before it
    }
    return { line: li + 1, column };
  }

  /** Throws a KdlSyntaxError; an error at the end of the file is reported just after the last non-blank line. */
  private fail(offset: number, reason: string): never {
    if (offset >= this.len) {
      let li = this.lineIndex(this.len);
      while (li > 0 && this.lineText(li).trim() === '') li--;
      offset = this.lineStarts[li]! + this.lineText(li).length;
    }
    const p = this.position(offset);
    throw new KdlSyntaxError(reason, p.line, p.column, offset, this.snippet(offset));
  }

  /** Line `i` (0-based) without its newline. */
  private lineText(i: number): string {
    const from = this.lineStarts[i]!;
    let to = this.lineStarts[i + 1] ?? this.len;
    while (to > from && isNewline(this.src.charCodeAt(to - 1))) to--;
    return this.src.slice(from, to);
  }

  /** The line holding `offset` and a caret under it. */
  private snippet(offset: number): string {
    const li = this.lineIndex(offset);
    let text = this.lineText(li);
    let col = offset - this.lineStarts[li]!;
    // long lines: show a window around the spot
    if (text.length > 120) {
      const from = Math.max(0, col - 60);
      text = (from > 0 ? '...' : '') + text.slice(from, from + 120) + (from + 120 < text.length ? '...' : '');
      col = col - from + (from > 0 ? 3 : 0);
    }
    const gutter = String(li + 1);
    // keep tabs in the caret line so the caret lines up under tab-indented source
    const pad = text.slice(0, col).replace(/[^\t]/g, ' ');
    return `  ${gutter} | ${text}\n  ${' '.repeat(gutter.length)} | ${pad}^`;
  }
}

/** A bare word is a number when it starts with a digit, or a sign or '.' then a digit, or a sign, '.', digit. */
function looksNumeric(w: string): boolean {
  let i = 0;
  const c0 = w.charCodeAt(0);
  if (c0 === 0x2b || c0 === MINUS) i = 1;
  if (w.charCodeAt(i) === 0x2e) i++;
  return isDigit(w.charCodeAt(i));
}

/** Resolves the (already validated) non-whitespace escapes of a multi-line string line. */
function decodeEscapes(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(/\\(u\{([0-9a-fA-F]{1,6})\}|.)/g, (_m, e: string, hex: string | undefined) =>
    hex !== undefined ? String.fromCodePoint(parseInt(hex, 16)) : SIMPLE_ESCAPES[e]!,
  );
}
