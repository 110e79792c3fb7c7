// XML bodies -> XML:/* (text content) and XML://@* (attribute values), the
// way Coraza exposes them. saxes is a non-validating parser that never fetches
// external entities or DTDs, so XXE payloads cannot make us do I/O.
import { SaxesParser } from 'saxes';

import { DtdError, EntityExpander, MIN_EXPANSION_BUDGET, PREDEFINED, readDoctype } from './dtd.ts';

export interface XmlResult {
  /**
   * XML:/* — each run of an element's text between two tags (text and CDATA joined across
   * comments and processing instructions), trimmed, empty ones left out; then the whole
   * document's text (what ModSecurity's XML:/* holds, the root's content) when it differs
   */
  texts: string[];
  /** XML://@* — every attribute value */
  attrs: string[];
  error?: string;
}

/**
 * The document as UTF-8 bytes (one character each, as the body's text holds them), without a byte
 * order mark: a UTF-8 BOM (what .NET's XmlWriter and many Windows tools write) and UTF-16 with a BOM
 * or detected as libxml2 detects it (`<` then NUL) were parse errors, 400, for documents ModSecurity
 * (libxml2), DOM parsers and lxml read (session 26 WAF evasion audit).
 */
function asUtf8(body: string): string {
  if (body.startsWith('\xef\xbb\xbf')) return body.slice(3);
  const le = body.startsWith('\xff\xfe') || body.startsWith('<\x00');
  const be = body.startsWith('\xfe\xff') || body.startsWith('\x00<');
  if (!le && !be) return body;
  const bom = body.startsWith('\xff\xfe') || body.startsWith('\xfe\xff');
  const bytes = Buffer.from(body.slice(bom ? 2 : 0), 'latin1');
  if (bytes.length % 2 !== 0) return body;
  if (be) bytes.swap16();
  return Buffer.from(bytes.toString('utf16le'), 'utf8').toString('latin1');
}

/** How many parse errors are read before the parse stops (the body is an error after the first). */
export const MAX_ERRORS = 64;
const STOP = new Error('too many XML parse errors');

export function parseXml(raw: string): XmlResult {
  const body = asUtf8(raw);
  const texts: string[] = [];
  const attrs: string[] = [];
  const parser = new SaxesParser({ xmlns: false, position: true });
  let error: string | undefined;
  // A comment, a processing instruction or a CDATA section inside a text splits it into several
  // events, while the application reads one string (DOM textContent, JAXB, XmlSerializer,
  // lxml's itertext): `1' UN<!---->ION SELECT` was three harmless pieces to the WAF (session 24
  // WAF evasion audit). Text is joined up to the next tag; the whole document's text as well,
  // for text split by child elements (`UN<b/>ION`).
  let run = '';
  let all = '';
  const addText = (t: string): void => {
    run += t;
    all += t;
  };
  const endRun = (): void => {
    const trimmed = run.trim();
    if (trimmed !== '') texts.push(trimmed);
    run = '';
  };
  parser.on('text', addText);
  parser.on('cdata', addText);
  parser.on('opentag', (tag) => {
    endRun();
    for (const value of Object.values(tag.attributes)) attrs.push(String(value));
  });
  parser.on('closetag', endRun);
  // An internal DTD subset: its entities expand where the document refers to them and its
  // ATTLIST defaults are attributes, as libxml2 (ModSecurity), expat, Java's DOM and lxml read
  // them. A reference was an "undefined entity" error before (400 for benign documents with
  // entities; session 27 WAF evasion audit). The expansion is bounded (src/waf/bodies/dtd.ts).
  parser.on('doctype', (text) => {
    try {
      const dtd = readDoctype(text);
      if (dtd.entities.size === 0 && dtd.attributeDefaults.length === 0) return;
      const expander = new EntityExpander(dtd.entities, Math.max(MIN_EXPANSION_BUDGET, body.length));
      for (const v of dtd.attributeDefaults) attrs.push(expander.expandLiteral(v));
      for (const name of dtd.entities.keys()) {
        if (PREDEFINED.has(name)) continue;
        // saxes looks a reference up in ENTITIES and inserts what it finds as text.
        Object.defineProperty(parser.ENTITIES, name, {
          configurable: true,
          enumerable: true,
          get: (): string => {
            // After the first failure (the budget spent, say) every reference is empty: the
            // document is an error already, and thousands of references must not each throw.
            if (error !== undefined) return '';
            try {
              return expander.expand(name);
            } catch (e) {
              error = `XML parse error: ${(e as Error).message}`;
              return '';
            }
          },
        });
      }
    } catch (e) {
      if (!(e instanceof DtdError)) throw e;
      error ??= `XML parse error: ${e.message}`;
    }
  });
  let errors = 0;
  parser.on('error', (e) => {
    // Keep the first error; saxes goes on after errors, and what it still
    // reports is worth inspecting.
    error ??= `XML parse error: ${e.message}`;
    // ... up to a point: saxes reports every bad reference or character again, each an Error with
    // a stack trace: 20,000 `&x;` in a 60 KB body were ~1 s of CPU (session 27). libxml2
    // (ModSecurity) stops at the first error; here the parse stops at the MAX_ERRORS-th.
    if (++errors >= MAX_ERRORS) throw STOP;
  });
  try {
    parser.write(body).close();
  } catch (e) {
    if (e !== STOP) error ??= `XML parse error: ${(e as Error).message}`;
  }
  endRun();
  const whole = all.trim();
  if (texts.length > 1 && whole !== '') texts.push(whole);
  if (error === undefined && texts.length === 0 && attrs.length === 0 && body.trim() === '') {
    error = 'XML parse error: empty document';
  }
  return error === undefined ? { texts, attrs } : { texts, attrs, error };
}
