// The compiled rule model: what the compiler (compile.ts) produces and the transaction runs.
import type { Item } from './collections.ts';
import type { ReadGroup } from './groups.ts';
import type { Macro } from './macro.ts';
import type { MatchedRule } from './transaction.ts';

export type Phase = 1 | 2 | 3 | 4 | 5;

export interface OperatorContext {
  capture: boolean;
  captures: string[];
  expand(text: string): string;
}

export interface CompiledOperator {
  evaluate(input: string, ctx: OperatorContext): boolean;
  /** See operators/index.ts: a constant @rx pattern's prefilter index, else -1. */
  readonly prefilter: number;
}

/** A variable selector of a rule, with its key matcher compiled. */
export interface RuleVariable {
  name: string;
  key?: string;
  /** Lower-cased literal key for case-insensitive lookups. */
  lkey?: string;
  keyRegex?: RegExp;
  /** When keyRegex is a literal (`^abc`, `abc`, with a trailing `.*` or `x*`): the literal,
   * ASCII lower-cased, tested without the RegExp (keyLiteralMatches); else undefined. */
  keyLit: string | undefined;
  /** keyLit must start the key (the regex began with `^`). */
  keyAnchored: boolean;
  /** As an exclusion (`!ARGS:a`, a ctl:ruleRemoveTarget* or SecRuleUpdateTarget* target), a
   * literal key compares with case: argument, cookie and file names (EXACT_KEYED), which PHP,
   * werkzeug, Rack, Express and Go read as two fields when they differ in case only. */
  keyExact: boolean;
  count: boolean;
  exclude: boolean;
  /** A whole built-in collection (no key, no key regex, not a count): the miss memo's
   * whole-collection skip applies. Decided at compile time (the rule loop reads it per link). */
  whole: boolean;
  /** Names no collection: selected straight from the transaction's scalar variables (the
   * transaction's keyed-collection lookup by name would find nothing). Decided at compile time. */
  scalar: boolean;
  /** For a scalar the transaction stores (not one of COMPUTED_SCALARS): its process-wide slot
   * (scalarSlot()), where a transaction keeps the selected items until a scalar changes; else -1. */
  sid: number;
  /** A built-in collection's slot (collectionSlot()), else -1: the rule loop reads the
   * transaction's collection from an array, not a Map by name. */
  cid: number;
  /** For `TX:key` (a literal key): the key's TX slot (txSlot()), else -1: read from the
   * transaction's slot array, no Map lookup. */
  txs: number;
  /** For a count: its one-item selections by count, made on first use (countItems). */
  counted: Item[][] | undefined;
}

export interface Transformation {
  name: string;
  fn: (input: string) => string;
}

export type SetVarOp = 'set' | 'add' | 'sub' | 'delete';

export interface SetVar {
  collection: string;
  key: Macro;
  /** The key lower-cased and interned when it has no macro (collections are keyed by it). */
  lkey: string | undefined;
  /** For a TX setvar with a literal key: the key's TX slot (txSlot()), else -1. */
  slot: number;
  op: SetVarOp;
  value: Macro;
}

export type CtlKind =
  | 'ruleEngine'
  | 'ruleRemoveById'
  | 'ruleRemoveByTag'
  | 'ruleRemoveByMsg'
  | 'ruleRemoveTargetById'
  | 'ruleRemoveTargetByTag'
  | 'ruleRemoveTargetByMsg'
  | 'requestBodyProcessor'
  | 'requestBodyAccess'
  | 'forceRequestBodyVariable'
  | 'responseBodyAccess'
  | 'auditEngine'
  | 'auditLogParts'
  | 'debugLogLevel';

export interface Ctl {
  kind: CtlKind;
  /** The raw value after `=`, macros not expanded (CRS never uses them here). */
  value: string;
}

export type Disruptive = 'pass' | 'block' | 'deny' | 'drop' | 'allow' | 'redirect';

export interface RuleActions {
  id: number;
  phase: Phase;
  msg?: Macro;
  logdata?: Macro;
  tags: string[];
  severity?: number;
  ver?: string;
  /** undefined = not given (takes the default action's). */
  disruptive?: Disruptive;
  /** allow scope: '' (whole tx), 'phase' or 'request'. */
  allowScope?: string;
  status?: number;
  redirectUrl?: Macro;
  chain: boolean;
  skip: number;
  skipAfter?: string;
  setvars: SetVar[];
  ctls: Ctl[];
  initcols: { collection: string; key: Macro }[];
  capture: boolean;
  multiMatch: boolean;
  log?: boolean;
  auditlog?: boolean;
  transformations: Transformation[];
}

export interface Rule extends RuleActions {
  file: string;
  line: number;
  /** The SecRule/SecAction text as written (for diagnostics). */
  raw: string;
  variables: RuleVariable[];
  /** SecAction has no operator and always matches. */
  operator?: { name: string; param: string; negated: boolean; compiled: CompiledOperator };
  /** Next rule of the chain, if this one has `chain`. */
  chained?: Rule;
  /** Id of the chain starter (== id for the starter itself). */
  chainStarterId: number;
  /** Effective disruptive action for the rule (block resolved against the phase default). */
  effectiveDisruptive: Disruptive;
  effectiveStatus: number;
  /** The operator's answer depends on the value alone (its parameter has no macro). */
  pure: boolean;
  /** Position of this link (chain links included) in its rule set, for the MissMemo bitsets. */
  linkIndex: number;
  /** The transformation chain's process-wide id (chainId(), set when the rule set is built, after
   * any SecRuleUpdateActionById): the slot of its stages in an item's stage cache. */
  tId: number;
  /** The link's selectors split for the rule loop (computed on first use: SecRuleUpdateTargetById
   * adds some after the rule is compiled). */
  sel?: LinkSelectors;
  /** The record of this rule's matches when it is `nolog` (nothing in it depends on the request). */
  nologMatch?: Readonly<MatchedRule>;
  /** The links that read what this one reads (groups.ts), set when the rule set is built;
   * undefined for a link the rule loop does not group. */
  group: ReadGroup | undefined;
}

/** A link's variables as the rule loop walks them. */
export interface LinkSelectors {
  /** The `!VAR:key` exclusions. */
  excl: RuleVariable[];
  /** The selectors that are not exclusions. */
  all: RuleVariable[];
  /** `all` without XML (not counted): what a transaction without an XML body walks (CRS names
   * XML:/* and XML://@* beside ARGS in ~95 links each: 190 of ~750 selector visits a GET). */
  noXml: RuleVariable[];
  /** Per selector of `all` / `noXml`: 1 when an exclusion of `excl` names its variable (the rule
   * loop filters its items), else 0; the ctl removals of a transaction are checked apart. */
  allExcluded: Uint8Array;
  noXmlExcluded: Uint8Array;
}

/** A rule or a SecMarker in a phase's ordered list. */
export type RuleEntry = { kind: 'rule'; rule: Rule } | { kind: 'marker'; name: string };

export const severityNames = ['EMERGENCY', 'ALERT', 'CRITICAL', 'ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'];

/** Keys to dense ids, process-wide, so an id means the same key in every rule set. */
class DenseIds {
  private readonly ids = new Map<string, number>();
  constructor(first?: string) {
    if (first !== undefined) this.ids.set(first, 0);
  }
  of(key: string): number {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(key, id);
    }
    return id;
  }
  /** The key's id, or -1 without making one. */
  get(key: string): number {
    return this.ids.get(key) ?? -1;
  }
  get count(): number {
    return this.ids.size;
  }
}

/** Chain key (lower-cased names, comma-joined) -> id (0 = no transformation). */
const chainIds = new DenseIds('');

/** The id of a transformation chain: equal for chains with the same transformations in order. */
export function chainId(ts: readonly Transformation[]): number {
  return chainIds.of(ts.map((t) => t.name.toLowerCase()).join(','));
}

/** How many chain ids exist so far (an item's stage cache is made this long). */
export function chainCount(): number {
  return chainIds.count;
}

/** Scalar variables the transaction computes when read (Transaction.scalar's switch: keep the two
 * in step) rather than stores: they get no slot. */
export const COMPUTED_SCALARS: ReadonlySet<string> = new Set([
  'MATCHED_VAR', 'MATCHED_VAR_NAME', 'ARGS_COMBINED_SIZE', 'REQUEST_BODY_LENGTH', 'FULL_REQUEST_LENGTH',
  'TIME', 'TIME_EPOCH', 'DURATION', 'HIGHEST_SEVERITY',
]);

const scalarIds = new DenseIds();

/** The slot of a stored scalar variable (-1 for a computed one); process-wide, like chain ids. */
export function scalarSlot(name: string): number {
  return COMPUTED_SCALARS.has(name) ? -1 : scalarIds.of(name);
}

/** Where a transaction stores a scalar's value (setScalar): its slot, made if new, computed
 * scalars included (REQUEST_BODY_LENGTH is both); the names are the engine's and the body
 * processors', a bounded set. */
export function scalarStoreSlot(name: string): number {
  return scalarIds.of(name);
}

/** A scalar's slot if it has one, else -1 (reads of names nothing ever stored). */
export function scalarSlotOf(name: string): number {
  return scalarIds.get(name);
}

/** How many scalar slots exist so far. */
export function scalarSlotCount(): number {
  return scalarIds.count;
}

/** TX keys the rule sets name literally (setvar keys, `TX:key` selectors, `%{tx.key}` macros),
 * lower-cased, to process-wide slots: a transaction keeps their values in an array (TxCollection)
 * instead of a Map grown from empty every time (~50 keys a CRS GET, ~30 of them the fold's
 * replay). Only keys written in a configuration get one (bounded); keys built at run time from
 * request data stay in a Map. Ids only grow: a transaction uses those that existed when it began. */
const txIds = new DenseIds();
const txNames: string[] = [];

/** The TX slot of a lower-cased literal key, made if new (at load time). */
export function txSlot(lkey: string): number {
  const id = txIds.of(lkey);
  if (id === txNames.length) txNames.push(lkey);
  return id;
}

/** The TX slot of a lower-cased key if it has one, else -1 (made by nothing at run time). */
export function txSlotOf(lkey: string): number {
  return txIds.get(lkey);
}

// The capture keys (`capture` writes TX:0-9 on every match of a capturing rule), with their slots
// made first: every transaction's TX has them, so a capture writes by slot (no String(i),
// lower-casing or slot lookup a capture; six a CRS GET, 920450's header names).
export const CAPTURE_KEYS: readonly string[] = Array.from({ length: 10 }, (_, i) => String(i));
export const CAPTURE_SLOTS: readonly number[] = CAPTURE_KEYS.map((k) => txSlot(k));

/** How many TX slots exist so far. */
export function txSlotCount(): number {
  return txIds.count;
}

/** The lower-cased key of a TX slot. */
export function txSlotKey(slot: number): string {
  return txNames[slot]!;
}

/** A key regex (compiled with flag 'i', no 'u') that is a literal of ASCII letters, digits and
 * `_`, maybe anchored by `^` and ended by `.*` or `c*` (both may match nothing, so the literal
 * alone decides): the literal lower-cased and whether it is anchored; else undefined. */
export function literalKeyRegex(source: string): { lit: string; anchored: boolean } | undefined {
  const m = /^(\^?)([A-Za-z0-9_]+?)(\.\*|[A-Za-z0-9_]\*)?$/.exec(source);
  if (m === null) return undefined;
  return { lit: m[2]!.toLowerCase(), anchored: m[1] === '^' };
}

/** What `new RegExp(source, 'i').test(key)` answers for a literal key regex: without 'u', a key
 * char matches an ASCII literal char only when it is that char in either case (a non-ASCII char
 * whose upper case is ASCII, such as U+017F, is not folded to it). */
export function keyLiteralMatches(key: string, lit: string, anchored: boolean): boolean {
  const n = lit.length;
  const last = anchored ? 0 : key.length - n;
  for (let at = 0; at <= last; at++) {
    let i = 0;
    for (; i < n; i++) {
      let c = key.charCodeAt(at + i);
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      if (c !== lit.charCodeAt(i)) break;
    }
    if (i === n) return true;
  }
  return false;
}

/** Whether a selector's key regex matches `key` (its literal without the RegExp when it has one). */
export function keyMatches(v: RuleVariable, key: string): boolean {
  return v.keyLit !== undefined ? keyLiteralMatches(key, v.keyLit, v.keyAnchored) : v.keyRegex!.test(key);
}
