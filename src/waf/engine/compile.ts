// Compiles parsed SecLang directives into an immutable RuleSet: engine settings plus the
// ordered rule list of each phase (markers included, for skipAfter).
import { dirname } from 'node:path';

import {
  parseActions,
  parseOperator,
  parseVariables,
  SecLangError,
  type ActionSpec,
  type Directive,
  type SourcePos,
  type VariableSpec,
} from '../seclang/parser.ts';
import { compileOperator } from '../operators/index.ts';
import { getTransformation } from '../transformations/index.ts';
import { collectionSlot, COLLECTIONS } from './collections.ts';
import { assignReadGroups } from './groups.ts';
import { intern } from './intern.ts';
import { compileMacro } from './macro.ts';
import { MissMemo } from './memo.ts';
import {
  chainId,
  literalKeyRegex,
  scalarSlot,
  txSlot,
  severityNames,
  type Ctl,
  type CtlKind,
  type Disruptive,
  type Phase,
  type Rule,
  type RuleActions,
  type RuleEntry,
  type RuleVariable,
  type SetVar,
} from './rule.ts';

export type EngineMode = 'On' | 'Off' | 'DetectionOnly';

export interface EngineSettings {
  ruleEngine: EngineMode;
  requestBodyAccess: boolean;
  responseBodyAccess: boolean;
  requestBodyLimit: number;
  requestBodyNoFilesLimit: number;
  requestBodyLimitAction: 'Reject' | 'ProcessPartial';
  responseBodyLimit: number;
  responseBodyLimitAction: 'Reject' | 'ProcessPartial';
  responseBodyMimeTypes: string[];
  argumentSeparator: string;
  collectionTimeout: number;
  componentSignatures: string[];
}

export interface RuleSet {
  settings: EngineSettings;
  /** Index 1..5: ordered rules and markers of that phase. */
  phases: RuleEntry[][];
  /** All chain-starter rules by id. */
  byId: Map<number, Rule>;
  /** Marker name -> index into each phase list (position of the marker entry). */
  markers: Map<string, number>[];
  /** Which pure links are known not to match which values (shared by its transactions). */
  misses: MissMemo;
}

export function defaultSettings(): EngineSettings {
  return {
    ruleEngine: 'On',
    requestBodyAccess: false,
    responseBodyAccess: false,
    requestBodyLimit: 13107200,
    requestBodyNoFilesLimit: 131072,
    requestBodyLimitAction: 'Reject',
    responseBodyLimit: 524288,
    responseBodyLimitAction: 'ProcessPartial',
    responseBodyMimeTypes: ['text/plain', 'text/html'],
    argumentSeparator: '&',
    collectionTimeout: 3600,
    componentSignatures: [],
  };
}

// Directives accepted for compatibility that have no effect in this engine (logging, storage
// and platform knobs of ModSecurity that Sentinel handles elsewhere).
const ignoredDirectives = new Set(
  [
    'SecAuditEngine', 'SecAuditLog', 'SecAuditLog2', 'SecAuditLogParts', 'SecAuditLogRelevantStatus',
    'SecAuditLogType', 'SecAuditLogStorageDir', 'SecAuditLogFormat', 'SecAuditLogDirMode',
    'SecAuditLogFileMode', 'SecDebugLog', 'SecDebugLogLevel', 'SecDataDir', 'SecTmpDir', 'SecUploadDir',
    'SecUploadKeepFiles', 'SecUploadFileMode', 'SecUploadFileLimit', 'SecPcreMatchLimit',
    'SecPcreMatchLimitRecursion', 'SecCookieFormat', 'SecUnicodeMapFile', 'SecStatusEngine',
    'SecServerSignature', 'SecWebAppId', 'SecTmpSaveUploadedFiles', 'SecRequestBodyInMemoryLimit',
    'SecRequestBodyJsonDepthLimit', 'SecArgumentsLimit', 'SecHashEngine', 'SecGeoLookupDb',
    'SecHttpBlKey', 'SecSensorId', 'SecConnEngine', 'SecCookieV0Separator', 'SecResponseBodyLimitAction',
  ].map((s) => s.toLowerCase()),
);

const ctlKinds = new Map<string, CtlKind>(
  (
    [
      'ruleEngine', 'ruleRemoveById', 'ruleRemoveByTag', 'ruleRemoveByMsg', 'ruleRemoveTargetById',
      'ruleRemoveTargetByTag', 'ruleRemoveTargetByMsg', 'requestBodyProcessor', 'requestBodyAccess',
      'forceRequestBodyVariable', 'responseBodyAccess', 'auditEngine', 'auditLogParts', 'debugLogLevel',
    ] as CtlKind[]
  ).map((k) => [k.toLowerCase(), k]),
);

// Actions that are metadata or have no runtime effect here; accepted silently.
const inertActions = new Set([
  'rev', 'maturity', 'accuracy', 'noauditlog', 'sanitisematched', 'sanitisearg', 'sanitisematchedbytes',
  'sanitiserequestheader', 'sanitiseresponseheader', 'expirevar', 'deprecatevar', 'setenv', 'setuid',
  'setsid', 'setrsc', 'append', 'prepend', 'exec', 'xmlns', 'pause', 'proxy',
]);

function bad(msg: string, pos: SourcePos, text: string): never {
  throw new SecLangError(msg, pos, text);
}

function emptyActions(): RuleActions {
  return {
    id: 0,
    phase: 2,
    tags: [],
    chain: false,
    skip: 0,
    setvars: [],
    ctls: [],
    initcols: [],
    capture: false,
    multiMatch: false,
    transformations: [],
  };
}

function parseSetVar(value: string, pos: SourcePos, text: string): SetVar {
  let v = value.trim();
  let op: SetVar['op'] = 'set';
  if (v.startsWith('!')) {
    op = 'delete';
    v = v.slice(1);
  }
  const eq = v.indexOf('=');
  const target = eq < 0 ? v : v.slice(0, eq);
  let rhs = eq < 0 ? (op === 'delete' ? '' : '1') : v.slice(eq + 1);
  if (op !== 'delete' && eq >= 0) {
    if (rhs.startsWith('+')) {
      op = 'add';
      rhs = rhs.slice(1);
    } else if (rhs.startsWith('-')) {
      op = 'sub';
      rhs = rhs.slice(1);
    }
  }
  const dot = target.indexOf('.');
  if (dot < 0) bad(`setvar needs COLLECTION.key, got "${target}"`, pos, text);
  const key = compileMacro(target.slice(dot + 1).trim());
  const collection = intern(target.slice(0, dot).trim().toUpperCase());
  const lkey = key.constant ? intern(key.source.toLowerCase()) : undefined;
  return { collection, key, lkey, slot: collection === 'TX' && lkey !== undefined ? txSlot(lkey) : -1, op, value: compileMacro(rhs) };
}

/** Applies one action to an action set; used for defaults, rules and SecRuleUpdateActionById. */
function applyAction(a: RuleActions, act: ActionSpec, pos: SourcePos, text: string): void {
  const v = act.value;
  switch (act.name) {
    case 'id': {
      const id = Number(v);
      if (!Number.isInteger(id) || id <= 0) bad(`invalid rule id "${v}"`, pos, text);
      a.id = id;
      return;
    }
    case 'phase': {
      const map: Record<string, Phase> = { request: 2, response: 4, logging: 5 };
      const p = map[v.toLowerCase()] ?? Number(v);
      if (![1, 2, 3, 4, 5].includes(p)) bad(`invalid phase "${v}"`, pos, text);
      a.phase = p as Phase;
      return;
    }
    case 'msg':
      a.msg = compileMacro(v);
      return;
    case 'logdata':
      a.logdata = compileMacro(v);
      return;
    case 'tag':
      a.tags.push(v);
      return;
    case 'ver':
      a.ver = v;
      return;
    case 'severity': {
      const n = /^\d+$/.test(v) ? Number(v) : severityNames.indexOf(v.toUpperCase());
      if (n < 0 || n > 7) bad(`invalid severity "${v}"`, pos, text);
      a.severity = n;
      return;
    }
    case 'pass':
    case 'block':
    case 'deny':
    case 'drop':
      a.disruptive = intern(act.name) as typeof act.name; // compared with literals per matched rule (disrupt)
      return;
    case 'allow':
      a.disruptive = 'allow';
      a.allowScope = v.toLowerCase();
      return;
    case 'redirect':
      a.disruptive = 'redirect';
      a.redirectUrl = compileMacro(v);
      return;
    case 'status': {
      const s = Number(v);
      if (!Number.isInteger(s) || s < 100 || s > 999) bad(`invalid status "${v}"`, pos, text);
      a.status = s;
      return;
    }
    case 'chain':
      a.chain = true;
      return;
    case 'skip': {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) bad(`invalid skip "${v}"`, pos, text);
      a.skip = n;
      return;
    }
    case 'skipafter':
      a.skipAfter = v;
      return;
    case 'setvar':
      a.setvars.push(parseSetVar(v, pos, text));
      return;
    case 'ctl': {
      const eq = v.indexOf('=');
      const kind = ctlKinds.get((eq < 0 ? v : v.slice(0, eq)).trim().toLowerCase());
      if (!kind || eq < 0) bad(`unsupported ctl "${v}"`, pos, text);
      a.ctls.push({ kind, value: v.slice(eq + 1).trim() } satisfies Ctl);
      return;
    }
    case 'initcol': {
      const eq = v.indexOf('=');
      if (eq < 0) bad(`initcol needs collection=key, got "${v}"`, pos, text);
      a.initcols.push({ collection: v.slice(0, eq).trim().toUpperCase(), key: compileMacro(v.slice(eq + 1)) });
      return;
    }
    case 'capture':
      a.capture = true;
      return;
    case 'multimatch':
      a.multiMatch = true;
      return;
    case 'log':
      a.log = true;
      return;
    case 'nolog':
      a.log = false;
      if (a.auditlog === undefined) a.auditlog = false;
      return;
    case 'auditlog':
      a.auditlog = true;
      return;
    case 't': {
      if (v.toLowerCase() === 'none') {
        a.transformations = [];
        return;
      }
      const fn = getTransformation(v);
      if (!fn) bad(`unknown transformation "${v}"`, pos, text);
      a.transformations.push({ name: v, fn });
      return;
    }
    default:
      if (inertActions.has(act.name)) return;
      bad(`unknown action "${act.name}"`, pos, text);
  }
}

/** T with every key required (optional ones may hold undefined): a literal typed so must list them all. */
type EveryKey<T> = { [K in keyof Required<T>]: T[K] };

/** Keyed variables that are not in COLLECTIONS (Transaction.keyed answers them by name).
 * ARGS_JOINED is Sentinel's (src/waf/extra/joined.ts), made only when a rule reads it. */
export const KEYED_SPECIAL: ReadonlySet<string> = new Set(['TX', 'MATCHED_VARS', 'MATCHED_VARS_NAMES', 'XML', 'IP', 'GLOBAL', 'SESSION', 'USER', 'RESOURCE', 'ENV', 'ARGS_JOINED']);

/** Collections whose keys are names a backend reads with case (argument, cookie, file and part
 * names): an exclusion of a literal key skips that spelling only. ModSecurity 3 compares the key
 * of ctl:ruleRemoveTarget* and SecRuleUpdateTarget* targets so (and of a rule's own `!ARGS:a`
 * without case; here with case too). Header names, TX and the persistent collections are not case
 * sensitive. */
const EXACT_KEYED: ReadonlySet<string> = new Set([
  'ARGS', 'ARGS_GET', 'ARGS_POST', 'ARGS_NAMES', 'ARGS_GET_NAMES', 'ARGS_POST_NAMES', 'REQUEST_COOKIES',
  'REQUEST_COOKIES_NAMES', 'FILES', 'FILES_NAMES', 'FILES_SIZES', 'FILES_TMPNAMES', 'FILES_TMP_CONTENT',
  'MULTIPART_PART_HEADERS', 'ARGS_JOINED',
]);

function compileVariable(spec: VariableSpec, pos: SourcePos, text: string): RuleVariable {
  // Every field set, in one order: one hidden class for all selectors in the rule loop.
  const v: RuleVariable = {
    name: intern(spec.name),
    key: intern(spec.key),
    lkey: intern(spec.key?.toLowerCase()),
    keyRegex: undefined,
    keyLit: undefined,
    keyAnchored: false,
    keyExact: EXACT_KEYED.has(spec.name),
    count: spec.count,
    exclude: spec.exclude,
    whole: spec.key === undefined && spec.keyRegex === undefined && !spec.count && COLLECTIONS.has(spec.name),
    scalar: !COLLECTIONS.has(spec.name) && !KEYED_SPECIAL.has(spec.name),
    sid: -1,
    cid: collectionSlot(spec.name),
    txs: spec.name === 'TX' && spec.key !== undefined ? txSlot(spec.key.toLowerCase()) : -1,
    counted: undefined,
  };
  if (v.scalar && !spec.exclude) v.sid = scalarSlot(v.name);
  if (spec.keyRegex !== undefined) {
    try {
      v.keyRegex = new RegExp(spec.keyRegex, 'i');
      const lit = literalKeyRegex(spec.keyRegex);
      if (lit !== undefined) {
        v.keyLit = lit.lit;
        v.keyAnchored = lit.anchored;
      }
    } catch (e) {
      bad(`invalid key regex /${spec.keyRegex}/: ${(e as Error).message}`, pos, text);
    }
  }
  return v;
}

export function parseTargets(text: string, pos: SourcePos): RuleVariable[] {
  return parseVariables(text, pos).map((s) => compileVariable(s, pos, text));
}

/** Parses a rule id list: "1 2 100-200" or "1,2". */
export function parseIdRanges(text: string): [number, number][] {
  const out: [number, number][] = [];
  for (const part of text.split(/[\s,]+/)) {
    if (!part) continue;
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) continue;
    out.push([Number(m[1]), Number(m[2] ?? m[1])]);
  }
  return out;
}

export function idInRanges(id: number, ranges: [number, number][]): boolean {
  for (let i = 0; i < ranges.length; i++) if (id >= ranges[i]![0] && id <= ranges[i]![1]) return true;
  return false;
}

interface DefaultAction {
  actions: ActionSpec[];
  disruptive: Disruptive;
  status: number;
  pos: SourcePos;
  text: string;
}

export class RuleSetBuilder {
  readonly settings = defaultSettings();
  private readonly rules: Rule[] = [];
  private readonly entries: RuleEntry[] = [];
  private readonly defaults = new Map<Phase, DefaultAction>();
  private links = 0;
  /** The chain starter waiting for its next link, and the last link so far. */
  private openChain: { starter: Rule; last: Rule } | undefined;

  add(directives: Directive[]): this {
    for (const d of directives) this.addOne(d);
    return this;
  }

  private addOne(d: Directive): void {
    const name = d.name.toLowerCase();
    const arg = (i: number): string => d.args[i] ?? bad(`${d.name} needs ${i + 1} argument(s)`, d, d.text);
    const onOff = (): boolean => {
      const v = arg(0).toLowerCase();
      if (v !== 'on' && v !== 'off') bad(`${d.name} expects On or Off`, d, d.text);
      return v === 'on';
    };
    const num = (): number => {
      const n = Number(arg(0));
      if (!Number.isFinite(n) || n < 0) bad(`${d.name} expects a number`, d, d.text);
      return n;
    };
    if (this.openChain && name !== 'secrule') bad('chained rule is missing its next SecRule', d, d.text);
    switch (name) {
      case 'secrule':
        this.addRule(d, arg(0), arg(1), d.args[2] ?? '');
        return;
      case 'secaction':
        this.addRule(d, undefined, undefined, arg(0));
        return;
      case 'secmarker':
        this.entries.push({ kind: 'marker', name: arg(0) });
        return;
      case 'secdefaultaction':
        this.addDefault(d, arg(0));
        return;
      case 'secruleengine': {
        const v = arg(0).toLowerCase();
        const mode = v === 'on' ? 'On' : v === 'off' ? 'Off' : v === 'detectiononly' ? 'DetectionOnly' : undefined;
        if (!mode) bad('SecRuleEngine expects On, Off or DetectionOnly', d, d.text);
        this.settings.ruleEngine = mode;
        return;
      }
      case 'secrequestbodyaccess':
        this.settings.requestBodyAccess = onOff();
        return;
      case 'secresponsebodyaccess':
        this.settings.responseBodyAccess = onOff();
        return;
      case 'secrequestbodylimit':
        this.settings.requestBodyLimit = num();
        return;
      case 'secrequestbodynofileslimit':
        this.settings.requestBodyNoFilesLimit = num();
        return;
      case 'secresponsebodylimit':
        this.settings.responseBodyLimit = num();
        return;
      case 'secrequestbodylimitaction':
      case 'secresponsebodylimitaction': {
        const v = arg(0).toLowerCase();
        const action = v === 'reject' ? 'Reject' : v === 'processpartial' ? 'ProcessPartial' : undefined;
        if (!action) bad(`${d.name} expects Reject or ProcessPartial`, d, d.text);
        if (name === 'secrequestbodylimitaction') this.settings.requestBodyLimitAction = action;
        else this.settings.responseBodyLimitAction = action;
        return;
      }
      case 'secresponsebodymimetype':
        this.settings.responseBodyMimeTypes.push(...d.args.flatMap((a) => a.split(/\s+/)).filter(Boolean).map((s) => s.toLowerCase()));
        return;
      case 'secresponsebodymimetypesclear':
        this.settings.responseBodyMimeTypes = [];
        return;
      case 'secargumentseparator':
        this.settings.argumentSeparator = arg(0);
        return;
      case 'seccollectiontimeout':
        this.settings.collectionTimeout = num();
        return;
      case 'seccomponentsignature':
        this.settings.componentSignatures.push(arg(0));
        return;
      case 'secruleremovebyid': {
        const ranges = parseIdRanges(d.args.join(' '));
        this.removeWhere((r) => idInRanges(r.id, ranges));
        return;
      }
      case 'secruleremovebytag': {
        const tag = arg(0);
        this.removeWhere((r) => r.tags.includes(tag));
        return;
      }
      case 'secruleremovebymsg': {
        const msg = arg(0);
        this.removeWhere((r) => r.msg?.source === msg);
        return;
      }
      case 'secruleupdatetargetbyid': {
        const ranges = parseIdRanges(arg(0));
        this.updateTargets((r) => idInRanges(r.id, ranges), arg(1), d);
        return;
      }
      case 'secruleupdatetargetbytag': {
        const tag = arg(0);
        this.updateTargets((r) => r.tags.includes(tag), arg(1), d);
        return;
      }
      case 'secruleupdatetargetbymsg': {
        const msg = arg(0);
        this.updateTargets((r) => r.msg?.source === msg, arg(1), d);
        return;
      }
      case 'secruleupdateactionbyid': {
        const id = Number(arg(0).split(':')[0]);
        const rule = this.rules.find((r) => r.id === id);
        if (!rule) bad(`no rule with id ${id}`, d, d.text);
        for (const act of parseActions(arg(1), d)) {
          if (act.name === 'id' || act.name === 'phase' || act.name === 'chain') bad(`cannot update ${act.name}`, d, d.text);
          applyAction(rule, act, d, d.text);
        }
        this.resolveDisruptive(rule);
        return;
      }
      default:
        if (ignoredDirectives.has(name)) return;
        bad(`unknown directive "${d.name}"`, d, d.text);
    }
  }

  private addDefault(d: Directive, text: string): void {
    const actions = parseActions(text, d);
    const probe = emptyActions();
    for (const a of actions) applyAction(probe, a, d, text);
    if (!actions.some((a) => a.name === 'phase')) bad('SecDefaultAction needs a phase', d, text);
    if (!probe.disruptive) bad('SecDefaultAction needs a disruptive action', d, text);
    if (actions.some((a) => ['id', 'chain', 'skip', 'skipafter', 'msg', 'logdata'].includes(a.name))) {
      bad('SecDefaultAction may not contain id, chain, skip, skipAfter, msg or logdata', d, text);
    }
    this.defaults.set(probe.phase, {
      actions: actions.filter((a) => a.name !== 'phase'),
      disruptive: probe.disruptive === 'block' ? 'pass' : probe.disruptive,
      status: probe.status ?? 403,
      pos: d,
      text,
    });
  }

  private addRule(d: Directive, varText: string | undefined, opText: string | undefined, actText: string): void {
    const specs = parseActions(actText, d);
    const isChild = this.openChain !== undefined;
    // Phase must be known first to pick the default actions that precede the rule's own.
    let phase: Phase = isChild ? this.openChain!.starter.phase : 2;
    if (!isChild) {
      const probe = emptyActions();
      for (const s of specs) if (s.name === 'phase') applyAction(probe, s, d, actText);
      phase = probe.phase;
    }
    const def = this.defaults.get(phase);
    const acts = emptyActions();
    acts.phase = phase;
    if (def) {
      for (const s of def.actions) {
        // Chain links only inherit transformations from the defaults.
        if (isChild && s.name !== 't') continue;
        applyAction(acts, s, def.pos, def.text);
      }
    }
    for (const s of specs) {
      if (isChild && ['id', 'phase', 'skip', 'skipafter'].includes(s.name)) {
        bad(`"${s.name}" is only allowed in the first rule of a chain`, d, d.text);
      }
      if (isChild && ['pass', 'block', 'deny', 'drop', 'allow', 'redirect'].includes(s.name)) {
        bad('disruptive actions are only allowed in the first rule of a chain', d, d.text);
      }
      applyAction(acts, s, d, d.text);
    }
    if (!isChild && acts.id === 0) bad('rule has no id', d, d.text);
    const rulesDir = dirname(d.file);
    let operator: Rule['operator'];
    let variables: RuleVariable[] = [];
    if (varText !== undefined && opText !== undefined) {
      variables = parseTargets(varText, d);
      const op = parseOperator(opText, d);
      try {
        // A literal, not a spread: `{ ...op, compiled }` gave every operator its own hidden class,
        // and the rule loop's reads of `operator.compiled` / `.negated` went megamorphic.
        operator = { name: op.name, param: op.param, negated: op.negated, compiled: compileOperator(op.name, op.param, { rulesDir, group: varText }) };
      } catch (e) {
        bad(`operator @${op.name}: ${(e as Error).message}`, d, d.text);
      }
    }
    // Every property written here, in one order (optional ones as undefined), rather than spread
    // from the actions in the order the rule text gives them: all links share one hidden class, so
    // the rule loop's property reads stay monomorphic (46 shapes at CRS PL1 before).
    const rule: EveryKey<Rule> = {
      id: acts.id,
      phase: acts.phase,
      msg: acts.msg,
      logdata: acts.logdata,
      tags: acts.tags,
      severity: acts.severity,
      ver: acts.ver,
      disruptive: acts.disruptive,
      allowScope: acts.allowScope,
      status: acts.status,
      redirectUrl: acts.redirectUrl,
      chain: acts.chain,
      skip: acts.skip,
      skipAfter: acts.skipAfter,
      setvars: acts.setvars,
      ctls: acts.ctls,
      initcols: acts.initcols,
      capture: acts.capture,
      multiMatch: acts.multiMatch,
      log: acts.log,
      auditlog: acts.auditlog,
      transformations: acts.transformations,
      file: d.file,
      line: d.line,
      raw: d.text,
      variables,
      operator,
      chainStarterId: isChild ? this.openChain!.starter.id : acts.id,
      effectiveDisruptive: 'pass',
      effectiveStatus: 403,
      pure: operator !== undefined && !operator.param.includes('%{'),
      linkIndex: this.links++,
      tId: 0,
      chained: undefined,
      sel: undefined,
      nologMatch: undefined,
      group: undefined,
    };
    if (isChild) {
      rule.id = this.openChain!.starter.id;
      this.openChain!.last.chained = rule;
      this.openChain = rule.chain ? { starter: this.openChain!.starter, last: rule } : undefined;
      return;
    }
    if (this.rules.some((r) => r.id === rule.id)) bad(`duplicate rule id ${rule.id}`, d, d.text);
    this.resolveDisruptive(rule);
    this.rules.push(rule);
    this.entries.push({ kind: 'rule', rule });
    if (rule.chain) this.openChain = { starter: rule, last: rule };
  }

  private resolveDisruptive(rule: Rule): void {
    const def = this.defaults.get(rule.phase);
    const d = rule.disruptive ?? 'pass';
    rule.effectiveDisruptive = d === 'block' ? (def?.disruptive ?? 'pass') : d;
    rule.effectiveStatus = rule.status ?? (d === 'block' ? def?.status : undefined) ?? 403;
    if (rule.log === undefined) rule.log = true;
  }

  private removeWhere(pred: (r: Rule) => boolean): void {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!;
      if (e.kind === 'rule' && pred(e.rule)) this.entries.splice(i, 1);
    }
    for (let i = this.rules.length - 1; i >= 0; i--) if (pred(this.rules[i]!)) this.rules.splice(i, 1);
  }

  private updateTargets(pred: (r: Rule) => boolean, targets: string, d: Directive): void {
    const vars = parseTargets(targets, d);
    for (const r of this.rules) {
      if (!pred(r)) continue;
      r.variables.push(...vars);
    }
  }

  build(): RuleSet {
    if (this.openChain) {
      const s = this.openChain.starter;
      throw new SecLangError('last rule of the configuration opens a chain that never ends', s, s.raw);
    }
    const phases: RuleEntry[][] = [[], [], [], [], [], []];
    const markers: Map<string, number>[] = phases.map(() => new Map());
    for (const e of this.entries) {
      if (e.kind === 'marker') {
        for (let p = 1; p <= 5; p++) {
          markers[p]!.set(e.name, phases[p]!.length);
          phases[p]!.push(e);
        }
      } else {
        phases[e.rule.phase]!.push(e);
      }
    }
    // Chain ids from the final transformations (SecRuleUpdateActionById may have changed them).
    for (const r of this.rules) for (let l: Rule | undefined = r; l; l = l.chained) l.tId = chainId(l.transformations);
    // What each link reads, from its final targets (SecRuleUpdateTarget* may have added some).
    assignReadGroups(this.rules, this.links);
    const byId = new Map(this.rules.map((r) => [r.id, r]));
    return { settings: { ...this.settings }, phases, byId, markers, misses: new MissMemo(this.links) };
  }
}
