// A small HTML5-style tokenizer in libinjection's manner: it follows the HTML5 tokenizer
// states closely enough to find tags, attributes and comments the way browsers would,
// plus a few legacy-browser quirks (NUL bytes ignored, back-tick quoted values, <% %>).
// The input is a latin1 "binary" string; a tokenizer can start inside an attribute value
// so that input reflected into an attribute can be checked.

export const H5Type = {
  DATA_TEXT: 'DATA_TEXT',
  TAG_NAME_OPEN: 'TAG_NAME_OPEN',
  TAG_NAME_CLOSE: 'TAG_NAME_CLOSE',
  TAG_NAME_SELFCLOSE: 'TAG_NAME_SELFCLOSE',
  TAG_DATA: 'TAG_DATA',
  TAG_CLOSE: 'TAG_CLOSE',
  ATTR_NAME: 'ATTR_NAME',
  ATTR_VALUE: 'ATTR_VALUE',
  TAG_COMMENT: 'TAG_COMMENT',
  DOCTYPE: 'DOCTYPE',
} as const;
export type H5Type = (typeof H5Type)[keyof typeof H5Type];

/** Where tokenizing starts: in text, or inside an attribute value of some quoting. */
export const H5Start = {
  DATA: 0,
  VALUE_NO_QUOTE: 1,
  VALUE_SINGLE_QUOTE: 2,
  VALUE_DOUBLE_QUOTE: 3,
  VALUE_BACK_QUOTE: 4,
} as const;
export type H5Start = (typeof H5Start)[keyof typeof H5Start];

const GT = 0x3e;
const SLASH = 0x2f;
const BANG = 0x21;
const QUESTION = 0x3f;
const PERCENT = 0x25;
const EQUALS = 0x3d;
const DOUBLE = 0x22;
const SINGLE = 0x27;
const TICK = 0x60;
const DASH = 0x2d;
const RIGHT_BRACKET = 0x5d;
const EOF = -1;

/** Space, tab, LF, VT, FF, CR - and NUL, which old IE skipped. */
function isH5White(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0;
}

function isAsciiLetter(c: number): boolean {
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x7a;
}

type StateFn = (h: Html5Tokenizer) => boolean;

/**
 * Pull tokenizer: each next() call yields one token in tokenType/tokenStart/tokenLen,
 * or returns false at the end.
 */
export class Html5Tokenizer {
  readonly s: string;
  readonly len: number;
  pos = 0;
  isClose = false;
  state: StateFn;
  tokenType: H5Type = H5Type.DATA_TEXT as H5Type;
  tokenStart = 0;
  tokenLen = 0;

  constructor(s: string, start: H5Start = H5Start.DATA) {
    this.s = s;
    this.len = s.length;
    this.state = START_STATES[start];
  }

  next(): boolean {
    return this.state(this);
  }

  /** The current token's text. */
  get token(): string {
    return this.s.substr(this.tokenStart, this.tokenLen);
  }

  emit(type: H5Type, start: number, len: number): true {
    this.tokenType = type;
    this.tokenStart = start;
    this.tokenLen = len;
    return true;
  }

  /** Skips white space; returns the next byte or EOF. */
  skipWhite(): number {
    while (this.pos < this.len) {
      const c = this.s.charCodeAt(this.pos);
      if (!isH5White(c)) return c;
      this.pos += 1;
    }
    return EOF;
  }
}

function stateEof(): boolean {
  return false;
}

function stateData(h: Html5Tokenizer): boolean {
  const lt = h.s.indexOf('<', h.pos);
  if (lt === -1) {
    h.emit(H5Type.DATA_TEXT, h.pos, h.len - h.pos);
    h.state = stateEof;
    return h.tokenLen !== 0;
  }
  h.emit(H5Type.DATA_TEXT, h.pos, lt - h.pos);
  h.pos = lt + 1;
  h.state = stateTagOpen;
  if (h.tokenLen === 0) return stateTagOpen(h);
  return true;
}

function stateTagOpen(h: Html5Tokenizer): boolean {
  if (h.pos >= h.len) return false;
  const c = h.s.charCodeAt(h.pos);
  if (c === BANG) {
    h.pos += 1;
    return stateMarkupDeclarationOpen(h);
  }
  if (c === SLASH) {
    h.pos += 1;
    h.isClose = true;
    return stateEndTagOpen(h);
  }
  if (c === QUESTION) {
    h.pos += 1;
    return stateBogusComment(h);
  }
  if (c === PERCENT) {
    // <% ... %> comments of old IE and Safari
    h.pos += 1;
    return stateBogusComment2(h);
  }
  if (isAsciiLetter(c) || c === 0) return stateTagName(h);
  // not a tag after all: the '<' is text
  if (h.pos === 0) return stateData(h);
  h.emit(H5Type.DATA_TEXT, h.pos - 1, 1);
  h.state = stateData;
  return true;
}

function stateEndTagOpen(h: Html5Tokenizer): boolean {
  if (h.pos >= h.len) return false;
  const c = h.s.charCodeAt(h.pos);
  if (c === GT) return stateData(h);
  if (isAsciiLetter(c)) return stateTagName(h);
  h.isClose = false;
  return stateBogusComment(h);
}

/** Emits the '>' that closes a start tag. */
function stateTagNameClose(h: Html5Tokenizer): boolean {
  h.isClose = false;
  h.emit(H5Type.TAG_NAME_CLOSE, h.pos, 1);
  h.pos += 1;
  h.state = h.pos < h.len ? stateData : stateEof;
  return true;
}

function stateTagName(h: Html5Tokenizer): boolean {
  const { s, len } = h;
  for (let p = h.pos; p < len; p++) {
    const c = s.charCodeAt(p);
    if (c === 0) continue; // NULs inside tag names were ignored by old browsers
    if (isH5White(c)) {
      h.emit(H5Type.TAG_NAME_OPEN, h.pos, p - h.pos);
      h.pos = p + 1;
      h.state = stateBeforeAttributeName;
      return true;
    }
    if (c === SLASH) {
      h.emit(H5Type.TAG_NAME_OPEN, h.pos, p - h.pos);
      h.pos = p + 1;
      h.state = stateSelfClosingStartTag;
      return true;
    }
    if (c === GT) {
      if (h.isClose) {
        h.emit(H5Type.TAG_CLOSE, h.pos, p - h.pos);
        h.pos = p + 1;
        h.isClose = false;
        h.state = stateData;
      } else {
        h.emit(H5Type.TAG_NAME_OPEN, h.pos, p - h.pos);
        h.pos = p;
        h.state = stateTagNameClose;
      }
      return true;
    }
  }
  h.emit(H5Type.TAG_NAME_OPEN, h.pos, len - h.pos);
  h.state = stateEof;
  return true;
}

function stateBeforeAttributeName(h: Html5Tokenizer): boolean {
  const c = h.skipWhite();
  if (c === EOF) return false;
  if (c === SLASH) {
    h.pos += 1;
    return stateSelfClosingStartTag(h);
  }
  if (c === GT) {
    h.state = stateData;
    h.emit(H5Type.TAG_NAME_CLOSE, h.pos, 1);
    h.pos += 1;
    return true;
  }
  return stateAttributeName(h);
}

function stateAttributeName(h: Html5Tokenizer): boolean {
  const { s, len } = h;
  // the first character belongs to the name whatever it is (even '=' or '"')
  for (let p = h.pos + 1; p < len; p++) {
    const c = s.charCodeAt(p);
    let next: StateFn | undefined;
    let resume = p + 1;
    if (isH5White(c)) next = stateAfterAttributeName;
    else if (c === SLASH) next = stateSelfClosingStartTag;
    else if (c === EQUALS) next = stateBeforeAttributeValue;
    else if (c === GT) {
      next = stateTagNameClose;
      resume = p;
    }
    if (next) {
      h.emit(H5Type.ATTR_NAME, h.pos, p - h.pos);
      h.state = next;
      h.pos = resume;
      return true;
    }
  }
  h.emit(H5Type.ATTR_NAME, h.pos, len - h.pos);
  h.state = stateEof;
  h.pos = len;
  return true;
}

function stateAfterAttributeName(h: Html5Tokenizer): boolean {
  const c = h.skipWhite();
  if (c === EOF) return false;
  if (c === SLASH) {
    h.pos += 1;
    return stateSelfClosingStartTag(h);
  }
  if (c === EQUALS) {
    h.pos += 1;
    return stateBeforeAttributeValue(h);
  }
  if (c === GT) return stateTagNameClose(h);
  return stateAttributeName(h);
}

function stateBeforeAttributeValue(h: Html5Tokenizer): boolean {
  const c = h.skipWhite();
  if (c === EOF) {
    h.state = stateEof;
    return false;
  }
  if (c === DOUBLE) return stateValueDoubleQuote(h);
  if (c === SINGLE) return stateValueSingleQuote(h);
  if (c === TICK) return stateValueBackQuote(h); // IE only
  return stateValueNoQuote(h);
}

function valueInQuotes(h: Html5Tokenizer, quote: string): boolean {
  // At position 0 we were started inside the value, so there is no opening quote to skip.
  if (h.pos > 0) h.pos += 1;
  const end = h.s.indexOf(quote, h.pos);
  if (end === -1) {
    h.emit(H5Type.ATTR_VALUE, h.pos, h.len - h.pos);
    h.state = stateEof;
  } else {
    h.emit(H5Type.ATTR_VALUE, h.pos, end - h.pos);
    h.state = stateAfterAttributeValueQuoted;
    h.pos = end + 1;
  }
  return true;
}

function stateValueDoubleQuote(h: Html5Tokenizer): boolean {
  return valueInQuotes(h, '"');
}

function stateValueSingleQuote(h: Html5Tokenizer): boolean {
  return valueInQuotes(h, "'");
}

function stateValueBackQuote(h: Html5Tokenizer): boolean {
  return valueInQuotes(h, '`');
}

function stateValueNoQuote(h: Html5Tokenizer): boolean {
  const { s, len } = h;
  for (let p = h.pos; p < len; p++) {
    const c = s.charCodeAt(p);
    if (isH5White(c)) {
      h.emit(H5Type.ATTR_VALUE, h.pos, p - h.pos);
      h.pos = p + 1;
      h.state = stateBeforeAttributeName;
      return true;
    }
    if (c === GT) {
      h.emit(H5Type.ATTR_VALUE, h.pos, p - h.pos);
      h.pos = p;
      h.state = stateTagNameClose;
      return true;
    }
  }
  h.state = stateEof;
  h.emit(H5Type.ATTR_VALUE, h.pos, len - h.pos);
  return true;
}

function stateAfterAttributeValueQuoted(h: Html5Tokenizer): boolean {
  if (h.pos >= h.len) return false;
  const c = h.s.charCodeAt(h.pos);
  if (isH5White(c)) {
    h.pos += 1;
    return stateBeforeAttributeName(h);
  }
  if (c === SLASH) {
    h.pos += 1;
    return stateSelfClosingStartTag(h);
  }
  if (c === GT) {
    h.emit(H5Type.TAG_NAME_CLOSE, h.pos, 1);
    h.pos += 1;
    h.state = stateData;
    return true;
  }
  return stateBeforeAttributeName(h);
}

function stateSelfClosingStartTag(h: Html5Tokenizer): boolean {
  if (h.pos >= h.len) return false;
  if (h.s.charCodeAt(h.pos) === GT) {
    h.emit(H5Type.TAG_NAME_SELFCLOSE, h.pos - 1, 2);
    h.state = stateData;
    h.pos += 1;
    return true;
  }
  return stateBeforeAttributeName(h);
}

/** <? ... > and other malformed markup: a comment up to the next '>'. */
function stateBogusComment(h: Html5Tokenizer): boolean {
  const gt = h.s.indexOf('>', h.pos);
  if (gt === -1) {
    h.emit(H5Type.TAG_COMMENT, h.pos, h.len - h.pos);
    h.pos = h.len;
    h.state = stateEof;
  } else {
    h.emit(H5Type.TAG_COMMENT, h.pos, gt - h.pos);
    h.pos = gt + 1;
    h.state = stateData;
  }
  return true;
}

/** <% ... %> */
function stateBogusComment2(h: Html5Tokenizer): boolean {
  const end = h.s.indexOf('%>', h.pos);
  if (end === -1) {
    h.emit(H5Type.TAG_COMMENT, h.pos, h.len - h.pos);
    h.pos = h.len;
    h.state = stateEof;
    return true;
  }
  h.emit(H5Type.TAG_COMMENT, h.pos, end - h.pos);
  h.pos = end + 2;
  h.state = stateData;
  return true;
}

function stateMarkupDeclarationOpen(h: Html5Tokenizer): boolean {
  const rest = h.len - h.pos;
  if (rest >= 7 && h.s.substr(h.pos, 7).toUpperCase() === 'DOCTYPE') return stateDoctype(h);
  if (rest >= 7 && h.s.startsWith('[CDATA[', h.pos)) {
    h.pos += 7;
    return stateCdata(h);
  }
  if (rest >= 2 && h.s.startsWith('--', h.pos)) {
    h.pos += 2;
    return stateComment(h);
  }
  return stateBogusComment(h);
}

/**
 * <!-- comment -->. Ends at '-->' or '-!>' (NULs between the two dashes are skipped,
 * as old browsers did), or at the end of input.
 */
function stateComment(h: Html5Tokenizer): boolean {
  const { s, len } = h;
  let from = h.pos;
  while (true) {
    const dash = s.indexOf('-', from);
    if (dash === -1 || dash > len - 3) return commentToEnd(h);
    let p = dash + 1;
    while (p < len && s.charCodeAt(p) === 0) p++;
    if (p === len) return commentToEnd(h);
    const c = s.charCodeAt(p);
    if (c !== DASH && c !== BANG) {
      from = dash + 1;
      continue;
    }
    p += 1;
    if (p === len) return commentToEnd(h);
    if (s.charCodeAt(p) !== GT) {
      from = dash + 1;
      continue;
    }
    h.emit(H5Type.TAG_COMMENT, h.pos, dash - h.pos);
    h.pos = p + 1;
    h.state = stateData;
    return true;
  }
}

function commentToEnd(h: Html5Tokenizer): boolean {
  h.state = stateEof;
  h.emit(H5Type.TAG_COMMENT, h.pos, h.len - h.pos);
  return true;
}

function stateCdata(h: Html5Tokenizer): boolean {
  const { s, len } = h;
  let from = h.pos;
  while (true) {
    const rb = s.indexOf(']', from);
    if (rb === -1 || rb > len - 3) {
      h.state = stateEof;
      h.emit(H5Type.DATA_TEXT, h.pos, len - h.pos);
      return true;
    }
    if (s.charCodeAt(rb + 1) === RIGHT_BRACKET && s.charCodeAt(rb + 2) === GT) {
      h.state = stateData;
      h.emit(H5Type.DATA_TEXT, h.pos, rb - h.pos);
      h.pos = rb + 3;
      return true;
    }
    from = rb + 1;
  }
}

function stateDoctype(h: Html5Tokenizer): boolean {
  const gt = h.s.indexOf('>', h.pos);
  if (gt === -1) {
    h.emit(H5Type.DOCTYPE, h.pos, h.len - h.pos);
    h.state = stateEof;
  } else {
    h.emit(H5Type.DOCTYPE, h.pos, gt - h.pos);
    h.state = stateData;
    h.pos = gt + 1;
  }
  return true;
}

const START_STATES: Record<H5Start, StateFn> = {
  [H5Start.DATA]: stateData,
  [H5Start.VALUE_NO_QUOTE]: stateBeforeAttributeName,
  [H5Start.VALUE_SINGLE_QUOTE]: stateValueSingleQuote,
  [H5Start.VALUE_DOUBLE_QUOTE]: stateValueDoubleQuote,
  [H5Start.VALUE_BACK_QUOTE]: stateValueBackQuote,
};

/** Every token of `input` as [type, text] pairs (for tests and debugging). */
export function html5Tokens(input: string, start: H5Start = H5Start.DATA): Array<[H5Type, string]> {
  const h = new Html5Tokenizer(input, start);
  const out: Array<[H5Type, string]> = [];
  while (h.next()) out.push([h.tokenType, h.token]);
  return out;
}
