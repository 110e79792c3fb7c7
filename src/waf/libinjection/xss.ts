// XSS detection in libinjection's manner: run the HTML5 tokenizer from each context
// the input could be reflected into, and flag dangerous tags, event-handler and other
// dangerous attributes, script-capable URL schemes, style, and IE/XML comment tricks.
import * as html5 from './html5.ts';

// read once: under tsx each use of an imported binding is a getter call
const { H5Start, H5Type, Html5Tokenizer } = html5;
type H5Start = html5.H5Start;

/** What an attribute's value needs checking for. */
const ATTR = {
  NONE: 0,
  /** always dangerous, whatever the value */
  BLACK: 1,
  /** value is a URL: check its scheme */
  URL: 2,
  /** value is CSS */
  STYLE: 3,
  /** value names another attribute (SVG attributeName) */
  INDIRECT: 4,
} as const;
type AttrKind = (typeof ATTR)[keyof typeof ATTR];

const DANGEROUS_ATTRS: ReadonlyArray<[string, AttrKind]> = [
  ['ACTION', ATTR.URL], // form
  ['ATTRIBUTENAME', ATTR.INDIRECT], // SVG animation target
  ['BY', ATTR.URL], // SVG
  ['BACKGROUND', ATTR.URL], // IE6, Opera 11
  ['DATAFORMATAS', ATTR.BLACK], // IE
  ['DATASRC', ATTR.BLACK], // IE
  ['DYNSRC', ATTR.URL], // obsolete img attribute
  ['FILTER', ATTR.STYLE], // Opera, SVG inline style
  ['FORMACTION', ATTR.URL], // HTML5
  ['FOLDER', ATTR.URL], // IE, on <a>
  ['FROM', ATTR.URL], // SVG
  ['HANDLER', ATTR.URL], // SVG Tiny, Opera
  ['HREF', ATTR.URL],
  ['LOWSRC', ATTR.URL], // obsolete img attribute
  ['POSTER', ATTR.URL], // Opera 10, 11
  ['SRC', ATTR.URL],
  ['STYLE', ATTR.STYLE],
  ['TO', ATTR.URL], // SVG
  ['VALUES', ATTR.URL], // SVG
  ['XLINK:HREF', ATTR.URL],
];

const DANGEROUS_TAGS = [
  'APPLET', 'BASE', 'COMMENT', 'EMBED', 'FRAME', 'FRAMESET', 'HANDLER', 'IFRAME', 'IMPORT',
  'ISINDEX', 'LINK', 'LISTENER', 'META', 'NOSCRIPT', 'OBJECT', 'SCRIPT', 'STYLE', 'VMLFRAME',
  'XML', 'XSS',
];

/**
 * Does s[start, start+len) spell `upperWord`, ignoring case and NUL bytes (browsers
 * dropped NULs inside names)?
 */
function equalsIgnoringNul(upperWord: string, s: string, start: number, len: number): boolean {
  let w = 0;
  for (let i = start; i < start + len; i++) {
    let c = s.charCodeAt(i);
    if (c === 0) continue;
    if (c >= 0x61 && c <= 0x7a) c -= 0x20;
    if (w >= upperWord.length || upperWord.charCodeAt(w) !== c) return false;
    w++;
  }
  return w === upperWord.length;
}

function lowerAt(s: string, i: number): number {
  return s.charCodeAt(i) | 0x20;
}

function startsWithLetters(s: string, start: number, lower3: string): boolean {
  return (
    lowerAt(s, start) === lower3.charCodeAt(0) &&
    lowerAt(s, start + 1) === lower3.charCodeAt(1) &&
    lowerAt(s, start + 2) === lower3.charCodeAt(2)
  );
}

function isDangerousTag(s: string, start: number, len: number): boolean {
  if (len < 3) return false;
  for (const tag of DANGEROUS_TAGS) {
    if (equalsIgnoringNul(tag, s, start, len)) return true;
  }
  // anything SVG or XSL(T)
  return startsWithLetters(s, start, 'svg') || startsWithLetters(s, start, 'xsl');
}

function attrKind(s: string, start: number, len: number): AttrKind {
  if (len < 2) return ATTR.NONE;
  if (len >= 5) {
    // on* event handlers
    if (lowerAt(s, start) === 0x6f && lowerAt(s, start + 1) === 0x6e) return ATTR.BLACK;
    // xmlns / xlink can define arbitrary tags
    if (equalsIgnoringNul('XMLNS', s, start, 5) || equalsIgnoringNul('XLINK', s, start, 5)) return ATTR.BLACK;
  }
  for (const [name, kind] of DANGEROUS_ATTRS) {
    if (equalsIgnoringNul(name, s, start, len)) return kind;
  }
  return ATTR.NONE;
}

const HEX_VALUE = new Int16Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX_VALUE[0x30 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX_VALUE[0x41 + i] = 10 + i;
  HEX_VALUE[0x61 + i] = 10 + i;
}

/** Largest numeric entity value honoured; bigger ones decode as a literal '&'. */
const MAX_ENTITY = 0x1000ff;

/**
 * Decodes one character at s[i] (end exclusive at `end`), understanding numeric
 * entities (&#65; &#x41;) and returning [code, bytes consumed]. Named entities are left
 * alone: only '&' is returned for them.
 */
function decodeCharAt(s: string, i: number, end: number): [number, number] {
  const n = end - i;
  const c = s.charCodeAt(i);
  if (c !== 0x26 || n < 2) return [c, 1];
  if (s.charCodeAt(i + 1) !== 0x23) return [0x26, 1];
  const hex = (byteAt(s, i + 2, end) | 0x20) === 0x78;
  const base = hex ? 16 : 10;
  let k = hex ? 3 : 2;
  let val = digitValue(byteAt(s, i + k, end), base);
  if (val < 0) return [0x26, 1];
  k += 1;
  while (k < n) {
    const b = s.charCodeAt(i + k);
    if (b === 0x3b) return [val, k + 1];
    const d = digitValue(b, base);
    if (d < 0) return [val, k];
    val = val * base + d;
    if (val > MAX_ENTITY) return [0x26, 1];
    k += 1;
  }
  return [val, k];
}

/** s[i] or 0 past the end (the C original reads the terminating NUL there). */
function byteAt(s: string, i: number, end: number): number {
  return i < end ? s.charCodeAt(i) : 0;
}

function digitValue(b: number, base: number): number {
  const d = HEX_VALUE[b & 0xff] as number;
  return b < 0x100 && d >= 0 && d < base ? d : -1;
}

/**
 * Does the (HTML-entity-encoded) value start with `upperPrefix`, ignoring case, leading
 * white space/control characters, NULs and newlines anywhere?
 */
function decodedStartsWith(upperPrefix: string, s: string, start: number, end: number): boolean {
  let w = 0;
  let i = start;
  let first = true;
  while (i < end) {
    if (w === upperPrefix.length) return true;
    const [code, used] = decodeCharAt(s, i, end);
    i += used;
    if (first && code <= 32) continue;
    first = false;
    if (code === 0 || code === 10) continue;
    let cu = code >= 0x61 && code <= 0x7a ? code - 0x20 : code;
    cu &= 0xff; // the C original compares as char
    if (upperPrefix.charCodeAt(w) !== cu) return false;
    w++;
  }
  return w === upperPrefix.length;
}

/** Script-capable or otherwise dangerous URL schemes (JAVA covers javascript:). */
const DANGEROUS_SCHEMES = ['DATA', 'VIEW-SOURCE', 'JAVA', 'VBSCRIPT'];

function isDangerousUrl(s: string, start: number, len: number): boolean {
  let i = start;
  const end = start + len;
  // skip leading controls, spaces and any high bytes (UTF-8 spaces, ignored EUC-JP bytes)
  while (i < end) {
    const c = s.charCodeAt(i);
    if (c > 32 && c < 127) break;
    i++;
  }
  for (const scheme of DANGEROUS_SCHEMES) {
    if (decodedStartsWith(scheme, s, i, end)) return true;
  }
  return false;
}

function isDangerousComment(s: string, start: number, len: number): boolean {
  // IE treats '`' as a tag end inside comments
  const tick = s.indexOf('`', start);
  if (tick !== -1 && tick < start + len) return true;
  if (len > 3) {
    // IE conditional comment <!--[if ...]> and <?xml ...>
    if (s.charCodeAt(start) === 0x5b && lowerAt(s, start + 1) === 0x69 && lowerAt(s, start + 2) === 0x66) return true;
    if (startsWithLetters(s, start, 'xml')) return true;
  }
  if (len > 5) {
    // IE <?import> pseudo-tag, XML entity definitions
    if (equalsIgnoringNul('IMPORT', s, start, 6) || equalsIgnoringNul('ENTITY', s, start, 6)) return true;
  }
  return false;
}

/** Checks `input` as if it started in the given tokenizer context. */
export function isXssInContext(input: string, context: H5Start): boolean {
  const h = new Html5Tokenizer(input, context);
  let attr: AttrKind = ATTR.NONE;
  while (h.next()) {
    const { tokenType: type, tokenStart: start, tokenLen: len } = h;
    if (type !== H5Type.ATTR_VALUE) attr = ATTR.NONE;
    switch (type) {
      case H5Type.DOCTYPE:
        return true;
      case H5Type.TAG_NAME_OPEN:
        if (isDangerousTag(input, start, len)) return true;
        break;
      case H5Type.ATTR_NAME:
        attr = attrKind(input, start, len);
        break;
      case H5Type.ATTR_VALUE:
        if (attr === ATTR.BLACK || attr === ATTR.STYLE) return true;
        if (attr === ATTR.URL && isDangerousUrl(input, start, len)) return true;
        if (attr === ATTR.INDIRECT && attrKind(input, start, len) !== ATTR.NONE) return true;
        attr = ATTR.NONE;
        break;
      case H5Type.TAG_COMMENT:
        if (isDangerousComment(input, start, len)) return true;
        break;
    }
  }
  return false;
}

const CONTEXTS: readonly H5Start[] = [
  H5Start.DATA,
  H5Start.VALUE_NO_QUOTE,
  H5Start.VALUE_SINGLE_QUOTE,
  H5Start.VALUE_DOUBLE_QUOTE,
  H5Start.VALUE_BACK_QUOTE,
];

/** A char that can end a text run, an attribute name or an unquoted or quoted attribute value,
 * or open a tag (html5.ts: white space and NUL, quotes, '<', '>', '/', '='). Without any, each
 * context yields a single token (text, an attribute name with no value, or a value with no name
 * before it), which isXssInContext never flags: most argument values (numbers, ids, words). */
const TOKEN_BREAK = /[\x00\x09-\x0d\x20"'`<>/=]/;

/** XSS check over every context: text, and unquoted/'/"/` attribute values. */
export function isXss(input: string): boolean {
  // Five tokenizers over a plain value cost ~50 k instructions (a GET's only new argument).
  if (!TOKEN_BREAK.test(input)) return false;
  for (const ctx of CONTEXTS) {
    if (isXssInContext(input, ctx)) return true;
  }
  return false;
}
