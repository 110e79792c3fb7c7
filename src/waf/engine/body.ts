// Adapter between the transaction and the body processors in src/waf/bodies: one call per
// processor name, one result shape the transaction turns into variables.
import { parseJson, parseMultipart, parseXml, sniffDocument } from '../bodies/index.ts';
import { formPairs } from '../bodies/urlencoded.ts';

export type BodyProcessor = 'URLENCODED' | 'MULTIPART' | 'JSON' | 'XML';

export interface MultipartVars {
  files: { name: string; filename: string; size: number }[];
  /** [part name, "Header-Name: value"] */
  partHeaders: [string, string][];
  partNames: string[];
  /** MULTIPART_* flag variables, '0' or '1' (MULTIPART_STRICT_ERROR etc.) */
  flags: Record<string, string>;
}

export interface BodyResult {
  args: [string, string][];
  error?: string;
  xmlTexts?: string[];
  xmlAttrs?: string[];
  multipart?: MultipartVars;
}

export function processBody(proc: BodyProcessor, body: string, contentType: string, separator: string): BodyResult {
  switch (proc) {
    case 'URLENCODED': {
      // Perl's CGI.pm and Plack (WWW::Form::UrlEncoded) also split a form on ';'.
      const args = formPairs(body, separator);
      // A JSON or XML document typed as a form is also read as the document (session 31 WAF
      // evasion audit): applications that parse the raw body ignore its type, and the form
      // reading cut `{"q":"1' OR '1'='1"}` at `=` into pieces the CRS passes. A form's first
      // character is a name's: only `{`, `[`, `<` (or a UTF-16/32 NUL) go further than a look.
      const doc = sniffDocument(body);
      if (doc.args.length === 0 && doc.xml === undefined) return { args };
      for (const pair of doc.args) args.push(pair);
      return doc.xml ? { args, xmlTexts: doc.xml.texts, xmlAttrs: doc.xml.attrs ?? [] } : { args };
    }
    case 'JSON': {
      const r = parseJson(body);
      return r.error !== undefined ? { args: r.args, error: r.error } : { args: r.args };
    }
    case 'XML': {
      const r = parseXml(body);
      const out: BodyResult = { args: [], xmlTexts: r.texts, xmlAttrs: r.attrs ?? [] };
      if (r.error !== undefined) out.error = r.error;
      return out;
    }
    case 'MULTIPART': {
      const r = parseMultipart(body, contentType);
      const flags: Record<string, string> = {};
      for (const [k, v] of Object.entries(r.flags)) flags[k] = String(v);
      const out: BodyResult = {
        args: r.args,
        multipart: {
          files: r.files.map((f) => ({ name: f.name, filename: f.filename, size: f.size })),
          partHeaders: r.headers,
          partNames: r.args.map(([n]) => n).concat(r.files.map((f) => f.name)),
          flags,
        },
      };
      if (r.error !== undefined) out.error = r.error;
      return out;
    }
    default:
      return { args: [] };
  }
}
