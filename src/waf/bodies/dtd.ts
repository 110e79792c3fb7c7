// A document's internal DTD subset, read as far as a non-validating parser acts on it (session 27
// WAF evasion audit): internal general entities (expanded where the document refers to them, as
// libxml2 in ModSecurity, expat, Java's DOM and lxml do) and ATTLIST default values (which expat
// and Java's DOM add to elements as attributes). Bounded: no billion laughs, no quadratic blowup.
// What cannot be read faithfully is an error (REQBODY_ERROR, 400), never a silent skip.

/** The most characters entity references may add to a document: its own length, at least 64 KiB. */
export const MIN_EXPANSION_BUDGET = 64 * 1024;
/** How deep entity references may nest (libxml2 allows 40; documents in use nest one or two). */
const MAX_DEPTH = 8;

export const PREDEFINED: ReadonlyMap<string, string> = new Map([['lt', '<'], ['gt', '>'], ['amp', '&'], ['apos', "'"], ['quot', '"']]);
const NAME = /^[A-Za-z_:\u00c0-\uffff][-.0-9A-Za-z_:\u00b7\u00c0-\uffff]*$/;

export class DtdError extends Error {}

export interface Dtd {
  /** Internal general entities by name: their replacement text (character references decoded, entity references kept). */
  entities: Map<string, string>;
  /** ATTLIST default and #FIXED values, as written. */
  attributeDefaults: string[];
}

/**
 * Reads the internal subset out of saxes's doctype text (`r [<!ENTITY e "x">]`). External
 * entities are not declared (a reference to one stays undefined: an error); a parameter entity
 * reference (`%p;`) is an error, since the declarations it brings in (which bind first) are not read.
 */
export function readDoctype(doctype: string): Dtd {
  const dtd: Dtd = { entities: new Map(), attributeDefaults: [] };
  const open = subsetStart(doctype);
  if (open < 0) return dtd;
  const s = doctype;
  let i = open + 1;
  while (i < s.length) {
    const c = s[i]!;
    if (c === ']') break;
    if (c === '%') throw new DtdError('a parameter entity reference in the internal subset');
    if (s.startsWith('<!--', i)) {
      const end = s.indexOf('-->', i + 4);
      if (end < 0) throw new DtdError('an unterminated comment in the internal subset');
      i = end + 3;
    } else if (s.startsWith('<?', i)) {
      const end = s.indexOf('?>', i + 2);
      if (end < 0) throw new DtdError('an unterminated processing instruction in the internal subset');
      i = end + 2;
    } else if (c === '<') {
      i = declaration(s, i, dtd);
    } else i++;
  }
  return dtd;
}

/** Where the internal subset's `[` is (outside the external id's quoted literals), or -1. */
function subsetStart(s: string): number {
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote !== '') {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '[') return i;
  }
  return -1;
}

/** One `<!...>` markup declaration at `at`: its parts (words and quoted literals); returns the index after its `>`. */
function declaration(s: string, at: number, dtd: Dtd): number {
  const words: string[] = [];
  const literals: string[] = [];
  let i = at + 2;
  let word = '';
  for (;;) {
    if (i >= s.length) throw new DtdError('an unterminated declaration in the internal subset');
    const c = s[i]!;
    if (c === '"' || c === "'") {
      const end = s.indexOf(c, i + 1);
      if (end < 0) throw new DtdError('an unterminated literal in the internal subset');
      if (word !== '') words.push(word);
      word = '';
      literals.push(s.slice(i + 1, end));
      words.push('\0'); // where a literal stood
      i = end + 1;
      continue;
    }
    if (c === '>') break;
    if (c === '%' && word === '' && words.length > 0 && words[0] !== 'ENTITY') {
      throw new DtdError('a parameter entity reference in the internal subset');
    }
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (word !== '') words.push(word);
      word = '';
    } else word += c;
    i++;
  }
  if (word !== '') words.push(word);
  const kind = words[0];
  if (kind === 'ENTITY') {
    if (words[1] === '%') {
      // A parameter entity's declaration: harmless unless referred to, which is refused above.
      return i + 1;
    }
    const name = words[1];
    if (name === undefined || !NAME.test(name)) throw new DtdError('a malformed entity declaration');
    // `<!ENTITY e "text">` only: SYSTEM / PUBLIC (external) entities are left undeclared.
    if (words.length === 3 && words[2] === '\0' && !dtd.entities.has(name)) {
      dtd.entities.set(name, declaredText(literals[0]!)); // the first declaration binds
    }
  } else if (kind === 'ATTLIST') {
    for (const l of literals) dtd.attributeDefaults.push(l);
  }
  return i + 1;
}

/** An entity value as declared: character references decoded, entity references kept for use. */
function declaredText(value: string): string {
  if (value.includes('%')) throw new DtdError('a parameter entity reference in an entity value');
  return value.replace(/&#(x[0-9A-Fa-f]+|[0-9]+);/g, (_, n: string) => charRef(n));
}

function charRef(n: string): string {
  const code = n[0] === 'x' ? parseInt(n.slice(1), 16) : parseInt(n, 10);
  if (!(code >= 0x20 || code === 0x9 || code === 0xa || code === 0xd) || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
    throw new DtdError('a malformed character reference in an entity value');
  }
  return String.fromCodePoint(code);
}

/**
 * The text entity references expand to, with a budget of characters for the whole document:
 * `expand(name)` for a reference in the document (each reference spends the expansion's length,
 * so a large entity referred to many times runs out too; each expansion built spends its length
 * once more, so the work and the memory kept are bounded by the budget). Markup in an entity's replacement text
 * (`<`) is an error: the parser here would read it as text where the application reads elements.
 */
export class EntityExpander {
  private readonly done = new Map<string, string>();
  private budget: number;

  constructor(
    private readonly entities: Map<string, string>,
    budget: number,
  ) {
    this.budget = budget;
  }

  expand(name: string): string {
    const text = this.full(name, 0);
    this.spend(text.length);
    return text;
  }

  /** A literal (an ATTLIST default) with its references expanded. */
  expandLiteral(value: string): string {
    const text = this.resolve(declaredText(value), 0);
    this.spend(text.length);
    return text;
  }

  private spend(n: number): void {
    this.budget -= n;
    if (this.budget < 0) throw new DtdError('entity expansion over the limit');
  }

  private full(name: string, depth: number): string {
    const known = this.done.get(name);
    if (known !== undefined) return known;
    const rt = this.entities.get(name);
    if (rt === undefined) throw new DtdError(`undefined entity ${name}`);
    if (depth >= MAX_DEPTH) throw new DtdError('entity references nested too deep');
    const text = this.resolve(rt, depth + 1);
    this.done.set(name, text);
    return text;
  }

  /** Replacement text as the document reads it: references resolved, markup refused. */
  private resolve(rt: string, depth: number): string {
    if (rt.includes('<')) throw new DtdError('markup in an entity');
    if (!rt.includes('&')) return rt;
    let out = '';
    let from = 0;
    for (let at = rt.indexOf('&'); at >= 0; at = rt.indexOf('&', from)) {
      const end = rt.indexOf(';', at);
      if (end < 0) throw new DtdError('a malformed reference in an entity');
      out += rt.slice(from, at);
      const ref = rt.slice(at + 1, end);
      if (ref[0] === '#') {
        if (!/^#(x[0-9A-Fa-f]+|[0-9]+)$/.test(ref)) throw new DtdError('a malformed character reference in an entity');
        out += charRef(ref.slice(1));
      } else {
        const piece = PREDEFINED.get(ref) ?? this.full(ref, depth);
        // Text built while resolving counts too: nested references cannot build a large text, and
        // the expansions kept (one per entity) stay within the budget together.
        this.spend(piece.length);
        out += piece;
      }
      from = end + 1;
    }
    return out + rt.slice(from);
  }
}
