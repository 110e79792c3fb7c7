// `matches { path-spelling "windows" }` (docs/security.md, "Windows path spellings"): a route's
// `path` and `path-prefix` conditions also match the spellings a Windows / IIS upstream serves as
// the same path, so `/ADMIN`, `/admin.`, `/admin%20`, `/admin::$DATA` or the 8.3 alias
// `/ADMINI~1` of `/administration` cannot fall to a catch-all route while the upstream answers the
// protected resource. Pure functions on the front door's normalised path (a space is `%20`; `\`,
// `%5C`, `%2F` and `;` were refused before routing).

/**
 * One segment as NTFS / IIS resolve it: up to a `:` (an alternate data stream; unless `streams` is
 * false), trailing dots and spaces dropped, case folded.
 */
function canonSegment(seg: string, streams: boolean): string {
  let s = seg.indexOf('%') < 0 ? seg : seg.replace(/%20/g, ' ');
  const colon = streams ? s.indexOf(':') : -1;
  if (colon >= 0) s = s.slice(0, colon);
  let end = s.length;
  while (end > 0 && (s.charCodeAt(end - 1) === 46 /* . */ || s.charCodeAt(end - 1) === 32)) end--;
  return s.slice(0, end).toLowerCase();
}

/** A run of percent escapes of non-ASCII bytes (the UTF-8 of a non-ASCII character). */
const NON_ASCII_ESCAPES = /(?:%[89A-Fa-f][0-9A-Fa-f])+/g;

/**
 * Characters Windows' "best fit" conversions (WideCharToMultiByte to the ANSI code page, as an
 * application using the ANSI file APIs does) read as a path separator, and that NFKD (below)
 * leaves alone: division slash, fraction slash, big solidus; set minus, reverse solidus
 * operator, big reverse solidus, and the yen and won signs, which code pages 932 and 949 show
 * in the place of `\`.
 */
const BEST_FIT_SEPARATORS = /[\u2215\u2044\u29F8\u2216\u29F5\u29F9\u00A5\u20A9]/g;

/**
 * The path with its non-ASCII characters as a best-fit conversion reads them: the UTF-8 escapes
 * decoded, compatibility forms folded (NFKD: full-width `ａ`, `／`, `．`, `：`, `～` to ASCII, a
 * no-break space to a space), combining marks dropped (`ā` to `a`, as best fit does for a letter
 * outside the code page; `ä`, which code page 1252 has, is claimed too: matching errs towards the
 * protected route), the separators above and back-slashes to `/` (Windows reads both).
 * Undefined for an ASCII path (the common case: one scan).
 */
function bestFitPath(path: string): string | undefined {
  let s = path;
  if (s.indexOf('%') >= 0) {
    s = s.replace(NON_ASCII_ESCAPES, (run) => {
      try {
        return decodeURIComponent(run);
      } catch {
        return run; // not UTF-8 (Latin-1 bytes): left as escapes, as the front door forwards them
      }
    });
  }
  if (!/[^\x00-\x7F]/.test(s)) return undefined;
  return s.normalize('NFKD').replace(/\p{M}/gu, '').replace(BEST_FIT_SEPARATORS, '/').replace(/\\/g, '/');
}

/**
 * The path's segments as a Windows upstream reads them. Segments that resolve to nothing (`...`,
 * a lone `%20`) are dropped, except the last, which stays as `''` like a trailing `/`. A path with
 * non-ASCII characters is read after the best-fit fold (bestFitPath); `.` and `..` segments (full-
 * width dots, or a twice-decoded `%252e`) are resolved as Windows resolves them. `streams` false
 * keeps a `:` and what follows (rate-limit keys: `/items:batchGet` is a resource of its own on most
 * upstreams). `dotsAsParent`: a segment of dots and spaces starting with `..` (`..%20`, `...`)
 * is read as `..` instead of dropped (whether IIS does was not verified: windowsReadings takes both).
 */
export function windowsSegments(path: string, streams = true, dotsAsParent = false): string[] {
  const folded = bestFitPath(path);
  const raw = (folded ?? path).split('/');
  const out: string[] = [];
  for (let i = 1; i < raw.length; i++) {
    const seg = raw[i]!;
    const last = i === raw.length - 1;
    if (seg === '.' || seg === '..' || (dotsAsParent && DOTS_AND_SPACES.test(seg))) {
      if (seg !== '.') out.pop();
      if (last) out.push('');
      continue;
    }
    const c = canonSegment(seg, streams);
    if (c !== '' || last) out.push(c);
  }
  return out;
}

/** A segment of two or more dots and spaces (`..%20`, `%20..`, `...`): `..` to a reader that trims spaces. */
const DOTS_AND_SPACES = /^(?:\.|%20| )*\.(?:\.|%20| )*\.(?:\.|%20| )*$/;
/** Whether some segment of the path is one of those. */
const HAS_DOTS_AND_SPACES = /(?:^|\/)(?:\.|%20)*\.(?:\.|%20)*\.(?:\.|%20)*(?:\/|$)/;

/**
 * The path decoded once more (`%2561` is `%61` then `a`, `%252e` is `.`, `%252F` and `%255C` are
 * `/`), as an upstream that decodes twice reads it; undefined without a `%25`.
 */
function decodedOnceMore(path: string): string | undefined {
  if (path.indexOf('%25') < 0) return undefined;
  return path.replace(/%25/g, '%').replace(/%([0-7][0-9A-Fa-f])/g, (m, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return c === '\\' ? '/' : c === '%' ? m : c;
  });
}

/**
 * How many more decodings a reading is taken for: twice (session 22), three and four times (session
 * 23: `%252561dmin`). Each needs a `%25` left, so an ordinary path pays one indexOf.
 */
const MORE_DECODINGS = 3;

/**
 * Every reading of the path a Windows upstream may make (docs/security.md, "Windows path
 * spellings"): as windowsSegments reads it; with a `..%20` or `...` segment taken as `..`; decoded
 * twice, three and four times. A route under the rule claims the request when any reading matches (matching errs towards
 * the protected route). One reading, and one scan more, for a path with neither.
 */
export function windowsReadings(path: string): string[][] {
  const out = [windowsSegments(path)];
  if (HAS_DOTS_AND_SPACES.test(path)) out.push(windowsSegments(path, true, true));
  let decoded: string | undefined = path;
  for (let i = 0; i < MORE_DECODINGS && (decoded = decodedOnceMore(decoded)) !== undefined; i++) {
    out.push(windowsSegments(decoded));
    if (HAS_DOTS_AND_SPACES.test(decoded)) out.push(windowsSegments(decoded, true, true));
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

/**
 * `path` under the Windows spelling: the same segments, each named as above, in some reading. With
 * `alt` (the route's path one trailing `/` apart: match.ts oneSlashApart), either spelling.
 */
export function windowsPathMatches(route: readonly string[], path: string, alt?: readonly string[]): boolean {
  for (const q of windowsReadings(path)) if (segmentsName(route, q) || (alt !== undefined && segmentsName(alt, q))) return true;
  return false;
}

function segmentsName(route: readonly string[], q: readonly string[]): boolean {
  if (q.length !== route.length) return false;
  for (let i = 0; i < route.length; i++) if (!segmentNames(q[i]!, route[i]!)) return false;
  return true;
}

/**
 * `path-prefix` under the Windows spelling, on segment boundaries as prefixMatches: a route prefix
 * ending in `/` (its last segment `''`) wants at least one more segment, anything, or none: the
 * folder's own path (`/admin` for `/admin/`, as prefixMatches since session 31).
 */
export function windowsPrefixMatches(route: readonly string[], path: string): boolean {
  for (const q of windowsReadings(path)) if (prefixSegmentsName(route, q)) return true;
  return false;
}

function prefixSegmentsName(route: readonly string[], q: readonly string[]): boolean {
  const last = route.length - 1;
  if (q.length < route.length && (route[last] !== '' || q.length !== last || last === 0)) return false;
  for (let i = 0; i < last; i++) if (!segmentNames(q[i]!, route[i]!)) return false;
  return route[last] === '' || segmentNames(q[last]!, route[last]!);
}

/** The readings of windowsReadings as paths, for a `path-regex` under the rule (a space as `%20`). */
export function windowsReadingPaths(path: string): string[] {
  return windowsReadings(path).map(joinSegments);
}

/** Characters that end a run of name characters in a regex source (and `/`, a segment boundary). */
const REGEX_META = new Set(['^', '$', '(', ')', '|', '*', '+', '?', '{', '}', '/']);

/**
 * The names a `path-regex` may spell a long name with (session 24 audit): the runs of name
 * characters in its source, lower-cased; an escaped `\.`, `\-`, `\~` or `\_` is that character,
 * any other escape, a character class, a group or an anchor ends a run. Used only to read an 8.3
 * alias in a request (shortNameReadingPaths): a name that is not the regex's costs nothing but a
 * reading that does not match.
 */
export function regexLiteralNames(source: string): string[] {
  const names = new Set<string>();
  let run = '';
  const end = () => {
    if (run !== '') names.add(run.toLowerCase());
    run = '';
  };
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\') {
      const n = source[++i];
      if (n === '.' || n === '-' || n === '~' || n === '_') run += n;
      else end();
    } else if (c === '[') {
      end();
      // to the class's closing bracket (a `]` first in the class, or escaped, is a member)
      i += source[i + 1] === '^' ? 2 : 1;
      if (source[i] === ']') i++;
      while (i < source.length && source[i] !== ']') i += source[i] === '\\' ? 2 : 1;
    } else if (REGEX_META.has(c)) end();
    else run += c === '.' ? '' : c;
    // an unescaped `.` is any character: the run goes on without it (`admin.strator` reads `adminstrator`, harmless)
  }
  end();
  return [...names];
}

/**
 * The readings of windowsReadingPaths with each 8.3 alias segment (`ADMINI~1`, `LOGIN~1.ASP`)
 * written as a long name it may stand for, for a `path-regex` under the rule (session 24 audit; a
 * regex cannot see the alias, which needs the long name): each of `names` whose stem starts with
 * the alias' base, the base followed by each `.ext` of `names` that starts with the alias'
 * extension, and the base alone (for a regex that spells the rest of the name with a class). At
 * most 64 paths; none for a path without `~`.
 */
export function shortNameReadingPaths(path: string, names: readonly string[]): string[] {
  if (path.indexOf('~') < 0) return [];
  const out: string[] = [];
  for (const reading of windowsReadings(path)) {
    let combos: string[][] = [[]];
    let aliased = false;
    for (const seg of reading) {
      const m = SHORT_NAME.exec(seg);
      let options = [seg];
      if (m !== null) {
        aliased = true;
        const base = m[1]!;
        const dot = seg.lastIndexOf('.');
        const ext = dot > seg.indexOf('~') ? seg.slice(dot + 1) : undefined;
        const longNames = new Set<string>([base]);
        for (const n of names) {
          if (n.startsWith('.')) {
            if (ext !== undefined && n.slice(1).startsWith(ext)) longNames.add(base + n);
          } else if (shortNameStem(n).startsWith(base)) longNames.add(n);
        }
        options = [...longNames];
      }
      const next: string[][] = [];
      for (const c of combos) for (const o of options) if (next.length < 64) next.push([...c, o]);
      combos = next;
    }
    if (aliased) for (const c of combos) if (out.length < 64) out.push(joinSegments(c));
  }
  return out;
}

/**
 * The path a `path-spelling "windows"` route's rate-limit `path` keys count (docs/rate-limit.md,
 * "Paths are keyed"): the first reading that one of the route's `path` / `path-prefix` lists
 * (`exact`, `prefixes`: their windowsSegments) names, with the segments it names written as the
 * route writes them (an 8.3 alias, a data stream, a case or a trailing dot of `/login.aspx` count as
 * `/login.aspx`); the rest of the path and a route on `path-regex` only: the first reading, streams
 * cut. Without it `/login.aspx::$DATA` and `/LOGIN~1.ASP` were buckets of their own.
 */
export function windowsKeyPath(exact: readonly (readonly string[])[], prefixes: readonly (readonly string[])[], path: string): string {
  const readings = windowsReadings(path);
  for (const q of readings) {
    for (const r of exact) if (segmentsName(r, q)) return joinSegments(r);
    for (const r of prefixes) {
      if (!prefixSegmentsName(r, q)) continue;
      // a route prefix ending in `/` (last segment '') names any segment there: keep the request's
      const named = r[r.length - 1] === '' ? r.length - 1 : r.length;
      return joinSegments([...r.slice(0, named), ...q.slice(named)]);
    }
  }
  return joinSegments(readings[0]!);
}

function joinSegments(segs: readonly string[]): string {
  return `/${segs.join('/')}`.replace(/ /g, '%20');
}
