// The directory listing page (`directory-listing #true`): every name is HTML-escaped in the text
// and percent-encoded in the link, so a file called `<script>` or `a"b` is shown, not run.

export interface ListingEntry {
  readonly name: string;
  readonly dir: boolean;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** `urlPath`: the directory's request path (ends with '/', as received: already percent-encoded). */
export function renderListing(urlPath: string, entries: readonly ListingEntry[], truncated: boolean): string {
  const sorted = [...entries].sort((a, b) => (a.dir === b.dir ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.dir ? -1 : 1));
  let title: string;
  try {
    title = decodeURIComponent(urlPath);
  } catch {
    title = urlPath;
  }
  const rows = sorted.map((e) => {
    const href = encodeURIComponent(e.name) + (e.dir ? '/' : '');
    return `<li><a href="${escapeHtml(href)}">${escapeHtml(e.name)}${e.dir ? '/' : ''}</a></li>`;
  });
  if (urlPath !== '/') rows.unshift('<li><a href="../">../</a></li>');
  return (
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Index of ${escapeHtml(title)}</title></head>\n` +
    `<body><h1>Index of ${escapeHtml(title)}</h1>\n<ul>\n${rows.join('\n')}\n</ul>\n` +
    (truncated ? '<p>(listing truncated)</p>\n' : '') +
    '</body></html>\n'
  );
}
