// RFC 5424 formatting of audit events (src/logging/syslog/format.ts): table tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FACILITIES, SEVERITY, auditSeverity, escapeSdValue, formatSyslog, headerField, octetCountingFrame, pri, structuredData, timestamp } from '../../../src/logging/syslog/format.ts';

test('PRI = facility * 8 + severity, out-of-range values refused', () => {
  const rows: [number, number, number][] = [
    [FACILITIES.kern, SEVERITY.emerg, 0],
    [FACILITIES.user, SEVERITY.notice, 13],
    [FACILITIES.auth, SEVERITY.crit, 34],
    [FACILITIES.local0, SEVERITY.notice, 133],
    [FACILITIES.local0, SEVERITY.warning, 132],
    [FACILITIES.local7, SEVERITY.debug, 191],
  ];
  for (const [f, s, want] of rows) assert.equal(pri(f, s), want, `facility ${f} severity ${s}`);
  for (const [f, s] of [[24, 0], [-1, 0], [0, 8], [1.5, 0]]) assert.throws(() => pri(f!, s!), RangeError);
});

test('TIMESTAMP is RFC 3339 UTC with milliseconds; an invalid date is NIL', () => {
  const rows: [Date, string][] = [
    [new Date(Date.UTC(2003, 9, 11, 22, 14, 15, 3)), '2003-10-11T22:14:15.003Z'],
    [new Date(Date.UTC(2026, 0, 1, 0, 0, 0, 0)), '2026-01-01T00:00:00.000Z'],
    [new Date(Number.NaN), '-'],
  ];
  for (const [d, want] of rows) assert.equal(timestamp(d), want);
});

test('header fields: printable US-ASCII only, cut to length, NIL when empty or absent', () => {
  const rows: [string | number | undefined, number, string][] = [
    ['mymachine.example.com', 255, 'mymachine.example.com'],
    [undefined, 48, '-'],
    ['', 48, '-'],
    ['has space', 48, 'has_space'],
    ['tab\there', 48, 'tab_here'],
    ['héllo', 48, 'h_llo'],
    [4242, 128, '4242'],
    ['config_change_with_a_very_long_event_name', 32, 'config_change_with_a_very_long_e'],
  ];
  for (const [v, max, want] of rows) assert.equal(headerField(v, max), want, String(v));
});

test('SD-PARAM values escape ", \\ and ] (RFC 5424 §6.3.3) and nothing else', () => {
  const rows: [string, string][] = [
    ['plain', 'plain'],
    ['say "hi"', 'say \\"hi\\"'],
    ['C:\\path', 'C:\\\\path'],
    ['a]b', 'a\\]b'],
    ['[x=1]', '[x=1\\]'],
    ['ünïcode ok', 'ünïcode ok'],
    ['', ''],
  ];
  for (const [v, want] of rows) assert.equal(escapeSdValue(v), want);
});

test('STRUCTURED-DATA: elements in order, undefined params left out, NIL when empty', () => {
  assert.equal(structuredData([]), '-');
  assert.equal(structuredData([{ id: 'meta', params: { sequenceId: 7 } }]), '[meta sequenceId="7"]');
  assert.equal(
    structuredData([
      { id: 'origin', params: { software: 'sentinel', swVersion: '0.1.0', ip: undefined } },
      { id: 'x@32473', params: { reason: 'bad "x"]', 'bad name=': true } },
    ]),
    '[origin software="sentinel" swVersion="0.1.0"][x@32473 reason="bad \\"x\\"\\]" bad_name_="true"]',
  );
});

test('a whole message: header, SD, BOM and JSON MSG; NIL fields; no MSG', () => {
  const date = new Date(Date.UTC(2026, 11, 4, 15, 0, 0, 250));
  const json = '{"event_type":"config_change","note":"é"}';
  assert.equal(
    formatSyslog({ facility: 16, severity: 5, date, hostname: 'gw-1', appName: 'sentinel', procId: 123, msgId: 'config_change', sd: [{ id: 'meta', params: { sequenceId: 1 } }], msg: json }),
    `<133>1 2026-12-04T15:00:00.250Z gw-1 sentinel 123 config_change [meta sequenceId="1"] \uFEFF${json}`,
  );
  assert.equal(formatSyslog({ facility: 1, severity: 6, date }), '<14>1 2026-12-04T15:00:00.250Z - - - - -');
});

test('octet-counting frame counts bytes, not characters', () => {
  const rows: [string, string][] = [
    ['abc', '3 abc'],
    ['é', '2 é'],
    ['', '0 '],
  ];
  for (const [msg, want] of rows) assert.equal(octetCountingFrame(msg).toString('utf8'), want);
});

test('audit severity: failures, opened breakers, WAF blocks and refused client certificates are warnings, the rest notices', () => {
  const rows: [Record<string, unknown>, number][] = [
    [{ event_type: 'config_change', action: 'reload_failed' }, SEVERITY.warning],
    [{ event_type: 'config_change', action: 'reload_success' }, SEVERITY.notice],
    [{ event_type: 'circuit_breaker_change', to: 'open' }, SEVERITY.warning],
    [{ event_type: 'circuit_breaker_change', to: 'closed' }, SEVERITY.notice],
    [{ event_type: 'rate_limit_exceeded' }, SEVERITY.notice],
    [{ event_type: 'cert_reload', result: 'failure' }, SEVERITY.warning],
    [{ event_type: 'cert_reload', result: 'success' }, SEVERITY.notice],
    [{ event_type: 'auth_event', result: 'rejected' }, SEVERITY.warning],
    [{ event_type: 'auth_event', result: 'authenticated' }, SEVERITY.notice],
    [{ event_type: 'waf_block' }, SEVERITY.warning],
    [{ event_type: 'waf_match' }, SEVERITY.notice],
    [{ event_type: 'blocked', reason: 'client_not_allowed' }, SEVERITY.notice],
    [{ event_type: 'admin_action', action: 'config' }, SEVERITY.notice],
  ];
  for (const [e, want] of rows) assert.equal(auditSeverity(e), want, JSON.stringify(e));
});
