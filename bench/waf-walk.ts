// The rule walk of the WAF engine, counted (deterministic, load-independent): per benign request of
// `bench:waf` (bench/lib/waf-requests.ts), after a warm-up, how many chain starters the phase loop
// evaluates, how many rule links it walks, how many of those evaluations did nothing (no
// transformation ran, no match: every item a known miss or no item), how many values went through
// a transformation chain and an operator, and how many starters matched. The counts come from
// wrapping the Transaction's methods (this bench only). The branch `wafplan-rule-plan` has a
// version that also runs with its rule plan on and off (docs/waf.md, tenth session).
//
//   node --import tsx bench/waf-walk.ts [--warmup 3000] [--requests 100] [--pl 1] [--host H] [--detail]
//
// --detail: also per request, the operator evaluations by operator, the transformation calls
// (the per-transaction cache's misses) by transformation and their input chars, the RE2.Set scans
// (calls and bytes) and the regexes run directly (test/exec: the prefilter did not answer, or a
// capture), with the chars they converted (node-re2 converts a JS string to UTF-8 on each call).
//
// CRS from $CRS_DIR (default ../shared/conformance/crs).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';

import RE2 from 're2';

import { Transaction } from '../src/waf/engine/transaction.ts';
import type { Rule } from '../src/waf/engine/rule.ts';
import { loadWaf, type Waf } from '../src/waf/index.ts';
import { BROWSER_HEADERS, getPath, jsonBody, POST_PATH } from './lib/waf-requests.ts';

const { values: argv } = parseArgs({
  options: {
    warmup: { type: 'string', default: '3000' },
    requests: { type: 'string', default: '100' },
    pl: { type: 'string', default: '1' },
    host: { type: 'string', default: '127.0.0.1:8080' },
    detail: { type: 'boolean', default: false },
  },
});

interface Counts {
  starters: number;
  links: number;
  idle: number;
  values: number;
  matched: number;
}
const counts: Counts = { starters: 0, links: 0, idle: 0, values: 0, matched: 0 };

// The private methods this bench counts (a measurement hook, not an API).
interface Walk {
  evaluate(rule: Rule): boolean;
  matchLink(link: Rule, collected: unknown): boolean;
  transform(link: Rule, value: string): readonly string[];
}
const proto = Transaction.prototype as unknown as Walk;
const { evaluate, matchLink, transform } = proto;
proto.evaluate = function (this: Walk, rule: Rule): boolean {
  counts.starters++;
  const m = evaluate.call(this, rule);
  if (m) counts.matched++;
  return m;
};
proto.matchLink = function (this: Walk, link: Rule, collected: unknown): boolean {
  counts.links++;
  const v0 = counts.values;
  const m = matchLink.call(this, link, collected);
  if (!m && counts.values === v0) counts.idle++;
  return m;
};
proto.transform = function (this: Walk, link: Rule, value: string): readonly string[] {
  counts.values++;
  return transform.call(this, link, value);
};

const crsDir = process.env.CRS_DIR ?? resolve(import.meta.dirname, '..', '..', 'shared', 'conformance', 'crs');
const base: [string, string][] = [['host', argv.host], ...BROWSER_HEADERS.map(([k, v]): [string, string] => [k.toLowerCase(), v])];
const [bodyPre, bodyPost] = jsonBody('{{n}}').split('{{n}}') as [string, string];
let n = 0;
function once(waf: Waf, post: boolean): void {
  n++;
  const body = post ? Buffer.from(bodyPre + String(n % 100000000).padStart(8, '0') + bodyPost, 'latin1') : undefined;
  const headers: [string, string][] = body ? [...base, ['content-type', 'application/json'], ['content-length', String(body.length)]] : base;
  const tx = waf.newTransaction({ clientIp: '127.0.0.1', clientPort: 40000 + (n % 20000), serverPort: 0, method: post ? 'POST' : 'GET', uri: post ? POST_PATH : getPath(String(n)), protocol: 'HTTP/1.1', headers });
  let it = tx.processRequestHeaders();
  if (!it && body) it = tx.appendRequestBody(body);
  if (!it) tx.processRequestBody();
  tx.processLogging();
}

const per = Number(argv.requests);
const waf = loadWaf({ mode: 'blocking', paranoiaLevel: Number(argv.pl), crsDir });

/** --detail: name -> [calls, chars] */
const detail = new Map<string, [number, number]>();
const count = (name: string, chars: number): void => {
  const c = detail.get(name);
  if (c) {
    c[0]++;
    c[1] += chars;
  } else detail.set(name, [1, chars]);
};
if (argv.detail) {
  const wrapped = new Set<object>();
  for (const entries of Object.values(waf.ruleSet.phases)) {
    for (const e of entries) {
      if (e.kind !== 'rule') continue;
      for (let link: Rule | undefined = e.rule; link; link = link.chained) {
        const op = link.operator;
        if (op && !wrapped.has(op.compiled)) {
          wrapped.add(op.compiled);
          const inner = op.compiled.evaluate;
          const name = `op @${op.name}`;
          (op.compiled as { evaluate: typeof inner }).evaluate = (input, ctx) => {
            count(name, input.length);
            return inner(input, ctx);
          };
        }
        for (const t of link.transformations) {
          if (wrapped.has(t)) continue;
          wrapped.add(t);
          const fn = t.fn;
          const name = `t:${t.name}`;
          t.fn = (input) => {
            const out = fn(input);
            count(out === input ? `${name} (unchanged)` : name, input.length);
            return out;
          };
        }
      }
    }
  }
  const re2 = RE2.prototype as unknown as { test(s: string): boolean; exec(s: string): unknown };
  const { test: rtest, exec: rexec } = re2;
  re2.test = function (this: unknown, s: string): boolean {
    count('RE2 test (direct)', s.length);
    return rtest.call(this, s);
  };
  re2.exec = function (this: unknown, s: string): unknown {
    count('RE2 exec (direct)', s.length);
    return rexec.call(this, s);
  };
  const set = RE2.Set.prototype as unknown as { match(s: Buffer | string): number[] };
  const smatch = set.match;
  set.match = function (this: unknown, s: Buffer | string): number[] {
    count('RE2.Set match', s.length);
    return smatch.call(this, s);
  };
}
for (let i = 0; i < Number(argv.warmup); i++) {
  once(waf, false);
  if ((i & 1) === 0) once(waf, true);
}
for (const post of [false, true]) {
  for (const k of Object.keys(counts) as (keyof Counts)[]) counts[k] = 0;
  detail.clear();
  for (let i = 0; i < per; i++) once(waf, post);
  const f = (x: number): string => (x / per).toFixed(1);
  console.log(`${(post ? 'POST' : 'GET').padEnd(4)}: starters evaluated ${f(counts.starters)}, links walked ${f(counts.links)} (did nothing ${f(counts.idle)}), values evaluated ${f(counts.values)}, matched starters ${f(counts.matched)}`);
  for (const [name, [calls, chars]] of [...detail].sort((a, b) => b[1][0] - a[1][0])) {
    console.log(`      ${f(calls).padStart(7)} x ${name} (${f(chars)} chars)`);
  }
}
