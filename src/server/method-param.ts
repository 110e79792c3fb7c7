// `_method` parameter overrides (docs/security.md, "Method overrides in parameters"): Symfony and
// Laravel (query and body), Rails/Rack::MethodOverride (form body), Spring's HiddenHttpMethodFilter
// and Express method-override (query or body getters) run a POST carrying `_method=DELETE` as the
// DELETE. The gateway routed, filtered and rate-limited a POST: a route that claims the DELETE
// (`method "DELETE"` with its own `allow-from`, agents, limits) would be skipped. The pure part
// here finds the values such a framework would read; the request path re-matches the route with
// each and refuses a POST whose override another route would take.
import { parseMultipart } from '../waf/bodies/multipart.ts';
import type { CompiledRoute } from '../config/compile.ts';

/** The parameter every framework above reads (Symfony's and Rack's METHOD_OVERRIDE_PARAM_KEY). */
const PARAM = '_method';

/** `%HH` decoded to a byte and `+` to a space, other `%` kept (PHP's php_url_decode; Rack refuses those, no matter). Bytes as latin1 chars. */
function decodeForm(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '+') out += ' ';
    else if (c === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out += String.fromCharCode(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out += c;
  }
  return out;
}

/**
 * Whether a decoded parameter name (bytes as latin1 chars) is read as `_method` by some framework:
 * as sent (Rack, Spring, Express, qs), or as PHP's php_register_variable_ex makes it: leading
 * spaces dropped, the name cut at a NUL (it is a C string there), `.` and ` ` turned into `_`;
 * a name with `[` is an array (or, unclosed, `_method_...`), never the scalar `_method`.
 */
export function namesMethodParam(name: string): boolean {
  if (name === PARAM) return true;
  if (name.indexOf('method') < 0) return false;
  let n = name;
  const nul = n.indexOf('\0');
  if (nul >= 0) n = n.slice(0, nul);
  let start = 0;
  while (n.charCodeAt(start) === 32) start++;
  n = n.slice(start);
  if (n.length !== PARAM.length || n.includes('[')) return false;
  return n.replace(/[ .]/g, '_') === PARAM;
}

/** A value as the frameworks compare it: bytes read as UTF-8, upper-cased (Rack's String#upcase and Java's toUpperCase map `ı` to I and `ſ` to S as JavaScript does; PHP's strtoupper only ASCII). */
function methodValue(latin1: string): string {
  let ascii = true;
  for (let i = 0; i < latin1.length; i++) if (latin1.charCodeAt(i) > 0x7f) ascii = false;
  return (ascii ? latin1 : Buffer.from(latin1, 'latin1').toString('utf8')).toUpperCase();
}

/**
 * The `_method` values (upper-cased) in a query string or an urlencoded body, every one of them:
 * PHP and Rack keep the last of a repeated name, Spring's getParameter and Express the first, so a
 * refusal must cover each. Pairs are split on `&` and on `;` (Rack 2 read `;` in query strings).
 */
export function overridesInUrlencoded(text: string, out: string[] = []): string[] {
  // every spelling of the name holds `method` or an escape of one of its letters
  if (!text.includes('method') && !text.includes('%')) return out;
  // only the pairs whose name could be a spelling of it are decoded (the regex skips the others)
  CANDIDATE.lastIndex = 0;
  for (let m = CANDIDATE.exec(text); m !== null; m = CANDIDATE.exec(text)) {
    if (namesMethodParam(decodeForm(m[1]!))) out.push(methodValue(decodeForm(m[2]!)));
  }
  return out;
}

/** A pair (after the start or a separator) whose name holds `method` or `%`: name, value. */
const CANDIDATE = /(?:^|[&;])([^&;=]*?(?:method|%)[^&;=]*)=([^&;]*)/g;

/** Which body parser a framework runs on a POST with this Content-Type; undefined: none reads `_method` from it. */
export type FormKind = 'urlencoded' | 'multipart' | 'json';

/**
 * - `application/x-www-form-urlencoded`, `multipart/*`: PHP's $_POST, Rack's req.POST, Spring's parameters.
 * - no Content-Type (or an empty one): Rack parses a POST's body as a form all the same.
 * - JSON (`/json` or `+json` anywhere in the header, Laravel's Request::isJson): Laravel reads
 *   `_method` from the JSON object as from a form (its request bag is the JSON input).
 */
export function formKind(contentType: string | undefined): FormKind | undefined {
  if (contentType === undefined) return 'urlencoded';
  const ct = contentType.toLowerCase();
  if (ct.includes('/json') || ct.includes('+json')) return 'json';
  const semi = ct.indexOf(';');
  const type = (semi >= 0 ? ct.slice(0, semi) : ct).trim();
  if (type === '') return 'urlencoded';
  if (type === 'application/x-www-form-urlencoded') return 'urlencoded';
  if (type.startsWith('multipart/')) return 'multipart';
  return undefined;
}

/** The `_method` values (upper-cased) a framework would read from a POST body of this kind. */
export function overridesInBody(body: Buffer, kind: FormKind, contentType: string | undefined): string[] {
  const out: string[] = [];
  if (kind === 'urlencoded') return overridesInUrlencoded(body.toString('latin1'), out);
  if (kind === 'json') {
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      return out; // Laravel's json() is empty then
    }
    if (typeof doc === 'object' && doc !== null && !Array.isArray(doc)) {
      const v = (doc as Record<string, unknown>)[PARAM];
      if (typeof v === 'string') out.push(v.toUpperCase());
    }
    return out;
  }
  // multipart: the WAF's parser names each field as PHP, Rack 2.2/3.1, werkzeug and Go read it.
  // Part names are not percent-decoded, except RFC 2231's `name*=`: without `method` or that, no
  // part is `_method` (a large upload is not parsed for nothing).
  const text = body.toString('latin1');
  if (!text.includes('method') && !/name\*/i.test(text)) return out;
  const parsed = parseMultipart(text, contentType ?? '');
  for (const [name, value] of parsed.args) if (namesMethodParam(name)) out.push(methodValue(value));
  return out;
}

/**
 * The pure decision for one POST: the first override value that must be refused, or undefined.
 * A value is let through when it is POST, when the route lists it in `forward-method-override`
 * (the operator's opt-in, as for the override headers), or when a request with that method would
 * be matched to the same route (`rematch`): then the gateway's decisions hold for it too.
 */
export function refusedOverride<R>(values: readonly string[], route: R, listed: ReadonlySet<string> | undefined, rematch: (method: string) => R | undefined): string | undefined {
  for (const v of values) {
    if (v === 'POST' || listed?.has(v)) continue;
    if (rematch(v) !== route) return v;
  }
  return undefined;
}

/**
 * Whether some override could be refused on this route: `methods` are the methods the listener's
 * routes name in `method` conditions; any other method (Symfony runs any `[A-Z]+`) matches as the
 * empty string, which no condition names. False: the body need not be read for `_method`.
 */
export function overrideCouldMove<R>(methods: readonly string[], route: R, listed: ReadonlySet<string> | undefined, rematch: (method: string) => R | undefined): boolean {
  if (rematch('') !== route) return true;
  return refusedOverride(methods, route, listed, rematch) !== undefined;
}

/** The methods a listener's routes name in `matches { method ... }` (upper case); empty: no override can move a request there. */
export function methodsNamed(routes: readonly CompiledRoute[]): string[] {
  const methods = new Set<string>();
  for (const r of routes) for (const m of r.raw.matches?.method ?? []) methods.add(m.toUpperCase());
  return [...methods];
}
