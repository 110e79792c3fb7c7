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

export function formatAccess(e: AccessEntry, format: 'json' | 'combined'): string {
  if (format === 'json') return JSON.stringify(e) + '\n';
  const target = e.query ? `${e.path}?${e.query}` : e.path;
  return `${e.client_ip} - - [${clfDate(new Date(e.timestamp))}] "${e.method} ${target} ${e.protocol}" ${e.status} ${e.body_bytes} "${e.referer ?? '-'}" "${e.user_agent ?? '-'}" ${e.trace_id} ${Math.round(e.duration_ms)}ms\n`;
}
