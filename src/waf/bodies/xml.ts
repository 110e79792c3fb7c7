// XML bodies -> XML:/* (text content) and XML://@* (attribute values), the
// way Coraza exposes them. saxes is a non-validating parser that never fetches
// external entities or DTDs, so XXE payloads cannot make us do I/O.
import { SaxesParser } from 'saxes';

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

export function parseXml(body: string): XmlResult {
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
  parser.on('error', (e) => {
    // Keep the first error; saxes goes on after errors, and what it still
    // reports is worth inspecting.
    error ??= `XML parse error: ${e.message}`;
  });
  try {
    parser.write(body).close();
  } catch (e) {
    error ??= `XML parse error: ${(e as Error).message}`;
  }
  endRun();
  const whole = all.trim();
  if (texts.length > 1 && whole !== '') texts.push(whole);
  if (error === undefined && texts.length === 0 && attrs.length === 0 && body.trim() === '') {
    error = 'XML parse error: empty document';
  }
  return error === undefined ? { texts, attrs } : { texts, attrs, error };
}
