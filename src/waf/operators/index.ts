// SecLang operators (@rx, @pm, @eq, ...). compileOperator() does all the work
// that does not depend on the request once; evaluate() runs per value. The
// leading '!' (negation) is applied by the engine, not here.
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

import { DECODERS } from '../extra/decoders.ts';
import { detectSqli, detectXss } from '../libinjection/index.ts';
import { compileRegex, type SafeRegex } from '../regex/index.ts';
import { prefilter } from '../regex/prefilter.ts';
import { matchesAny, parseNetworkList } from './ip.ts';
import { decodePipeHex, parsePmPhrases, PhraseMatcher } from './pm.ts';
import { cpfValid, luhnValid, ssnValid, svnrValid } from './verify.ts';

export interface OperatorContext {
  /** true when the rule has the `capture` action: the operator fills `captures` (index 0 = whole match, 1..9 groups) */
  capture: boolean;
  captures: string[];
  /** expands %{...} macros in the operator parameter at evaluation time (identity when there are none) */
  expand(text: string): string;
}

export interface CompiledOperator {
  readonly name: string;
  evaluate(input: string, ctx: OperatorContext): boolean;
  /** A constant @rx pattern's prefilter index (regex/prefilter.ts), else -1: evaluate() asks
   * `prefilter.answer(prefilter, input)` first and returns false on 0, so a caller may ask it
   * itself and skip the call on a known miss. */
  readonly prefilter: number;
}

export interface OperatorOptions {
  /** base dir for @pmFromFile/@ipMatchFromFile relative paths */
  rulesDir?: string;
  /** what the operator will be asked about (the rule's variables): @rx patterns with the same
   * group share RE2.Set scans (regex/prefilter.ts) */
  group?: string;
}

type Factory = (param: string, opts: OperatorOptions) => (input: string, ctx: OperatorContext) => boolean;

/** ModSecurity/Coraza compile @rx with DOTALL and MULTILINE. */
const RX_OPTIONS = { dotAll: true, multiline: true } as const;
/** Captures are TX.0..TX.9. */
const MAX_CAPTURES = 10;

const hasMacro = (param: string): boolean => param.includes('%{');

/** Resolves the parameter now when it is constant, or per evaluation through ctx.expand. */
function withParam<T>(param: string, prepare: (value: string) => T): (ctx: OperatorContext) => T {
  if (!hasMacro(param)) {
    const fixed = prepare(param);
    return () => fixed;
  }
  return (ctx) => prepare(ctx.expand(param));
}

/**
 * Empties a list that is filled again soon (a transaction's captures, its matched data) and keeps
 * its room: V8 frees an array's elements when its length is set to 0, so the next push made room
 * for 17 anew (~150 bytes; 920450's capture on each header name, ~1 KB of a CRS GET's garbage).
 * Length 1 then pop() keeps them (what stays is holes: nothing is held).
 */
export function clearList(list: unknown[]): void {
  if (list.length === 0) return;
  list.length = 1;
  list.pop();
}

function setCaptures(ctx: OperatorContext, values: readonly string[]): void {
  if (!ctx.capture) return;
  clearList(ctx.captures);
  for (let k = 0; k < values.length && k < MAX_CAPTURES; k++) ctx.captures.push(values[k] ?? '');
}

/** C atoi(): optional whitespace and sign, then leading digits; anything else yields 0. */
export function atoi(text: string): number {
  // A scan, not a regex: numeric operators run on every request (CRS anomaly scores, counts),
  // and a regex exec allocates its match array each time.
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && (c < 0x09 || c > 0x0d)) break;
    i++;
  }
  let neg = false;
  if (i < n && (text.charCodeAt(i) === 0x2b || text.charCodeAt(i) === 0x2d)) {
    neg = text.charCodeAt(i) === 0x2d;
    i++;
  }
  const start = i;
  let v = 0;
  while (i < n) {
    const d = text.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) break;
    v = v * 10 + d;
    i++;
  }
  if (i === start) return 0;
  // Past 2^53 the running sum loses digits; parseInt reads the same digits as the regex did.
  if (i - start > 15) v = Number.parseInt(text.slice(start, i), 10);
  return neg ? -v : v;
}

function numeric(compare: (a: number, b: number) => boolean): Factory {
  return (param) => {
    const target = withParam(param, atoi);
    return (input, ctx) => compare(atoi(input), target(ctx));
  };
}

function stringTest(test: (input: string, param: string) => boolean): Factory {
  return (param) => {
    const value = withParam(param, (v) => v);
    return (input, ctx) => {
      const p = value(ctx);
      const ok = test(input, p);
      if (ok) setCaptures(ctx, [p]);
      return ok;
    };
  };
}

function isLetter(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** @containsWord: the phrase with no letter immediately before or after it. */
function containsWord(input: string, word: string): boolean {
  if (word === '') return true;
  for (let at = input.indexOf(word); at >= 0; at = input.indexOf(word, at + 1)) {
    const before = at === 0 || !isLetter(input.charCodeAt(at - 1));
    const end = at + word.length;
    const after = end >= input.length || !isLetter(input.charCodeAt(end));
    if (before && after) return true;
  }
  return false;
}

/** Common benign values of the variables @rx rules read (a request line, paths, numbers, words,
 * header values): a pattern that matches one of them is "dense" for the prefilter (it hits most
 * values it is scanned on, and a Set hit has a cost, see RegexPrefilter.register). Only where a
 * pattern's Set lies depends on them, never an answer. */
const DENSE_PROBES = ['', '0', '1234', 'abc', 'a b', '/', 'x.y', 'a=b&c=d', 'GET / HTTP/1.1'];
/** How many probes a dense pattern matches. */
const DENSE_AT = 3;

/** The prefilter index an operator function asks first (compileOperator reads it). */
const PREFILTERED = new WeakMap<object, number>();

function withPrefilter<F extends object>(index: number, fn: F): F {
  PREFILTERED.set(fn, index);
  return fn;
}

function rxFactory(param: string, opts: OperatorOptions): (input: string, ctx: OperatorContext) => boolean {
  if (!hasMacro(param)) {
    // Constant pattern: the shared RE2.Set prefilter answers most calls without this regex.
    const re = compileRegex(param, RX_OPTIONS);
    if (re.matchesAll) {
      // `^.*$` (CRS 920450 with capture, on every header name): nothing to ask a Set about.
      return (input, ctx) => {
        if (ctx.capture) {
          clearList(ctx.captures);
          ctx.captures.push(input);
        }
        return true;
      };
    }
    const index = prefilter.register(re.source, opts.group, DENSE_PROBES.filter((p) => re.test(p)).length >= DENSE_AT);
    return withPrefilter(index, (input, ctx) => {
      const known = prefilter.answer(index, input);
      if (known === 0) return false;
      if (known === 1 && !ctx.capture) return true;
      if (!ctx.capture) return re.test(input);
      const m = re.exec(input);
      if (!m) return false;
      setCaptures(ctx, m);
      return true;
    });
  }
  const regex = withParam(param, (p) => compileRegex(p, RX_OPTIONS));
  return (input, ctx) => {
    const re = regex(ctx);
    if (!ctx.capture) return re.test(input);
    const m = re.exec(input);
    if (!m) return false;
    setCaptures(ctx, m);
    return true;
  };
}

/** @rxGlobal: like @rx, but captures every match (whole match and groups of each, in order). */
function rxGlobalFactory(param: string): (input: string, ctx: OperatorContext) => boolean {
  const regex = withParam(param, (p) => compileRegex(p, RX_OPTIONS));
  return (input, ctx) => {
    const re = regex(ctx);
    if (!ctx.capture) return re.test(input);
    const all = re.execAll(input);
    if (all.length === 0) return false;
    clearList(ctx.captures);
    for (const m of all) ctx.captures.push(...m);
    return true;
  };
}

function readDataFiles(param: string, opts: OperatorOptions, operator: string): string[] {
  const files = param.split(/\s+/).filter((f) => f !== '');
  if (files.length === 0) throw new Error(`@${operator} needs at least one file name`);
  const lines: string[] = [];
  for (const file of files) {
    const path = isAbsolute(file) ? file : resolve(opts.rulesDir ?? process.cwd(), file);
    let content: string;
    try {
      content = readFileSync(path, 'latin1');
    } catch (e) {
      throw new Error(`@${operator}: cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
    for (const raw of content.split(/\r?\n/)) {
      const line = raw.trim();
      if (line !== '' && !line.startsWith('#')) lines.push(line);
    }
  }
  return lines;
}

function phraseFactory(load: (param: string, opts: OperatorOptions) => string[]): Factory {
  return (param, opts) => {
    const matcher = withParam(param, (p) => new PhraseMatcher(load(p, opts)));
    return (input, ctx) => {
      const found = matcher(ctx).find(input);
      if (found === null) return false;
      setCaptures(ctx, [found]);
      return true;
    };
  };
}

function ipFactory(load: (param: string, opts: OperatorOptions) => string[]): Factory {
  return (param, opts) => {
    const nets = parseNetworkList(load(param, opts));
    return (input) => matchesAny(nets, input);
  };
}

/** @validateByteRange 10,13,32-126: true when some byte is outside every range. */
function byteRangeFactory(param: string): (input: string) => boolean {
  const allowed = new Uint8Array(256);
  for (const token of param.split(',')) {
    const t = token.trim();
    const dash = t.indexOf('-', 1);
    const lo = atoi(dash > 0 ? t.slice(0, dash) : t);
    const hi = dash > 0 ? atoi(t.slice(dash + 1)) : lo;
    if (lo < 0 || hi > 255 || lo > hi) throw new Error(`@validateByteRange: invalid range ${JSON.stringify(t)}`);
    allowed.fill(1, lo, hi + 1);
  }
  const outside = (input: string): boolean => {
    for (let i = 0; i < input.length; i++) if (!allowed[input.charCodeAt(i) & 0xff]) return true;
    return false;
  };
  // Long values (a JSON body's text leaves, CRS 920270 on ARGS) in one native scan: a character
  // class of the bytes not allowed plus everything above 0xff (not latin1 binary: the byte loop
  // decides those by their low byte, as before). A class miss means every char is an allowed byte.
  // The loop cost ~14 instructions a char; short values keep it (a RegExp call costs more).
  let cls = '';
  for (let b = 0; b < 256; b++) {
    if (allowed[b]) continue;
    let e = b;
    while (e < 255 && !allowed[e + 1]) e++;
    cls += e === b ? hexEscape(b) : `${hexEscape(b)}-${hexEscape(e)}`;
    b = e;
  }
  const suspect = new RegExp(`[${cls}\\u0100-\\uffff]`);
  return (input) => (input.length < LONG_VALUE ? outside(input) : suspect.test(input) && outside(input));
}

/** From this length on @validateByteRange scans with a RegExp first (byteRangeFactory). */
const LONG_VALUE = 64;

function hexEscape(b: number): string {
  return `\\x${b.toString(16).padStart(2, '0')}`;
}

/** True when a '%' is not followed by two hex digits. */
export function hasInvalidUrlEncoding(input: string): boolean {
  for (let at = input.indexOf('%'); at >= 0; at = input.indexOf('%', at + 1)) {
    if (!/^[0-9a-fA-F]{2}/.test(input.slice(at + 1, at + 3))) return true;
  }
  return false;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** True when the bytes are not well-formed UTF-8 (truncated, overlong, surrogates, > U+10FFFF). */
export function hasInvalidUtf8(input: string): boolean {
  // ASCII-only input is always valid; skip the copy.
  if (!/[\x80-\xff]/.test(input)) return false;
  try {
    strictUtf8.decode(Buffer.from(input, 'latin1'));
    return false;
  } catch {
    return true;
  }
}

/** @verifyCC & co: a regex finds candidates, a checksum confirms one. */
function verifyFactory(check: (text: string) => boolean): Factory {
  return (param) => {
    const regex: SafeRegex = compileRegex(param, RX_OPTIONS);
    return (input, ctx) => {
      for (const m of regex.execAll(input)) {
        const whole = m[0] ?? '';
        if (check(whole)) {
          setCaptures(ctx, [whole]);
          return true;
        }
      }
      return false;
    };
  };
}

function decodedFactory(detect: (text: string) => boolean): Factory {
  return (param) => {
    const decode = DECODERS[param.trim()];
    if (!decode) throw new Error(`unknown decoder ${JSON.stringify(param)} (known: ${Object.keys(DECODERS).join(', ')})`);
    return (input, ctx) => {
      for (const text of decode(input)) {
        if (!detect(text)) continue;
        setCaptures(ctx, [text.length > 200 ? text.slice(0, 200) : text]);
        return true;
      }
      return false;
    };
  };
}

const FACTORIES: Record<string, Factory> = {
  rx: rxFactory,
  rxGlobal: rxGlobalFactory,
  pm: phraseFactory((p) => parsePmPhrases(p)),
  pmFromFile: phraseFactory((p, o) => readDataFiles(p, o, 'pmFromFile').map(decodePipeHex)),
  streq: stringTest((input, p) => input === p),
  strmatch: stringTest((input, p) => p !== '' && input.includes(p)),
  contains: stringTest((input, p) => input.includes(p)),
  containsWord: stringTest(containsWord),
  beginsWith: stringTest((input, p) => input.startsWith(p)),
  endsWith: stringTest((input, p) => input.endsWith(p)),
  within: stringTest((input, p) => p.includes(input)),
  eq: numeric((a, b) => a === b),
  ge: numeric((a, b) => a >= b),
  gt: numeric((a, b) => a > b),
  le: numeric((a, b) => a <= b),
  lt: numeric((a, b) => a < b),
  ipMatch: ipFactory((p) => p.split(/[,\s]+/).filter((e) => e !== '')),
  ipMatchFromFile: ipFactory((p, o) => readDataFiles(p, o, 'ipMatchFromFile')),
  validateByteRange: (p) => byteRangeFactory(p),
  validateUrlEncoding: () => hasInvalidUrlEncoding,
  validateUtf8Encoding: () => hasInvalidUtf8,
  unconditionalMatch: () => () => true,
  noMatch: () => () => false,
  detectSQLi: () => (input, ctx) => {
    const { detected, fingerprint } = detectSqli(input);
    // With `capture`, TX.0 holds the libinjection fingerprint (as ModSecurity does).
    if (detected) setCaptures(ctx, [fingerprint]);
    return detected;
  },
  detectXSS: () => (input) => detectXss(input),
  // Sentinel extensions (extra rule sets, src/waf/extra): libinjection over what a decoder
  // finds inside the value (param: base64 | json); TX.0 = the decoded text that matched.
  detectSQLiDecoded: decodedFactory((text) => detectSqli(text).detected),
  detectXSSDecoded: decodedFactory((text) => detectXss(text)),
  verifyCC: verifyFactory(luhnValid),
  verifySSN: verifyFactory(ssnValid),
  verifyCPF: verifyFactory(cpfValid),
  verifySVNR: verifyFactory(svnrValid),
};

/** Short names ModSecurity accepts for the file-based operators. */
const ALIASES: Record<string, string> = { pmf: 'pmFromFile', ipmatchf: 'ipMatchFromFile' };

const BY_LOWER_NAME = new Map<string, [string, Factory]>(
  Object.entries(FACTORIES).map(([name, f]) => [name.toLowerCase(), [name, f]]),
);

export const operatorNames: readonly string[] = Object.freeze(Object.keys(FACTORIES));

/**
 * Compile an operator (name without '@', case-insensitive). Throws an Error
 * naming the operator for unknown operators and bad parameters (invalid regex,
 * missing data file, malformed IP list, ...).
 */
export function compileOperator(name: string, param: string, opts: OperatorOptions = {}): CompiledOperator {
  const lower = name.toLowerCase();
  const entry = BY_LOWER_NAME.get(ALIASES[lower]?.toLowerCase() ?? lower);
  if (!entry) throw new Error(`unknown operator @${name}`);
  const [canonical, factory] = entry;
  let evaluate: (input: string, ctx: OperatorContext) => boolean;
  try {
    evaluate = factory(param, opts);
  } catch (e) {
    const message = (e as Error).message;
    throw new Error(message.startsWith('@') ? message : `@${canonical} ${JSON.stringify(param)}: ${message}`, {
      cause: e,
    });
  }
  return { name: canonical, evaluate, prefilter: PREFILTERED.get(evaluate) ?? -1 };
}
