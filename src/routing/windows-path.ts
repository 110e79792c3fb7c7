// `matches { path-spelling "windows" }` (docs/security.md, "Windows path spellings"): a route's
// `path` and `path-prefix` conditions also match the spellings a Windows / IIS upstream serves as
// the same path, so `/ADMIN`, `/admin.`, `/admin%20`, `/admin::$DATA` or the 8.3 alias
// `/ADMINI~1` of `/administration` cannot fall to a catch-all route while the upstream answers the
// protected resource. Pure functions on the front door's normalised path (a space is `%20`; `\`,
// `%5C`, `%2F` and `;` were refused before routing).

/** One segment as NTFS / IIS resolve it: up to a `:` (an alternate data stream), trailing dots and spaces dropped, case folded. */
function canonSegment(seg: string): string {
  let s = seg.indexOf('%') < 0 ? seg : seg.replace(/%20/g, ' ');
  const colon = s.indexOf(':');
  if (colon >= 0) s = s.slice(0, colon);
  let end = s.length;
  while (end > 0 && (s.charCodeAt(end - 1) === 46 /* . */ || s.charCodeAt(end - 1) === 32)) end--;
  return s.slice(0, end).toLowerCase();
}

/**
 * The path's segments as a Windows upstream reads them. Segments that resolve to nothing (`...`,
 * a lone `%20`) are dropped, except the last, which stays as `''` like a trailing `/`.
 */
export function windowsSegments(path: string): string[] {
  const raw = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < raw.length; i++) {
    const c = canonSegment(raw[i]!);
    if (c !== '' || i === raw.length - 1) out.push(c);
  }
  return out;
}

/** An 8.3 short name (`ADMINI~1`, `ADMINI~1.ASP`): its base, lower-cased; undefined for another name. */
const SHORT_NAME = /^([^~]{1,6})~[0-9]{1,6}(?:\.[^.]{0,3})?$/;

/** The characters of a long name an 8.3 alias starts with (dots, spaces and `+,;=[]` are left out). */
function shortNameStem(seg: string): string {
  const dot = seg.lastIndexOf('.');
  return (dot > 0 ? seg.slice(0, dot) : seg).replace(/[ .+,;=[\]]/g, '');
}

/**
 * Whether request segment `q` names route segment `r` on Windows: equal, or an 8.3 alias whose
 * base starts `r` (which `~N` a name got depends on the directory: every one is taken as it).
 */
function segmentNames(q: string, r: string): boolean {
  if (q === r) return true;
  if (r === '' || q.indexOf('~') < 0) return false;
  const m = SHORT_NAME.exec(q);
  return m !== null && shortNameStem(r).startsWith(m[1]!);
}

/** `path` under the Windows spelling: the same segments, each named as above. */
export function windowsPathMatches(route: readonly string[], path: string): boolean {
  const q = windowsSegments(path);
  if (q.length !== route.length) return false;
  for (let i = 0; i < route.length; i++) if (!segmentNames(q[i]!, route[i]!)) return false;
  return true;
}

/**
 * `path-prefix` under the Windows spelling, on segment boundaries as prefixMatches: a route prefix
 * ending in `/` (its last segment `''`) wants at least one more segment, anything.
 */
export function windowsPrefixMatches(route: readonly string[], path: string): boolean {
  const q = windowsSegments(path);
  if (q.length < route.length) return false;
  const last = route.length - 1;
  for (let i = 0; i < last; i++) if (!segmentNames(q[i]!, route[i]!)) return false;
  return route[last] === '' || segmentNames(q[last]!, route[last]!);
}
