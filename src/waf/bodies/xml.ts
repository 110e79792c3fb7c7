// XML bodies -> XML:/* (text content) and XML://@* (attribute values), the
// way Coraza exposes them. saxes is a non-validating parser that never fetches
// external entities or DTDs, so XXE payloads cannot make us do I/O.
import { SaxesParser } from 'saxes';

export interface XmlResult {
  /** XML:/* — the text of each element, trimmed, empty ones left out */
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
  const addText = (t: string): void => {
    const trimmed = t.trim();
    if (trimmed !== '') texts.push(trimmed);
  };
  parser.on('text', addText);
  parser.on('cdata', addText);
  parser.on('opentag', (tag) => {
    for (const value of Object.values(tag.attributes)) attrs.push(String(value));
  });
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
  if (error === undefined && texts.length === 0 && attrs.length === 0 && body.trim() === '') {
    error = 'XML parse error: empty document';
  }
  return error === undefined ? { texts, attrs } : { texts, attrs, error };
}
