// sentinel-waf configuration: CLI flags, environment variables and the Configure event's
// JSON all map onto one WafAgentConfig (pure functions, table-tested).

import { parseExtraRuleSets, type ExtraRuleSet } from '../extra/index.ts';

export interface ScopedExclusion {
  /** Request path prefix the exclusion applies to (all paths when absent). */
  path?: string;
  /** Host (without port) the exclusion applies to (all hosts when absent). */
  host?: string;
  ruleIds: string[];
  tags: string[];
}

export interface WafAgentConfig {
  socketPath: string;
  crsDir?: string;
  rulesDir?: string;
  paranoiaLevel: number;
  mode: 'blocking' | 'detection';
  inboundThreshold: number;
  outboundThreshold: number;
  /** Removed everywhere. */
  disabledRuleIds: string[];
  disabledTags: string[];
  /** Removed for matching requests only. */
  exclusions: ScopedExclusion[];
  /** Paths (prefixes) not inspected at all. */
  excludePaths: string[];
  inspectRequestBody: boolean;
  inspectResponseBody: boolean;
  /** Bytes of a body inspected at most (the rest passes uninspected). */
  maxBodyBytes: number;
  /** Emit an audit line for clean requests too (default: only when rules matched). */
  auditAll: boolean;
  /** Opt-in rule sets beyond the CRS (src/waf/extra). */
  extraRules: ExtraRuleSet[];
  /** SecLang exclusions (e.g. written by `sentinel-waf tune`), re-read on change / SIGHUP. */
  exclusionsFile?: string;
  /** Engine processes behind the one socket (0 = one per CPU; 1 = no cluster). CLI/env only. */
  workers: number;
  /**
   * The proxy sends nothing after the request-side decision (the agent block subscribes
   * request_headers/request_body only): the decision ends the transaction (phase 5 and the audit
   * line run then). Otherwise each one is kept for a request_complete that never comes, up to
   * 10,000 of them (~80 KB each for a 2 KiB JSON POST): ~0.8 GB, promoted and marked by every GC.
   * In-process it is set from the agent block's events.
   */
  requestSideOnly: boolean;
}

export function defaultConfig(): WafAgentConfig {
  return {
    socketPath: '/var/run/sentinel/waf.sock',
    paranoiaLevel: 1,
    mode: 'blocking',
    inboundThreshold: 5,
    outboundThreshold: 4,
    disabledRuleIds: [],
    disabledTags: [],
    exclusions: [],
    excludePaths: [],
    inspectRequestBody: true,
    inspectResponseBody: false,
    maxBodyBytes: 1048576,
    auditAll: false,
    extraRules: [],
    workers: 0,
    requestSideOnly: false,
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function extraSets(v: string | readonly string[]): ExtraRuleSet[] {
  try {
    return parseExtraRuleSets(v);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
}

const list = (v: string): string[] =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function int(name: string, v: unknown, min: number, max: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  return n;
}

function bool(name: string, v: unknown): boolean {
  if (typeof v === 'boolean') return v;
  if (v === 'true' || v === '1' || v === 'on' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'off' || v === 'no') return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(v)}`);
}

function mode(v: unknown): WafAgentConfig['mode'] {
  const s = String(v).toLowerCase();
  if (['blocking', 'block', 'prevention', 'prevent', 'on'].includes(s)) return 'blocking';
  if (['detection', 'detect', 'detection-only', 'detectiononly'].includes(s)) return 'detection';
  throw new ConfigError(`mode must be "blocking" or "detection", got ${JSON.stringify(v)}`);
}

/** CLI exclusion: `[path=/p][;host=h]:ID,ID,...`; ids may be ranges, `tag=NAME` entries are tags. */
export function parseExclusion(text: string): ScopedExclusion {
  const colon = text.lastIndexOf(':');
  const scope = colon < 0 ? '' : text.slice(0, colon);
  const items = list(colon < 0 ? text : text.slice(colon + 1));
  const out: ScopedExclusion = { ruleIds: [], tags: [] };
  for (const part of scope.split(';').filter(Boolean)) {
    const [k, ...rest] = part.split('=');
    const v = rest.join('=');
    if (k === 'path') out.path = v;
    else if (k === 'host') out.host = v;
    else throw new ConfigError(`exclusion scope must be path=... or host=..., got "${part}"`);
  }
  for (const it of items) {
    if (it.startsWith('tag=')) out.tags.push(it.slice(4));
    else if (/^\d+(?:-\d+)?$/.test(it)) out.ruleIds.push(it);
    else throw new ConfigError(`exclusion entry must be a rule id, a range or tag=NAME, got "${it}"`);
  }
  if (out.ruleIds.length === 0 && out.tags.length === 0) throw new ConfigError(`exclusion "${text}" lists no rule`);
  return out;
}

const usage = `sentinel-waf: OWASP CRS web application firewall agent (Sentinel agent protocol v2)

  --socket PATH               Unix socket to listen on (SENTINEL_WAF_SOCKET,
                              default /var/run/sentinel/waf.sock)
  --crs-dir DIR               CRS root with rules/ and crs-setup.conf(.example) (CRS_DIR,
                              default /usr/share/sentinel/crs; scripts/fetch-crs.sh gets it)
  --rules-dir DIR             directory of *.conf rule files (default <crs-dir>/rules)
  --paranoia-level N          1-4 (SENTINEL_WAF_PARANOIA_LEVEL, default 1)
  --mode blocking|detection   (SENTINEL_WAF_MODE, default blocking); --detect-only = --mode detection,
                              --block-mode = --mode blocking
  --inbound-threshold N       anomaly score that blocks a request (default 5)
  --outbound-threshold N      anomaly score that blocks a response (default 4)
  --disable-rules IDS         comma-separated ids or ranges removed everywhere
  --disable-tags TAGS         comma-separated tags whose rules are removed
  --exclusion SPEC            [path=/p][;host=h]:ID,ID,tag=NAME (repeatable)
  --exclude-paths P,P         path prefixes not inspected at all
  --no-body-inspection        do not inspect request bodies
  --response-inspection       inspect response bodies (text types)
  --max-body-size BYTES       bytes of a body inspected (default 1048576); a longer request
                              body is refused 413 in blocking mode
  --audit-all                 audit line for clean requests too
  --extra-rules SETS          opt-in rule sets beyond the CRS: base64,headers,json,hpp or all
                              (SENTINEL_WAF_EXTRA_RULES)
  --exclusions-file PATH      SecLang exclusions (sentinel-waf tune writes them), re-read when
                              the file changes or on SIGHUP (SENTINEL_WAF_EXCLUSIONS_FILE)
  --workers N                 engine processes sharing the socket (SENTINEL_WAF_WORKERS,
                              default 0 = one per CPU; 1 = a single process); a worker that
                              dies is replaced
  --request-side-only         the gateway sends no response or request_complete event (its
                              agent block subscribes request_headers/request_body only): end
                              each transaction at the request-side decision instead of keeping
                              it for a completion that never comes (SENTINEL_WAF_REQUEST_SIDE_ONLY)

  sentinel-waf tune --from AUDIT_LOG [--out FILE]   propose exclusions (tune --help)
`;

export function usageText(): string {
  return usage;
}

/** Applies environment variables, then CLI flags, over the defaults. */
export function configFromCli(argv: string[], env: Record<string, string | undefined>): WafAgentConfig {
  const c = defaultConfig();
  if (env.SENTINEL_WAF_SOCKET) c.socketPath = env.SENTINEL_WAF_SOCKET;
  if (env.CRS_DIR) c.crsDir = env.CRS_DIR;
  if (env.SENTINEL_WAF_PARANOIA_LEVEL) c.paranoiaLevel = int('SENTINEL_WAF_PARANOIA_LEVEL', env.SENTINEL_WAF_PARANOIA_LEVEL, 1, 4);
  if (env.SENTINEL_WAF_MODE) c.mode = mode(env.SENTINEL_WAF_MODE);
  if (env.SENTINEL_WAF_EXTRA_RULES) c.extraRules = extraSets(env.SENTINEL_WAF_EXTRA_RULES);
  if (env.SENTINEL_WAF_EXCLUSIONS_FILE) c.exclusionsFile = env.SENTINEL_WAF_EXCLUSIONS_FILE;
  if (env.SENTINEL_WAF_WORKERS) c.workers = int('SENTINEL_WAF_WORKERS', env.SENTINEL_WAF_WORKERS, 0, 1024);
  if (env.SENTINEL_WAF_REQUEST_SIDE_ONLY) c.requestSideOnly = bool('SENTINEL_WAF_REQUEST_SIDE_ONLY', env.SENTINEL_WAF_REQUEST_SIDE_ONLY);
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const [name, inline] = flag.includes('=') && flag.startsWith('--') ? [flag.slice(0, flag.indexOf('=')), flag.slice(flag.indexOf('=') + 1)] : [flag, undefined];
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new ConfigError(`${name} needs a value`);
      return v;
    };
    switch (name) {
      case '--socket':
        c.socketPath = value();
        break;
      case '--crs-dir':
        c.crsDir = value();
        break;
      case '--rules-dir':
        c.rulesDir = value();
        break;
      case '--paranoia-level':
        c.paranoiaLevel = int(name, value(), 1, 4);
        break;
      case '--mode':
        c.mode = mode(value());
        break;
      case '--detect-only':
        c.mode = 'detection';
        break;
      case '--block-mode':
        c.mode = 'blocking';
        break;
      case '--inbound-threshold':
        c.inboundThreshold = int(name, value(), 1, 1_000_000);
        break;
      case '--outbound-threshold':
        c.outboundThreshold = int(name, value(), 1, 1_000_000);
        break;
      case '--disable-rules':
        c.disabledRuleIds.push(...list(value()));
        break;
      case '--disable-tags':
        c.disabledTags.push(...list(value()));
        break;
      case '--exclusion':
        c.exclusions.push(parseExclusion(value()));
        break;
      case '--exclude-paths':
        c.excludePaths.push(...list(value()));
        break;
      case '--no-body-inspection':
        c.inspectRequestBody = false;
        break;
      case '--response-inspection':
        c.inspectResponseBody = true;
        break;
      case '--max-body-size':
        c.maxBodyBytes = int(name, value(), 0, 1 << 30);
        break;
      case '--audit-all':
        c.auditAll = true;
        break;
      case '--extra-rules':
        c.extraRules = extraSets(value());
        break;
      case '--exclusions-file':
        c.exclusionsFile = value();
        break;
      case '--workers':
        c.workers = int(name, value(), 0, 1024);
        break;
      case '--request-side-only':
        c.requestSideOnly = true;
        break;
      default:
        throw new ConfigError(`unknown flag ${name}\n\n${usage}`);
    }
  }
  return c;
}

/**
 * Merges a Configure event's JSON over a base config. Keys (kebab-case, as in Sentinel KDL):
 * paranoia-level, mode, inbound-threshold (alias anomaly-threshold), outbound-threshold,
 * crs-dir, rules-dir, disabled-rules, disabled-tags, exclude-paths, body-inspection,
 * response-inspection, max-body-size, audit-all, extra-rules (list or "base64,headers"), exclusions-file,
 * request-side-only,
 * exclusions: [{ rule-ids: [...], tags: [...], path?: "/p", host?: "h" }].
 */
export function configFromJson(base: WafAgentConfig, json: unknown): WafAgentConfig {
  if (json === null || json === undefined) return base;
  if (typeof json !== 'object' || Array.isArray(json)) throw new ConfigError('configuration must be a JSON object');
  const c: WafAgentConfig = { ...base, exclusions: [...base.exclusions] };
  const strings = (k: string, v: unknown): string[] => {
    // A KDL `config {}` node with one value decodes to that value, not a list of one.
    if (typeof v === 'string') return [v];
    if (!Array.isArray(v)) throw new ConfigError(`${k} must be a list`);
    return v.map(String);
  };
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    switch (k) {
      case 'paranoia-level':
        c.paranoiaLevel = int(k, v, 1, 4);
        break;
      case 'mode':
        c.mode = mode(v);
        break;
      case 'block-mode':
        c.mode = bool(k, v) ? 'blocking' : 'detection';
        break;
      case 'inbound-threshold':
      case 'anomaly-threshold':
        c.inboundThreshold = int(k, v, 1, 1_000_000);
        break;
      case 'outbound-threshold':
        c.outboundThreshold = int(k, v, 1, 1_000_000);
        break;
      case 'crs-dir':
        c.crsDir = String(v);
        break;
      case 'rules-dir':
        c.rulesDir = String(v);
        break;
      case 'disabled-rules':
        c.disabledRuleIds = strings(k, v);
        break;
      case 'disabled-tags':
        c.disabledTags = strings(k, v);
        break;
      case 'exclude-paths':
        c.excludePaths = strings(k, v);
        break;
      case 'body-inspection':
        c.inspectRequestBody = bool(k, v);
        break;
      case 'response-inspection':
        c.inspectResponseBody = bool(k, v);
        break;
      case 'max-body-size':
        c.maxBodyBytes = int(k, v, 0, 1 << 30);
        break;
      case 'audit-all':
        c.auditAll = bool(k, v);
        break;
      case 'exclusions-file':
        c.exclusionsFile = String(v);
        break;
      case 'request-side-only':
        c.requestSideOnly = bool(k, v);
        break;
      case 'extra-rules':
        if (typeof v !== 'string' && !Array.isArray(v)) throw new ConfigError('extra-rules must be a list or a comma-separated string');
        c.extraRules = extraSets(v as string | string[]);
        break;
      case 'exclusions': {
        if (!Array.isArray(v)) throw new ConfigError('exclusions must be a list');
        c.exclusions = v.map((e: unknown, i) => {
          if (typeof e !== 'object' || e === null) throw new ConfigError(`exclusions[${i}] must be an object`);
          const o = e as Record<string, unknown>;
          const ex: ScopedExclusion = {
            ruleIds: o['rule-ids'] === undefined ? [] : strings(`exclusions[${i}].rule-ids`, o['rule-ids']),
            tags: o.tags === undefined ? [] : strings(`exclusions[${i}].tags`, o.tags),
          };
          if (o.path !== undefined) ex.path = String(o.path);
          if (o.host !== undefined) ex.host = String(o.host);
          if (ex.ruleIds.length === 0 && ex.tags.length === 0) throw new ConfigError(`exclusions[${i}] lists no rule-ids or tags`);
          return ex;
        });
        break;
      }
      default:
        throw new ConfigError(`unknown configuration key "${k}"`);
    }
  }
  return c;
}
