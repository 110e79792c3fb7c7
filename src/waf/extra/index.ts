// Opt-in rule sets beyond the CRS (issue #16), shipped with sentinel-waf as SecLang generated
// here and loaded right before the CRS rules. They run in phase 2, before the CRS's blocking
// evaluation (949110), and add to the same anomaly scores (tx.inbound_anomaly_score_pl1 and the
// per-attack tx.*_score), so the CRS thresholds decide as for any CRS detection.
//   base64  - base64 / base64url / unpadded values decoded (only mostly printable text; UTF-16LE
//             read as text; up to three layers) and run through libinjection SQLi/XSS and the
//             CRS's LFI / Unix shell / PowerShell phrase lists
//   headers - every request header value through libinjection SQLi/XSS (the CRS checks only
//             User-Agent, Referer and cookies)
//   hpp     - each repeated argument name's values joined with ',' (ASP.NET, Node's array
//             toString) through libinjection SQLi/XSS: a payload split across `q=...&q=...`
//   json    - JSON carried in arguments, headers, cookies and XML text (and JSON in JSON strings),
//             string leaves through libinjection; XML attribute values likewise
import { join } from 'node:path';

export const EXTRA_RULE_SETS = ['base64', 'headers', 'json', 'hpp'] as const;
export type ExtraRuleSet = (typeof EXTRA_RULE_SETS)[number];

export function isExtraRuleSet(s: string): s is ExtraRuleSet {
  return (EXTRA_RULE_SETS as readonly string[]).includes(s);
}

/** Every rule id of the extra sets is in 990100-990199 (unused by the CRS). */
export const EXTRA_RULE_IDS = '990100-990199';

const ALL_INPUTS = 'ARGS|ARGS_NAMES|REQUEST_COOKIES|REQUEST_COOKIES_NAMES|REQUEST_HEADERS|XML:/*';
// Already inspected by CRS 941100 / 942100 (not scored twice); cookies are parsed into REQUEST_COOKIES.
// HTTP message signatures' component lists (RFC 9421: `sig1=("@method" "@path");created=...`) are
// SQL to libinjection (fingerprint `no(s`), so every signed request was refused; their readers
// parse them as structured fields (session 24 WAF evasion audit).
const OTHER_HEADERS =
  'REQUEST_HEADERS|!REQUEST_HEADERS:User-Agent|!REQUEST_HEADERS:Referer|!REQUEST_HEADERS:Cookie|!REQUEST_HEADERS:Signature-Input|!REQUEST_HEADERS:Accept-Signature';
const XSS_T = 't:none,t:utf8toUnicode,t:urlDecodeUni,t:htmlEntityDecode,t:jsDecode,t:cssDecode,t:removeNulls';
const SQLI_T = 't:none,t:utf8toUnicode,t:urlDecodeUni,t:removeNulls';

interface Score {
  tag: string;
  score: string;
}
const SQLI: Score = { tag: 'attack-sqli', score: 'sql_injection_score' };
const XSS: Score = { tag: 'attack-xss', score: 'xss_score' };
const LFI: Score = { tag: 'attack-lfi', score: 'lfi_score' };
const RCE: Score = { tag: 'attack-rce', score: 'rce_score' };

function rule(id: number, set: ExtraRuleSet, vars: string, op: string, t: string, kind: Score, msg: string): string {
  const actions = [
    `id:${id}`,
    'phase:2',
    'block',
    'capture',
    t,
    `msg:'${msg}'`,
    `logdata:'Matched Data: %{TX.0} found within %{MATCHED_VAR_NAME}'`,
    `tag:'${kind.tag}'`,
    "tag:'paranoia-level/1'",
    `tag:'sentinel-extra/${set}'`,
    "severity:'CRITICAL'",
    `setvar:'tx.${kind.score}=+%{tx.critical_anomaly_score}'`,
    "setvar:'tx.inbound_anomaly_score_pl1=+%{tx.critical_anomaly_score}'",
  ];
  return `SecRule ${vars} "${op.replace(/"/g, '\\"')}" "${actions.join(',')}"`;
}

/** SecLang text of the chosen sets; `crsRulesDir` holds the CRS data files the base64 set reuses. */
export function extraRulesText(sets: readonly ExtraRuleSet[], crsRulesDir: string): string {
  const out: string[] = [];
  const want = new Set(sets);
  if (want.has('base64')) {
    out.push(
      rule(990101, 'base64', ALL_INPUTS, '@detectSQLiDecoded base64', 't:none', SQLI, 'SQL Injection in a base64-encoded value (libinjection)'),
      rule(990102, 'base64', ALL_INPUTS, '@detectXSSDecoded base64', 't:none', XSS, 'XSS in a base64-encoded value (libinjection)'),
      rule(990103, 'base64', ALL_INPUTS, `@pmFromFile ${join(crsRulesDir, 'lfi-os-files.data')}`, 't:none,t:sentinelBase64Text,t:normalisePathWin,t:lowercase', LFI, 'OS file access in a base64-encoded value'),
      rule(990104, 'base64', ALL_INPUTS, '@rx (?:^|[\\\\/])\\.\\.(?:[\\\\/]|$)', 't:none,t:sentinelBase64Text', LFI, 'Path traversal in a base64-encoded value'),
      rule(990105, 'base64', ALL_INPUTS, `@pmFromFile ${join(crsRulesDir, 'unix-shell.data')}`, 't:none,t:sentinelBase64Text,t:cmdLine,t:normalisePath', RCE, 'Unix shell command or path in a base64-encoded value'),
      // PowerShell's -EncodedCommand is base64 of UTF-16LE (session 27): the CRS's cmdlet list, as 932120 reads it
      rule(990106, 'base64', ALL_INPUTS, `@pmFromFile ${join(crsRulesDir, 'windows-powershell-commands.data')}`, 't:none,t:sentinelBase64Text,t:cmdLine', RCE, 'Windows PowerShell command in a base64-encoded value'),
    );
  }
  if (want.has('headers')) {
    out.push(
      rule(990111, 'headers', OTHER_HEADERS, '@detectSQLi', SQLI_T, SQLI, 'SQL Injection in a request header (libinjection)'),
      rule(990112, 'headers', OTHER_HEADERS, '@detectXSS', XSS_T, XSS, 'XSS in a request header (libinjection)'),
    );
  }
  if (want.has('json')) {
    out.push(
      rule(990121, 'json', ALL_INPUTS, '@detectSQLiDecoded json', 't:none', SQLI, 'SQL Injection in a JSON string (libinjection)'),
      rule(990122, 'json', ALL_INPUTS, '@detectXSSDecoded json', 't:none', XSS, 'XSS in a JSON string (libinjection)'),
      rule(990123, 'json', 'XML://@*', '@detectSQLi', SQLI_T, SQLI, 'SQL Injection in an XML attribute (libinjection)'),
      rule(990124, 'json', 'XML://@*', '@detectXSS', XSS_T, XSS, 'XSS in an XML attribute (libinjection)'),
    );
  }
  if (want.has('hpp')) {
    // Session 30 WAF evasion audit: `q=1' OR/*&q=*/1=1--` is two benign values to the CRS and
    // `1' OR/*,*/1=1--` to an application that joins them (942100 finds the join).
    out.push(
      rule(990131, 'hpp', 'ARGS_JOINED', '@detectSQLi', SQLI_T, SQLI, 'SQL Injection in the joined values of a repeated parameter (libinjection)'),
      rule(990132, 'hpp', 'ARGS_JOINED', '@detectXSS', XSS_T, XSS, 'XSS in the joined values of a repeated parameter (libinjection)'),
    );
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** `base64,headers` -> the sets; throws on an unknown name. */
export function parseExtraRuleSets(text: string | readonly string[]): ExtraRuleSet[] {
  const names = (typeof text === 'string' ? text.split(',') : text).map((s) => String(s).trim().toLowerCase()).filter(Boolean);
  const out: ExtraRuleSet[] = [];
  for (const n of names) {
    if (n === 'all') out.push(...EXTRA_RULE_SETS);
    else if (isExtraRuleSet(n)) out.push(n);
    else throw new Error(`unknown extra rule set "${n}" (known: ${EXTRA_RULE_SETS.join(', ')}, all)`);
  }
  return [...new Set(out)];
}
