// Cookie values as Python's cookie readers give them to the application.

/**
 * A cookie value with backslash escapes as Python's `http.cookies._unquote` decodes it (Django's
 * `parse_cookie`, werkzeug/Flask, Tornado): the surrounding double quotes dropped, `\ooo` (octal,
 * first digit 0-3) the byte it names, `\x` the character x. `q="1\047 OR \0471\047=\0471"` is
 * `1' OR '1'='1` to a Django view and harmless escapes to the CRS (session 24 WAF evasion audit).
 * Decoded whether or not both quotes are there (werkzeug reads a quoted value across a `;`, so
 * the WAF's piece may lack its closing quote); undefined when the value has no backslash.
 */
export function unescapedCookieValue(value: string): string | undefined {
  if (value.indexOf('\\') < 0) return undefined;
  let v = value.trim();
  if (v.charCodeAt(0) === 0x22) v = v.slice(1);
  if (v.length > 0 && v.charCodeAt(v.length - 1) === 0x22) v = v.slice(0, -1);
  return v.replace(/\\([0-3][0-7]{2}|[\s\S])/g, (_, e: string) => (e.length === 3 ? String.fromCharCode(Number.parseInt(e, 8)) : e));
}
