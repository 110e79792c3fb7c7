// `sentinel-waf tune --from audit.log [--out exclusions.conf] [--min-count N] [--global-paths N] [--extra-rules SETS]`:
// reads the agent's JSON audit lines and writes the proposed exclusions (src/waf/tune) as
// SecLang, to --out or stdout, with a summary on stderr.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { parseExtraRuleSets } from '../extra/index.ts';
import { exclusionsText, parseAuditLog, proposeExclusions } from '../tune/index.ts';

export const tuneUsage = `sentinel-waf tune --from AUDIT_LOG [--out FILE] [--min-count N] [--global-paths N] [--extra-rules SETS]

  Proposes exclusions from the agent's audit lines (stdout of sentinel-waf; blocked and detected
  requests): one per (rule id, path, argument/header/cookie) with its count, or one everywhere
  when a (rule, target) pair shows on --global-paths paths or more (default 3). Pairs seen fewer
  than --min-count times (default 1) are left out. Writes SecLang (ctl:ruleRemoveTargetById /
  ctl:ruleRemoveById per path, SecRuleUpdateTargetById everywhere) to --out (atomically) or
  stdout. Point the agent at the file with --exclusions-file: it re-reads it on change or SIGHUP.
  --extra-rules: the agent's sets (default SENTINEL_WAF_EXTRA_RULES); with hpp (or when the log
  shows hpp hits) an argument excluded from a SQLi / XSS rule is also excluded, as ARGS_JOINED,
  from 990131 / 990132, which read a repeated argument's values joined.
  --from - reads standard input; -h, --help prints this.
`;

export function runTune(argv: string[]): number {
  let values: { from?: string; out?: string; 'min-count'?: string; 'global-paths'?: string; 'extra-rules'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { from: { type: 'string' }, out: { type: 'string' }, 'min-count': { type: 'string' }, 'global-paths': { type: 'string' }, 'extra-rules': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    process.stderr.write(`sentinel-waf tune: ${(e as Error).message}\n\n${tuneUsage}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(tuneUsage);
    return 0;
  }
  if (!values.from) {
    process.stderr.write(`sentinel-waf tune: --from AUDIT_LOG is required\n\n${tuneUsage}`);
    return 2;
  }
  const positive = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  let text: string;
  try {
    const sets = values['extra-rules'] ?? process.env.SENTINEL_WAF_EXTRA_RULES ?? '';
    const opts = { minCount: positive('min-count', values['min-count'], 1), globalPaths: positive('global-paths', values['global-paths'], 3), hpp: parseExtraRuleSets(sets).includes('hpp') };
    const records = parseAuditLog(readFileSync(values.from === '-' ? 0 : values.from, 'utf8'));
    const proposals = proposeExclusions(records, opts);
    text = exclusionsText(proposals, opts, values.from);
    process.stderr.write(`sentinel-waf tune: ${records.length} audit lines, ${proposals.length} exclusion(s) proposed\n`);
    for (const p of proposals) {
      process.stderr.write(`  ${String(p.count).padStart(6)}  ${p.ruleId}  ${(p.target ?? '(whole rule)').padEnd(32)} ${p.path ?? `everywhere (${p.paths} paths)`}\n`);
    }
  } catch (e) {
    process.stderr.write(`sentinel-waf tune: ${(e as Error).message}\n`);
    return 1;
  }
  if (values.out) {
    // Atomic: the agent watching the file never reads half of it.
    const tmp = `${values.out}.tmp-${process.pid}`;
    writeFileSync(tmp, text);
    renameSync(tmp, values.out);
  } else process.stdout.write(text);
  return 0;
}
