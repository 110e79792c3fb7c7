// RFC 5424 message text for one audit event, with no I/O: PRI from facility and severity, an
// RFC 3339 timestamp, header fields cut to the RFC's lengths and character set, structured data
// with escaped values, and the event as JSON in MSG. The transport (sink.ts) adds framing.

/** RFC 5424 §6.2.1 facility codes, by the names syslog.conf uses. */
export const FACILITIES = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9, authpriv: 10, ftp: 11,
  ntp: 12, security: 13, console: 14, solaris: 15, local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
} as const;
export type FacilityName = keyof typeof FACILITIES;

/** RFC 5424 §6.2.1 severities (the ones audit events use). */
export const SEVERITY = { emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

export const NIL = '-';
const BOM = '\uFEFF';

/** PRI value: facility * 8 + severity (RFC 5424 §6.2.1). */
export function pri(facility: number, severity: number): number {
  if (!Number.isInteger(facility) || facility < 0 || facility > 23) throw new RangeError(`syslog facility out of range: ${facility}`);
  if (!Number.isInteger(severity) || severity < 0 || severity > 7) throw new RangeError(`syslog severity out of range: ${severity}`);
  return facility * 8 + severity;
}

/** TIMESTAMP: RFC 3339 in UTC with milliseconds (§6.2.3 allows up to 6 fraction digits); NIL for an invalid date. */
export function timestamp(d: Date): string {
  return Number.isNaN(d.getTime()) ? NIL : d.toISOString();
}

/** A header field (HOSTNAME, APP-NAME, PROCID, MSGID): PRINTUSASCII only, at most `max` chars, NIL when empty. */
export function headerField(value: string | number | undefined, max: number): string {
  if (value === undefined) return NIL;
  const clean = String(value).replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? NIL : clean;
}

/** PARAM-VALUE escaping (§6.3.3): '"', '\' and ']' are backslash-escaped. */
export function escapeSdValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** SD-NAME (SD-ID, PARAM-NAME): PRINTUSASCII except '=', ' ', ']', '"'; 1 to 32 chars. */
function sdName(name: string): string {
  const clean = name.replace(/[^\x21-\x7e]|[= \]"]/g, '_').slice(0, 32);
  return clean === '' ? '_' : clean;
}

export type SdElement = { id: string; params: Record<string, string | number | boolean | undefined> };

/** STRUCTURED-DATA: each element as [id name="value" ...], undefined params left out; NIL when there are none. */
export function structuredData(elements: SdElement[]): string {
  if (elements.length === 0) return NIL;
  return elements
    .map((e) => {
      const params = Object.entries(e.params)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => ` ${sdName(k)}="${escapeSdValue(String(v))}"`)
        .join('');
      return `[${sdName(e.id)}${params}]`;
    })
    .join('');
}

export interface SyslogFields {
  facility: number;
  severity: number;
  date: Date;
  hostname?: string;
  appName?: string;
  procId?: string | number;
  msgId?: string;
  sd?: SdElement[];
  /** MSG text; UTF-8, so it is sent with the BOM (§6.4) */
  msg?: string;
}

/** One RFC 5424 SYSLOG-MSG (no framing, no trailing newline). */
export function formatSyslog(f: SyslogFields): string {
  const header = [
    `<${pri(f.facility, f.severity)}>1`,
    timestamp(f.date),
    headerField(f.hostname, 255),
    headerField(f.appName, 48),
    headerField(f.procId, 128),
    headerField(f.msgId, 32),
  ].join(' ');
  const sd = structuredData(f.sd ?? []);
  return f.msg === undefined || f.msg === '' ? `${header} ${sd}` : `${header} ${sd} ${BOM}${f.msg}`;
}

/** Octet-counting frame (RFC 6587 §3.4.1, RFC 5425 for TLS): "LEN SP MSG", LEN in bytes. */
export function octetCountingFrame(msg: string): Buffer {
  const body = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

/**
 * Severity for an audit event: failures (a reload, a certificate reload), an opened breaker, a
 * WAF block and a refused client certificate are warnings, everything else a notice (a
 * rate-limited or otherwise blocked request is routine for a gateway).
 */
export function auditSeverity(event: Record<string, unknown>): number {
  if (event.action === 'reload_failed' || event.result === 'failure' || event.result === 'rejected') return SEVERITY.warning;
  if (event.event_type === 'waf_block') return SEVERITY.warning;
  if (event.event_type === 'circuit_breaker_change' && event.to === 'open') return SEVERITY.warning;
  return SEVERITY.notice;
}
