// The two benign requests of the WAF benchmarks (issue #16): a GET with a query string and 5
// browser headers, and a 2 KiB JSON POST. Shared by bench/waf-modsec.ts (whole path, wrk) and
// bench/waf-engine.ts (engine alone), so both measure the same requests.

export const BROWSER_HEADERS: [string, string][] = [
  ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0'],
  ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ['Accept-Language', 'en-US,en;q=0.5'],
  ['Accept-Encoding', 'gzip, deflate, br'],
  ['Cookie', 'session=8f14e45fceea167a5a36dedd4bea2543; theme=dark'],
];

/** The GET's target; `n` is a per-request counter. */
export function getPath(n: string): string {
  return `/products/search?q=blue+running+shoes&size=42&page=${n}`;
}

export const POST_PATH = '/api/orders';

/** A 2 KiB JSON order; `n` (the order id) is replaced per request by the wrk script. */
export function jsonBody(n: string): string {
  const items = Array.from({ length: 14 }, (_, i) => ({ sku: `SKU-${1000 + i}`, name: `Trail running shoe ${i}`, qty: (i % 3) + 1, price: 59.9 + i }));
  const doc = { order_id: n, customer: { name: 'Alice Martin', email: 'alice@example.org', address: { street: '12 rue de la Republique', city: 'Lyon', zip: '69001', country: 'FR' } }, items, note: '' };
  const text = JSON.stringify(doc);
  doc.note = 'x'.repeat(Math.max(0, 2048 - text.length));
  return JSON.stringify(doc);
}
