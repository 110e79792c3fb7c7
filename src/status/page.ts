// The status page's HTML: one self-contained document (inline style and script, nothing
// fetched but its own JSON), allowed by a strict Content-Security-Policy that names the inline
// style and script by their SHA-256. The script renders the report with DOM text nodes only
// (never innerHTML), so every value is escaped by construction, then fetches the JSON again
// every few seconds. The first report is embedded as JSON so the page shows state at once.
import { createHash } from 'node:crypto';
import type { StatusReport } from './report.ts';

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1rem 2rem;color:#1d2330;background:#f7f8fa}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .4rem}
#facts,#live{color:#555}#live.down{color:#b00020;font-weight:600}
.badges span{display:inline-block;margin:.3rem .4rem 0 0;padding:.15rem .6rem;border-radius:1rem;background:#e4e8ef}
.badges span.bad{background:#f8d7da;color:#842029}
table{border-collapse:collapse;background:#fff;min-width:40%;margin-bottom:.3rem}
th,td{border:1px solid #d8dce3;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
td.ok{color:#0f6e2f;font-weight:600}td.bad{color:#b00020;font-weight:600}td.warn{color:#8a5a00;font-weight:600}
td.err{max-width:40rem;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px}
p.empty{color:#777;margin:.2rem 0}
`;

// Plain JavaScript run by the browser (kept ES2017, no modules). `el` builds elements from
// text nodes; `cls` picks a colour class for a state value.
const SCRIPT = `
(function () {
  'use strict';
  var data = document.getElementById('status-data');
  var url = data.getAttribute('data-url');
  var refreshMs = Number(data.getAttribute('data-refresh')) || 2000;
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
    (children || []).forEach(function (c) { e.appendChild(typeof c === 'object' && c !== null ? c : document.createTextNode(c === undefined || c === null ? '' : String(c))); });
    return e;
  }
  var GOOD = ['healthy', 'closed', 'connected', 'success', 'start'];
  var BAD = ['unhealthy', 'open', 'disconnected', 'failure'];
  function cls(v) { return GOOD.indexOf(v) >= 0 ? 'ok' : BAD.indexOf(v) >= 0 ? 'bad' : v === 'half-open' || v === 'partial' || v === 'unknown' ? 'warn' : undefined; }
  function ms(v) { return v === null || v === undefined ? '-' : v + ' ms'; }
  function table(id, title, cols, rows, empty) {
    var section = el('section', { id: id }, [el('h2', null, [title])]);
    if (rows.length === 0) { section.appendChild(el('p', { 'class': 'empty' }, [empty])); return section; }
    var head = el('tr', null, cols.map(function (c) { return el('th', null, [c[0]]); }));
    var body = rows.map(function (r) {
      return el('tr', { 'data-key': r.key }, cols.map(function (c) {
        var v = c[2](r.row);
        var state = c[3] ? cls(v) : undefined;
        return el('td', { 'data-col': c[1], 'class': c[1] === 'error' || c[1] === 'last_error' ? 'err' : state }, [v]);
      }));
    });
    section.appendChild(el('table', null, [el('thead', null, [head]), el('tbody', null, body)]));
    return section;
  }
  function rowsOf(list, key) { return list.map(function (x) { return { key: key(x), row: x }; }); }
  function render(d) {
    document.getElementById('facts').textContent = 'version ' + d.version + ' · instance ' + d.instance_id + (d.worker !== null ? ' · worker ' + d.worker : '') +
      ' · generation ' + d.generation.current + ' · up ' + d.uptime_secs + ' s · report ' + d.timestamp;
    var s = d.summary;
    var badges = el('div', { 'class': 'badges', id: 'summary' }, [
      el('span', { 'data-summary': 'generation' }, ['generation ' + d.generation.current]),
      el('span', null, [s.routes + ' routes']),
      el('span', null, [s.targets + ' targets']),
      el('span', { 'data-summary': 'targets_unhealthy', 'class': s.targets_unhealthy > 0 ? 'bad' : undefined }, [s.targets_unhealthy + ' unhealthy']),
      el('span', { 'data-summary': 'breakers_open', 'class': s.breakers_open > 0 ? 'bad' : undefined }, [s.breakers_open + ' breakers not closed']),
      el('span', { 'data-summary': 'agents_down', 'class': s.agents_down > 0 ? 'bad' : undefined }, [s.agents_down + ' of ' + s.agents + ' agents down'])
    ]);
    var targets = [];
    d.upstreams.forEach(function (u) { u.targets.forEach(function (t) { targets.push({ upstream: u.id, lb: u.load_balancing, t: t }); }); });
    var c = d.cache;
    var main = el('main', { id: 'report' }, [
      badges,
      table('upstreams', 'Upstream targets', [
        ['upstream', 'upstream', function (x) { return x.upstream; }],
        ['target', 'address', function (x) { return x.t.address; }],
        ['health', 'status', function (x) { return x.t.status; }, true],
        ['breaker', 'circuit_breaker', function (x) { return x.t.circuit_breaker; }, true],
        ['failure rate', 'failure_rate', function (x) { return Math.round(x.t.failure_rate * 100) + ' %'; }],
        ['in flight', 'in_flight', function (x) { return x.t.in_flight; }],
        ['EWMA', 'ewma', function (x) { return ms(x.t.latency && x.t.latency.ewma_ms); }],
        ['p50', 'p50', function (x) { return ms(x.t.latency && x.t.latency.p50_ms); }],
        ['p95', 'p95', function (x) { return ms(x.t.latency && x.t.latency.p95_ms); }],
        ['attempts', 'count', function (x) { return x.t.latency ? x.t.latency.count : 0; }],
        ['last error', 'last_error', function (x) { return x.t.last_error || ''; }],
        ['health check', 'check', function (x) { return x.t.last_check ? (x.t.last_check.ok ? 'ok' : 'failed') + ' ' + x.t.last_check.detail : '-'; }]
      ], targets.map(function (x) { return { key: x.upstream + '/' + x.t.address, row: x }; }), 'no upstreams'),
      table('agents', 'Agents', [
        ['agent', 'id', function (a) { return a.id; }],
        ['state', 'state', function (a) { return a.state; }, true],
        ['connections', 'connections', function (a) { return a.connections + '/' + a.configured_connections; }],
        ['breaker', 'circuit_breaker', function (a) { return a.circuit_breaker; }, true],
        ['in flight', 'in_flight', function (a) { return a.in_flight; }],
        ['queued', 'queued', function (a) { return a.queued; }],
        ['EWMA', 'ewma', function (a) { return ms(a.latency.ewma_ms); }],
        ['p50', 'p50', function (a) { return ms(a.latency.p50_ms); }],
        ['p95', 'p95', function (a) { return ms(a.latency.p95_ms); }],
        ['calls', 'count', function (a) { return a.latency.count; }],
        ['filters', 'filters', function (a) { return a.filters.join(', '); }]
      ], rowsOf(d.agents, function (a) { return a.id; }), 'no agents'),
      table('rate-limits', 'Rate limits', [
        ['limit', 'filter', function (r) { return r.filter; }],
        ['key', 'key', function (r) { return r.key; }],
        ['max rps', 'max_rps', function (r) { return r.max_rps; }],
        ['burst', 'burst', function (r) { return r.burst; }],
        ['on limit', 'on_limit', function (r) { return r.on_limit; }],
        ['backend', 'backend', function (r) { return r.backend; }],
        ['keys', 'keys', function (r) { return r.keys === null ? '-' : r.keys; }],
        ['backend breaker', 'backend_breaker', function (r) { return r.backend_breaker || '-'; }, true],
        ['passed', 'passed', function (r) { return r.passed; }],
        ['exceeded', 'exceeded', function (r) { return r.exceeded; }]
      ], rowsOf(d.rate_limits, function (r) { return r.filter; }), 'no rate limits'),
      table('cache', 'HTTP cache', [
        ['backend', 'backend', function (x) { return x.backend; }],
        ['hits', 'hits', function (x) { return x.hits; }],
        ['misses', 'misses', function (x) { return x.misses; }],
        ['hit ratio', 'hit_ratio', function (x) { return Math.round(x.hit_ratio * 1000) / 10 + ' %'; }],
        ['entries', 'entries', function (x) { return x.entries; }],
        ['bytes', 'size_bytes', function (x) { return x.size_bytes; }],
        ['stores', 'stores', function (x) { return x.stores; }],
        ['evictions', 'evictions', function (x) { return x.evictions; }],
        ['purges', 'purges', function (x) { return x.purges; }],
        ['stale served', 'stale_served', function (x) { return x.stale_served; }]
      ], c ? [{ key: 'cache', row: c }] : [], 'the HTTP cache is off'),
      table('reloads', 'Configuration loads', [
        ['time', 'at', function (r) { return r.at; }],
        ['kind', 'kind', function (r) { return r.kind; }],
        ['result', 'result', function (r) { return r.result; }, true],
        ['generation', 'generation', function (r) { return r.generation === null ? '-' : r.generation; }],
        ['duration', 'duration_ms', function (r) { return r.duration_ms + ' ms'; }],
        ['error', 'error', function (r) { return r.error || ''; }]
      ], d.reloads.map(function (r, i) { return { key: String(d.reloads.length - i), row: r }; }), 'no reloads yet'),
      table('listeners', 'Listeners', [
        ['listener', 'id', function (l) { return l.id; }],
        ['address', 'address', function (l) { return l.address; }],
        ['protocol', 'protocol', function (l) { return l.protocol; }],
        ['TLS', 'tls', function (l) { return l.tls ? 'yes' : 'no'; }],
        ['loopback only', 'loopback', function (l) { return l.loopback ? 'yes' : 'no'; }]
      ], rowsOf(d.listeners, function (l) { return l.id; }), 'no listeners'),
      table('routes', 'Routes (evaluation order)', [
        ['route', 'id', function (r) { return r.id; }],
        ['priority', 'priority', function (r) { return r.priority; }],
        ['matches', 'matches', function (r) { return r.matches; }],
        ['kind', 'kind', function (r) { return r.kind; }],
        ['upstream', 'upstream', function (r) { return r.upstream || '-'; }],
        ['filters', 'filters', function (r) { return r.filters.join(', '); }],
        ['listeners', 'listeners', function (r) { return r.listeners ? r.listeners.join(', ') : 'all'; }]
      ], rowsOf(d.routes, function (r) { return r.id; }), 'no routes')
    ]);
    var old = document.getElementById('report');
    old.parentNode.replaceChild(main, old);
    document.body.setAttribute('data-generation', String(d.generation.current));
    document.body.setAttribute('data-report-time', d.timestamp);
  }
  function live(ok, why) {
    var e = document.getElementById('live');
    e.className = ok ? '' : 'down';
    e.textContent = ok ? 'live, refreshed every ' + refreshMs / 1000 + ' s (last ' + new Date().toLocaleTimeString() + ')' : 'cannot reach the gateway: ' + why + ' (showing the last report)';
  }
  function tick() {
    fetch(url, { cache: 'no-store', credentials: 'same-origin', headers: { accept: 'application/json' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.json(); })
      .then(function (d) { render(d); live(true); }, function (e) { live(false, e && e.message ? e.message : String(e)); })
      .then(function () { setTimeout(tick, refreshMs); });
  }
  render(JSON.parse(data.textContent));
  live(true);
  setTimeout(tick, refreshMs);
})();
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** Only the page's own style, script and JSON: no other origin, no inline handlers, no frames. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * JSON inside a <script type="application/json"> element: `<` (so no `</script>` or `<!--`
 * ends or changes it), `>`, `&` and the two line separators are written as \\u escapes.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Text for HTML content or a double-quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The page: `jsonUrl` is where the script fetches the report again every `refreshSecs`. */
export function statusPageHtml(report: StatusReport, jsonUrl: string, refreshSecs: number): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sentinel status</title><style>${STYLE}</style></head>
<body><h1>Sentinel status</h1>
<div id="facts"></div><div id="live"></div>
<main id="report"><p class="empty">Loading… (this page needs JavaScript; the same data is at <a href="${escapeHtml(jsonUrl)}">${escapeHtml(jsonUrl)}</a>)</p></main>
<script type="application/json" id="status-data" data-url="${escapeHtml(jsonUrl)}" data-refresh="${refreshSecs * 1000}">${jsonForScript(report)}</script>
<script>${SCRIPT}</script>
</body></html>`;
}
