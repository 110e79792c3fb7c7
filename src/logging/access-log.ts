// Access log entries with Sentinel's fields (sentinel-reference.md §3.3), JSON or `combined`.

export interface AccessEntry {
  timestamp: string;
  trace_id: string;
  method: string;
  path: string;
  query?: string;
  protocol: string;
  status: number;
  body_bytes: number;
  duration_ms: number;
  client_ip: string;
  user_agent?: string;
  referer?: string;
  host?: string;
  route_id?: string;
  upstream?: string;
  upstream_attempts: number;
  instance_id: string;
  body_bytes_sent: number;
  upstream_addr?: string;
  connection_reused: boolean;
  rate_limit_hit: boolean;
  /** extension: verified mTLS client certificate subject */
  client_cert_subject?: string;
  /** extension: why the request was refused before routing (sentinel_client_errors_total kind) */
  error?: string;
  /** extension: the listener, on entries written before routing */
  listener?: string;
  /** extension, with tracing on: the W3C trace id and the server span id of the request */
  otel_trace_id?: string;
  otel_span_id?: string;
}

/** The longest method kept whole in logs and spans: registered methods are at most 17 characters. */
export const MAX_LOGGED_METHOD = 32;

/**
 * A request method as logs, audit events and trace spans carry it: HTTP/2 takes any token as
 * `:method` (up to the header-size limit), and only methods from Node's list are ever routed
 * (longer ones are refused 501 `unknown_method` at the front door): past 32 characters the rest is
 * cut and marked, so one refused request cannot write kilobytes of method into every sink.
 */
export function loggedMethod(method: string): string {
  return method.length > MAX_LOGGED_METHOD ? `${method.slice(0, MAX_LOGGED_METHOD)}...` : method;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');

/** `dd/Mon/YYYY:HH:MM:SS +zzzz` in local time, as nginx/Apache print it. */
export function clfDate(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return `${pad(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`;
}

/**
 * Client-supplied text inside a quoted `combined` field, escaped as nginx does: '"', backslash and
 * bytes outside printable ASCII become \xHH, so a client cannot end the field, forge a second
 * line or hide bytes from a log parser.
 */
export function escapeLogField(s: string): string {
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 34 || c === 92) break;
  }
  if (i === s.length) return s;
  let out = s.slice(0, i);
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 34 || c === 92) {
      // header values are latin1 (one byte per char); anything wider is written as its code unit
      out += c > 0xff ? `\\u${c.toString(16).padStart(4, '0')}` : `\\x${c.toString(16).toUpperCase().padStart(2, '0')}`;
    } else out += s[i];
  }
  return out;
}

export function formatAccess(e: AccessEntry, format: 'json' | 'combined'): string {
  if (format === 'json') return JSON.stringify(e) + '\n';
  const target = escapeLogField(e.query ? `${e.path}?${e.query}` : e.path);
  const referer = e.referer === undefined ? '-' : escapeLogField(e.referer);
  const agent = e.user_agent === undefined ? '-' : escapeLogField(e.user_agent);
  return `${e.client_ip} - - [${clfDate(new Date(e.timestamp))}] "${escapeLogField(e.method)} ${target} ${e.protocol}" ${e.status} ${e.body_bytes} "${referer}" "${agent}" ${escapeLogField(e.trace_id)} ${Math.round(e.duration_ms)}ms\n`;
}
