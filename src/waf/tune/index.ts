// `sentinel-waf tune --from audit.log`: from the agent's JSON audit lines (false positives
// included) to proposed exclusions, as SecLang the agent loads with --exclusions-file. Pure:
// text in, proposals and text out (the CLI in agent/tune-cli.ts does the files).
import { joinKey } from '../extra/joined.ts';
import { loadDirectives } from '../seclang/parser.ts';

/** One audit line as the agent writes it (service.ts AuditLine), the fields used here. */
interface AuditRecord {
  decision?: string;
  uri?: string;
  rules?: { id?: number; var?: string; tags?: string[] }[];
}

export interface Proposal {
  ruleId: number;
  /** Request path (query dropped), or undefined for an everywhere exclusion. */
  path?: string;
  /** e.g. "ARGS:q", "REQUEST_HEADERS:X-Token"; undefined when the match was not on a keyed variable. */
  target?: string;
  count: number;
  /** Distinct paths the (rule, target) pair was seen on, for the everywhere proposals. */
  paths: number;
  /** An ARGS_JOINED target proposed beside ARGS exclusions of these rules (the `hpp` set), not
   * (only) from its own hits. */
  besides?: number[];
}

export interface TuneOptions {
  /** Pairs seen fewer times than this are left out (default 1). */
  minCount?: number;
  /** A (rule, target) pair on at least this many paths becomes one everywhere exclusion (default 3). */
  globalPaths?: number;
  /** First id of the generated ctl rules (default 10100; SecLang's local range is 1-99999). */
  firstId?: number;
  /** The `hpp` extra rule set is on (990131/990132 over ARGS_JOINED): an argument excluded from a
   * SQLi or XSS rule is excluded from the twin joined rule too. Also on when the log shows hpp hits. */
  hpp?: boolean;
}

/** Anomaly-score rules are never excluded: they sum what the others found. */
const SCORING = /^9(?:49|59|80)\d{3}$/;
/** Collections whose members can be excluded one by one (ctl:ruleRemoveTargetById=ID;VAR:key). */
const KEYED = /^(ARGS|ARGS_GET|ARGS_POST|ARGS_NAMES|ARGS_JOINED|REQUEST_HEADERS|REQUEST_COOKIES|REQUEST_COOKIES_NAMES|FILES|XML|TX):(.+)$/;
/** An argument's value (not its name): what the hpp set joins. */
const ARG_VALUE = /^ARGS(?:_GET|_POST)?:(.+)$/;
/** The hpp set's rules (src/waf/extra): libinjection SQLi and XSS over ARGS_JOINED. */
const HPP_SQLI = 990131;
const HPP_XSS = 990132;

/** The hpp rule that reads a repeated argument's joined values as `m` read one value: the SQLi
 * twin for an SQLi rule, the XSS twin for an XSS one (by the audit line's tags; the CRS's 942 /
 * 941 ranges for lines without tags), none for other rules (the set looks for nothing else). */
function joinedTwin(m: { id: number; tags?: string[] }): number | undefined {
  if (m.tags?.length) {
    if (m.tags.includes('attack-sqli')) return HPP_SQLI;
    if (m.tags.includes('attack-xss')) return HPP_XSS;
    return undefined;
  }
  const family = Math.floor(m.id / 1000);
  return family === 942 ? HPP_SQLI : family === 941 ? HPP_XSS : undefined;
}

export function parseAuditLog(text: string): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      out.push(JSON.parse(t) as AuditRecord);
    } catch {
      // not an audit line (a log message on the same stream)
    }
  }
  return out;
}

export function proposeExclusions(records: AuditRecord[], o: TuneOptions = {}): Proposal[] {
  const minCount = o.minCount ?? 1;
  const globalPaths = o.globalPaths ?? 3;
  const byKey = new Map<string, { ruleId: number; path: string; target?: string; count: number; besides?: number[] }>();
  const hpp = o.hpp === true || records.some((r) => r.rules?.some((m) => m.id === HPP_SQLI || m.id === HPP_XSS));
  for (const r of records) {
    if (r.decision !== 'block' && r.decision !== 'detect') continue;
    const path = (r.uri ?? '/').split('?')[0]!.replace(/\.\.\.$/, '') || '/';
    // One count per (rule, target) a request: a joined twin and the rule's own hit are one hit.
    const counted = new Set<string>();
    const add = (ruleId: number, target: string | undefined, besides?: number): void => {
      const key = `${ruleId}\u0000${path}\u0000${target ?? ''}`;
      const cur = byKey.get(key) ?? { ruleId, path, ...(target ? { target } : {}), count: 0 };
      if (besides !== undefined && !cur.besides?.includes(besides)) (cur.besides ??= []).push(besides);
      if (!counted.has(key)) cur.count++;
      counted.add(key);
      byKey.set(key, cur);
    };
    for (const m of r.rules ?? []) {
      if (typeof m.id !== 'number' || SCORING.test(String(m.id))) continue;
      const target = m.var && KEYED.test(m.var) ? m.var : undefined;
      add(m.id, target);
      // Session 30's open item: with `ARGS:q` excluded, a repeated benign q (`q=..&q=..`) still
      // reached 990131/990132 as ARGS_JOINED:q (q[], q[N] and json.q.N join under q / json.q).
      const arg = hpp && target ? ARG_VALUE.exec(target) : null;
      const twin = arg ? joinedTwin(m as { id: number; tags?: string[] }) : undefined;
      if (arg && twin !== undefined) add(twin, `ARGS_JOINED:${joinKey(arg[1]!)}`, m.id);
    }
  }
  // (rule, target) pairs seen on many paths: one exclusion everywhere instead of one per path.
  const pathsOf = new Map<string, Set<string>>();
  for (const p of byKey.values()) {
    const k = `${p.ruleId}\u0000${p.target ?? ''}`;
    (pathsOf.get(k) ?? pathsOf.set(k, new Set()).get(k)!).add(p.path);
  }
  const out: Proposal[] = [];
  const globalDone = new Set<string>();
  for (const p of byKey.values()) {
    const k = `${p.ruleId}\u0000${p.target ?? ''}`;
    const paths = pathsOf.get(k)!.size;
    if (paths >= globalPaths && p.target) {
      if (globalDone.has(k)) continue;
      globalDone.add(k);
      const same = [...byKey.values()].filter((x) => x.ruleId === p.ruleId && x.target === p.target);
      const count = same.reduce((n, x) => n + x.count, 0);
      const besides = [...new Set(same.flatMap((x) => x.besides ?? []))];
      if (count >= minCount) out.push({ ruleId: p.ruleId, target: p.target, count, paths, ...(besides.length ? { besides } : {}) });
      continue;
    }
    if (p.count >= minCount) out.push({ ruleId: p.ruleId, path: p.path, ...(p.target ? { target: p.target } : {}), count: p.count, paths, ...(p.besides ? { besides: p.besides } : {}) });
  }
  return out.sort((a, b) => b.count - a.count || a.ruleId - b.ruleId);
}

const quote = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/'/g, "\\'");

/** The proposals as SecLang: per-path ctl rules (phase 1) and everywhere target updates. */
export function exclusionsText(proposals: Proposal[], o: TuneOptions = {}, source = 'audit log'): string {
  let id = o.firstId ?? 10100;
  const lines = [
    `# Exclusions proposed by \`sentinel-waf tune\` from ${source} (${new Date().toISOString()}).`,
    '# Review before use: every line silences a detection. Loaded with --exclusions-file; the agent',
    '# re-reads this file when it changes (or on SIGHUP), no restart needed.',
    '',
  ];
  for (const p of proposals) {
    const where = p.path === undefined ? `everywhere (${p.paths} paths)` : p.path;
    const twin = p.besides ? ` (the hpp set's joined values, beside ${p.besides.join(', ')} on the argument)` : '';
    lines.push(`# rule ${p.ruleId}${p.target ? ` on ${p.target}` : ''} at ${where}: ${p.count} hit${p.count === 1 ? '' : 's'}${twin}`);
    if (p.path === undefined) {
      lines.push(`SecRuleUpdateTargetById ${p.ruleId} "!${quote(p.target!)}"`);
      continue;
    }
    const ctl = p.target ? `ctl:ruleRemoveTargetById=${p.ruleId};${quote(p.target)}` : `ctl:ruleRemoveById=${p.ruleId}`;
    lines.push(`SecRule REQUEST_FILENAME "@streq ${quote(p.path)}" "id:${id++},phase:1,pass,nolog,t:none,${ctl}"`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * An exclusions file split for loading: rules and ctl actions go before the CRS rules (they
 * must run first), SecRuleUpdateTarget* / SecRuleRemove* after them (they change rules that
 * must already exist). Throws SecLangError on a syntax error.
 */
export function splitExclusions(text: string, file: string): { before: string; after: string } {
  const before: string[] = [];
  const after: string[] = [];
  for (const d of loadDirectives(text, file, '/')) {
    const n = d.name.toLowerCase();
    (n.startsWith('secruleupdate') || n.startsWith('secruleremove') ? after : before).push(d.text);
  }
  return { before: before.join('\n'), after: after.join('\n') };
}
