// Pure: path globs for exclude-paths and wildcard purges. `*` matches within one segment,
// `**` across segments, `?` one character; everything else is literal.

export function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // "/**" at the end also matches the directory itself ("/wp-admin" for "/wp-admin/**")
        if (glob[i - 1] === '/' && i + 2 === glob.length) {
          re = `${re.slice(0, -1)}(?:/.*)?`;
        } else re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** One predicate for a list of globs (false for an empty list). */
export function globsMatcher(globs: readonly string[]): (path: string) => boolean {
  if (globs.length === 0) return () => false;
  const res = globs.map(globToRegExp);
  return (path) => res.some((r) => r.test(path));
}
