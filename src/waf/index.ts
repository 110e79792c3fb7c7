// Public API of the WAF engine: load a rule set (the OWASP CRS by default) once, then run
// cheap transactions through it. See docs/waf.md.
import { RuleSetBuilder, type RuleSet } from './engine/compile.ts';
import { PersistentStore } from './engine/persistence.ts';
import { Transaction } from './engine/transaction.ts';
import { crsDirectives, type CrsLoadOptions } from './crs/index.ts';
import { loadDirectives, type Directive } from './seclang/parser.ts';
import { prefilter } from './regex/prefilter.ts';

export { Transaction } from './engine/transaction.ts';
export type { Intervention, MatchedRule, MatchedData } from './engine/transaction.ts';
export { SecLangError } from './seclang/parser.ts';
export { defaultCrsDir } from './crs/index.ts';

export interface WafExclusions {
  /** Rule ids or "lo-hi" ranges removed everywhere. */
  ruleIds?: (number | string)[];
  /** Rules carrying any of these tags are removed. */
  tags?: string[];
  /** Per-request exclusions: when the request path starts with `pathPrefix` (and the Host
   *  matches `host`, if given), the listed rules are skipped for that request. */
  scoped?: { pathPrefix?: string; host?: string; ruleIds?: (number | string)[]; tags?: string[] }[];
}

export interface WafOptions extends Omit<CrsLoadOptions, 'beforeRules' | 'afterRules'> {
  /** 'blocking' -> SecRuleEngine On; 'detection' -> DetectionOnly (log, never intervene). */
  mode: 'blocking' | 'detection';
  /** Extra SecLang text loaded right before the CRS rules. */
  directives?: string;
  /** Extra SecLang text loaded after the CRS rules. */
  afterDirectives?: string;
  exclusions?: WafExclusions;
}

export interface NewTransactionInput {
  clientIp: string;
  clientPort: number;
  serverIp?: string;
  serverPort: number;
  method: string;
  /** Request target exactly as received, query string included. */
  uri: string;
  /** e.g. "HTTP/1.1" */
  protocol: string;
  /** The request headers as (name, value) pairs, in order. */
  headers?: [string, string][];
  /** Or the same headers as one flat list (name, value, name, value, ...): one array a request,
   * not one a header (the in-process agent's form). Used when given, instead of `headers`. */
  headerList?: readonly string[];
}

export class Waf {
  private readonly store: PersistentStore;

  constructor(
    readonly ruleSet: RuleSet,
    private readonly scoped: NonNullable<WafExclusions['scoped']> = [],
  ) {
    this.store = new PersistentStore(ruleSet.settings.collectionTimeout);
  }

  /** Number of rules (chain starters and SecActions) loaded. */
  get ruleCount(): number {
    return this.ruleSet.byId.size;
  }

  newTransaction(input: NewTransactionInput): Transaction {
    const list = input.headerList ?? flatHeaders(input.headers ?? []);
    // The input is the connection and the request line (it has their members): no copies a request.
    const tx = new Transaction(this.ruleSet, this.store, input, input, list);
    if (this.scoped.length) {
      const path = input.uri.split('?')[0]!;
      let host = '';
      for (let i = 0; i + 1 < list.length; i += 2) {
        if (list[i]!.toLowerCase() === 'host') {
          host = list[i + 1]!;
          break;
        }
      }
      host = host.replace(/:\d+$/, '').toLowerCase();
      for (const s of this.scoped) {
        if (s.pathPrefix !== undefined && !path.startsWith(s.pathPrefix)) continue;
        if (s.host !== undefined && s.host.toLowerCase() !== host) continue;
        tx.removeRules(s.ruleIds?.map(String) ?? [], s.tags ?? []);
      }
    }
    return tx;
  }
}

/** (name, value) pairs as one flat list: name, value, name, value, ... */
export function flatHeaders(pairs: readonly (readonly [string, string])[]): string[] {
  const out: string[] = [];
  for (const [k, v] of pairs) out.push(k, v);
  return out;
}

/** Compiles SecLang directives (already parsed) into a Waf. */
export function wafFromDirectives(directives: Directive[], scoped?: WafExclusions['scoped']): Waf {
  const waf = new Waf(new RuleSetBuilder().add(directives).build(), scoped);
  // The @rx patterns just compiled join the one-pass prefilter (compiled now, not on a request).
  prefilter.build();
  return waf;
}

/** Compiles SecLang text into a Waf without the CRS (tests, custom rule sets). */
export function wafFromText(text: string, file = '<inline>', baseDir = process.cwd()): Waf {
  return wafFromDirectives(loadDirectives(text, file, baseDir));
}

/** Loads the recommended config and the CRS (parsed once; transactions are cheap). */
export function loadWaf(opts: WafOptions): Waf {
  const ex = opts.exclusions ?? {};
  const after: string[] = [];
  if (ex.ruleIds?.length) after.push(`SecRuleRemoveById ${ex.ruleIds.join(' ')}`);
  for (const t of ex.tags ?? []) after.push(`SecRuleRemoveByTag "${t.replace(/"/g, '\\"')}"`);
  if (opts.afterDirectives) after.push(opts.afterDirectives);
  const engine = opts.mode === 'blocking' ? 'SecRuleEngine On' : 'SecRuleEngine DetectionOnly';
  const directives = crsDirectives({
    ...opts,
    beforeRules: `${engine}\n${opts.directives ?? ''}`,
    afterRules: after.join('\n'),
  });
  return wafFromDirectives(directives, ex.scoped);
}
