// The load-time fold (engine/transaction.ts, "the fold"): rules decided from TX values the
// set-up fixes must give the same outcome as evaluating them. Each case runs the same requests
// through two engines of the same rules, fold on and off, and compares everything a rule or a
// caller can see: the intervention, the matched rules (logged ones with messages, data and
// matched values; nolog ones by id), and TX and MATCHED_VAR(S) as later rules read them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { readsOnlyResponse, setFolding, Transaction, type FoldPlan } from '../../../src/waf/engine/transaction.ts';
import type { Rule } from '../../../src/waf/engine/rule.ts';
import { wafFromText, type Waf } from '../../../src/waf/index.ts';
import { outcome, PROBES, type Req } from './outcome.ts';

function compare(rules: string, reqs: Req[], label = ''): void {
  const text = `${rules}\n${PROBES}`;
  const on = wafFromText(text);
  const off = wafFromText(text);
  for (const r of reqs) {
    // Twice each: the second run meets warm caches (miss memo, prefilter).
    for (let round = 0; round < 2; round++) {
      setFolding(true);
      const a = outcome(on, r);
      setFolding(false);
      const b = outcome(off, r);
      setFolding(true);
      assert.equal(a, b, `${label} ${JSON.stringify(r)}`);
    }
  }
}

/** Ids of the rules the plan decides: [hits, misses]. */
function decided(waf: Waf): [number[], number[]] {
  const plan: FoldPlan = Transaction.buildFoldPlan(waf.ruleSet);
  const hits: number[] = [];
  const misses: number[] = [];
  plan.phases.forEach((folds, p) =>
    folds.forEach((f, i) => {
      const e = waf.ruleSet.phases[p]![i]!;
      if (f === undefined || e.kind !== 'rule') return;
      (f.hit ? hits : misses).push(e.rule.id);
    }),
  );
  return [hits.sort((a, b) => a - b), misses.sort((a, b) => a - b)];
}

const SETUP = `SecRuleEngine On
SecRequestBodyAccess On
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1,setvar:tx.threshold=5"
SecRule &TX:pl "@eq 0" "id:2,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule &TX:other "@eq 0" "id:3,phase:1,pass,nolog,setvar:tx.other=7"
SecAction "id:4,phase:1,pass,nolog,setvar:tx.score=0"`;

const GATED = `${SETUP}
SecRule TX:pl "@lt 1" "id:10,phase:1,pass,nolog,skipAfter:END-1"
SecRule ARGS "@contains attack" "id:11,phase:1,pass,log,msg:'attack %{MATCHED_VAR}',severity:2,setvar:tx.score=+5"
SecRule TX:pl "@lt 2" "id:12,phase:1,pass,nolog,skipAfter:END-1"
SecRule ARGS "@contains pl2" "id:13,phase:1,pass,log,msg:'pl2',setvar:tx.score=+5"
SecMarker END-1
SecRule MATCHED_VAR "@streq 1" "id:14,phase:1,pass,log,msg:'after gate %{MATCHED_VAR_NAME}'"
SecRule TX:pl "@ge 1" "id:20,phase:2,pass,nolog,setvar:tx.sum=+%{tx.score}"
SecRule TX:score "@ge %{tx.threshold}" "id:21,phase:2,deny,status:403,log,msg:'blocked'"
SecRule TX:other "@eq 7" "id:30,phase:4,pass,nolog,skipAfter:END-4"
SecRule RESPONSE_STATUS "@streq 200" "id:31,phase:4,pass,log,msg:'not reached'"
SecMarker END-4
SecRule TX:pl "@ge 2" "id:50,phase:5,pass,log,msg:'pl2 log'"
SecRule TX:pl "@eq 1" "id:51,phase:5,pass,nolog"`;

const REQS: Req[] = [{ uri: '/?a=hello' }, { uri: '/?a=attack' }, { uri: '/?a=pl2' }, { uri: '/', body: 'x=attack', headers: [['Content-Type', 'application/x-www-form-urlencoded']] }];

describe('load-time fold', () => {
  it('decides the gates and the set-up, and gives the same outcomes', () => {
    const [hits, misses] = decided(wafFromText(GATED));
    assert.deepEqual(hits, [1, 3, 4, 12, 30, 51]);
    assert.deepEqual(misses, [2, 10, 50]);
    compare(GATED, REQS, 'gated');
  });

  it('a key some request rule writes is not decided', () => {
    const rules = `${GATED}\nSecRule ARGS "@streq up" "id:60,phase:1,pass,nolog,setvar:tx.pl=2"`;
    const [hits, misses] = decided(wafFromText(rules));
    for (const id of [12, 20, 50, 51]) assert.ok(!hits.includes(id) && !misses.includes(id), `rule ${id} decided`);
    assert.ok(hits.includes(30));
    compare(rules, [...REQS, { uri: '/?a=up' }], 'written');
  });

  it('a write under a macro key threatens the keys with its literal prefix, or all keys', () => {
    const prefixed = `${GATED}\nSecRule ARGS "@rx ." "id:61,phase:2,pass,nolog,setvar:'tx.p%{MATCHED_VAR}=2'"`;
    let [hits] = decided(wafFromText(prefixed));
    assert.ok(!hits.includes(12) && !hits.includes(20), 'tx.pl starts with p');
    assert.ok(hits.includes(30), 'tx.other does not');
    compare(prefixed, [...REQS, { uri: '/?a=l' }], 'prefixed');
    const any = `${GATED}\nSecRule ARGS "@rx ." "id:61,phase:2,pass,nolog,setvar:'tx.%{MATCHED_VAR}=2'"`;
    [hits] = decided(wafFromText(any));
    assert.ok(!hits.includes(30) && !hits.includes(12));
    compare(any, [...REQS, { uri: '/?a=other' }, { uri: '/?a=pl' }], 'any');
  });

  it('captures threaten TX:0-9', () => {
    const rules = `${SETUP}
SecRule ARGS "@rx (a+)" "id:10,phase:1,pass,nolog,capture"
SecRule TX:0 "@streq aa" "id:11,phase:1,pass,log,msg:'cap'"
SecRule &TX:1 "@eq 0" "id:12,phase:1,pass,log,msg:'no cap 1'"`;
    const [hits, misses] = decided(wafFromText(rules));
    assert.ok(![11, 12].some((id) => hits.includes(id) || misses.includes(id)));
    compare(rules, [{ uri: '/?x=aa' }, { uri: '/?x=b' }], 'capture');
  });

  it('a ctl removing a decided rule or its TX target at run time', () => {
    const rules = `${GATED}
SecRule ARGS "@streq rm" "id:70,phase:1,pass,nolog,ctl:ruleRemoveById=12"
SecRule ARGS "@streq tgt" "id:71,phase:1,pass,nolog,ctl:ruleRemoveTargetById=30;TX:other,ctl:ruleRemoveTargetById=52;TX:pl"
SecRule &TX:pl "@eq 0" "id:52,phase:5,pass,log,msg:'pl removed'"`;
    compare(rules, [...REQS, { uri: '/?a=rm' }, { uri: '/?a=tgt' }, { uri: '/?a=rm&b=pl2' }], 'ctl');
  });

  it('rules removed before phase 1 (scoped exclusions), an early intervention, the engine switched off', () => {
    const rules = `SecRequestBodyLimit 5
SecRequestBodyLimitAction Reject
${GATED}
SecRule ARGS "@streq off" "id:72,phase:1,pass,nolog,ctl:ruleEngine=Off"
SecRule ARGS "@streq det" "id:73,phase:1,pass,nolog,ctl:ruleEngine=DetectionOnly"`;
    compare(rules, [...REQS, { uri: '/?a=attack', remove: ['1'] }, { uri: '/?a=pl2', remove: ['12'] }, { uri: '/', body: 'x=attackattack', bodyFirst: true }, { uri: '/?a=off' }, { uri: '/?a=det&b=attack' }], 'removed');
  });

  it('the prefix ends at a rule that could change what the set-up rules read', () => {
    const rules = `SecRuleEngine On
SecRule REQUEST_HEADERS:Content-Type "@rx json" "id:5,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecAction "id:1,phase:1,pass,nolog,setvar:tx.pl=1"
SecRule ARGS "@streq two" "id:6,phase:1,pass,nolog,setvar:tx.late=2"
SecRule &TX:late "@eq 0" "id:7,phase:1,pass,nolog,setvar:tx.late=1"
SecRule TX:pl "@eq 1" "id:8,phase:1,pass,log,msg:'pl %{tx.late}'"
SecRule TX:late "@eq 1" "id:9,phase:2,pass,nolog,skipAfter:END"
SecRule ARGS "@streq two" "id:10,phase:2,pass,log,msg:'late two'"
SecMarker END`;
    const [hits, misses] = decided(wafFromText(rules));
    assert.deepEqual(hits, [1]);
    assert.deepEqual(misses, []);
    compare(rules, [{ uri: '/?a=one' }, { uri: '/?a=two' }, { uri: '/', body: '{"a":"two"}', headers: [['Content-Type', 'application/json']] }], 'prefix');
  });

  it('without a response, rules reading only response variables are skipped as misses', () => {
    const rules = `${GATED}
SecResponseBodyAccess On
SecRule ARGS "@streq mv" "id:80,phase:1,pass,nolog"
SecRule RESPONSE_HEADERS "!@rx ^never$" "id:81,phase:1,pass,log,msg:'neg %{MATCHED_VAR}'"
SecRule RESPONSE_STATUS "!@streq 999" "id:82,phase:3,pass,log,msg:'status',skipAfter:END-R3"
SecRule ARGS "@streq mv" "id:83,phase:3,pass,log,msg:'not skipped'"
SecMarker END-R3
SecRule &RESPONSE_HEADERS "@eq 0" "id:84,phase:3,pass,log,msg:'no headers'"
SecRule &RESPONSE_HEADERS:Content-Type "@eq 0" "id:85,phase:4,pass,log,msg:'no type'"
SecRule RESPONSE_HEADERS|!RESPONSE_HEADERS:Content-Type "@unconditionalMatch" "id:86,phase:4,pass,log,msg:'other header'"
SecRule RESPONSE_BODY "@rx ^$" "id:87,phase:4,pass,log,msg:'empty body'"
SecRule RESPONSE_HEADERS_NAMES|ARGS "@rx ^(?:x|mv)$" "id:88,phase:4,pass,log,msg:'mixed %{MATCHED_VAR_NAME}'"
SecRule STATUS|STATUS_LINE|RESPONSE_PROTOCOL|RESPONSE_CONTENT_TYPE|RESPONSE_CONTENT_LENGTH "@unconditionalMatch" "id:89,phase:5,pass,log,msg:'resp %{MATCHED_VAR_NAME}',setvar:tx.score=+1"
SecRule MATCHED_VAR "@rx ." "id:90,phase:5,pass,log,msg:'mv after %{MATCHED_VAR_NAME}'"
SecRule RESPONSE_STATUS "@streq 200" "id:91,phase:4,deny,status:403,log,msg:'denied on response'"`;
    const reqs: Req[] = [];
    for (const r of [...REQS, { uri: '/?a=mv' }, { uri: '/?x=1' }]) {
      reqs.push(r, { ...r, noResponse: true }, { ...r, responseHeaders: [['Content-Type', 'text/html'], ['X', 'y']] }, { ...r, responseHeaders: [] });
    }
    compare(rules, reqs, 'response');
  });

  it('which starters read only response variables', () => {
    const waf = wafFromText(`SecRule RESPONSE_BODY "@rx a" "id:1,phase:4,pass"
SecRule RESPONSE_HEADERS:Content-Type|!RESPONSE_HEADERS:x "!@rx a" "id:2,phase:3,pass"
SecRule STATUS|RESPONSE_STATUS|RESPONSE_PROTOCOL|STATUS_LINE|RESPONSE_HEADERS_NAMES|RESPONSE_CONTENT_TYPE|RESPONSE_CONTENT_LENGTH "@rx a" "id:3,phase:5,pass"
SecRule &RESPONSE_HEADERS "@eq 0" "id:4,phase:3,pass"
SecRule RESPONSE_BODY|ARGS "@rx a" "id:5,phase:4,pass"
SecRule !RESPONSE_HEADERS:x "@rx a" "id:6,phase:4,pass"
SecAction "id:7,phase:4,pass"
SecRule ARGS "@rx a" "id:8,phase:4,pass,chain"
SecRule RESPONSE_BODY "@rx a" ""
SecRule RESPONSE_BODY "@rx a" "id:9,phase:4,pass,chain"
SecRule ARGS "@rx a" ""`);
    const only = [...waf.ruleSet.byId.values()].filter((r) => readsOnlyResponse(r)).map((r) => r.id);
    assert.deepEqual(only.sort((a, b) => a - b), [1, 2, 3, 9]);
  });

  it('links decided from stable TX: score additions, a logged chain starter, operator parameters', () => {
    const rules = `${GATED.replace(SETUP, `${SETUP}\nSecAction "id:5,phase:1,pass,nolog,setvar:tx.allowed=GET HEAD,setvar:tx.tag=AbC"`)}
SecRule TX:pl "@ge 1" "id:40,phase:2,pass,log,msg:'chain %{MATCHED_VAR}',logdata:'%{MATCHED_VAR_NAME}',chain"
  SecRule ARGS "@contains attack" "t:none,setvar:tx.x=+1"
SecRule REQUEST_METHOD "!@within %{tx.allowed}" "id:41,phase:1,block,log,msg:'method %{MATCHED_VAR}',severity:3"
SecRule TX:tag "@rx (?i)^abc$" "id:42,phase:3,pass,log,msg:'mm %{MATCHED_VAR}',t:none,t:lowercase,multiMatch,setvar:tx.mm=+1"
SecRule TX:tag|TX:pl "@rx ^[a1]" "id:43,phase:2,pass,log,msg:'two %{MATCHED_VAR_NAME}',t:lowercase,setvar:tx.two=+1"
SecRule ARGS "@streq hello" "id:44,phase:2,pass,log,msg:'absent',chain"
  SecRule TX:absent "!@rx x" ""
SecRule ARGS "@streq tgt" "id:45,phase:1,pass,nolog,ctl:ruleRemoveTargetById=20;TX:pl,ctl:ruleRemoveTargetById=41;REQUEST_METHOD"
SecRule ARGS "@streq up" "id:46,phase:1,pass,nolog,setvar:tx.score=+100"`;
    const waf = wafFromText(rules);
    const plan = Transaction.buildFoldPlan(waf.ruleSet);
    const planOf = (id: number): string[] => {
      const out: string[] = [];
      for (let l: Rule | undefined = waf.ruleSet.byId.get(id); l; l = l.chained) {
        const p = plan.links[l.linkIndex];
        out.push(p === undefined ? '-' : p.hits !== undefined ? `hits ${p.hits.map((h) => `${h.key}=${h.value}`).join(' ')}` : `op ${p.operator!.param}`);
      }
      return out;
    };
    assert.deepEqual(planOf(20), ['hits TX:pl=1']);
    assert.deepEqual(planOf(21), ['op 5']);
    assert.deepEqual(planOf(40), ['hits TX:pl=1', '-']);
    assert.deepEqual(planOf(41), ['op GET HEAD']);
    assert.deepEqual(planOf(42), ['hits TX:tag=AbC TX:tag=abc']);
    assert.deepEqual(planOf(43), ['hits TX:tag=abc TX:pl=1']);
    assert.deepEqual(planOf(44), ['-', 'hits ']);
    // A request that blocks on the score (21's resolved threshold), a POST (41's allowed methods
    // resolved), the targets of 20 and 41 removed by a ctl, and the set-up rule 5 removed before
    // phase 1 (no fold: the macro is expanded again, to nothing, and 41 matches the GET).
    const post = { uri: '/', body: 'x=attack', headers: [['Content-Type', 'application/x-www-form-urlencoded']] as [string, string][] };
    compare(rules, [...REQS, { uri: '/?a=attack&b=up' }, post, { uri: '/?a=tgt' }, { ...post, body: 'a=tgt' }, { uri: '/?a=attack', remove: ['5'] }, { uri: '/?a=hello' }], 'links');
  });

  it('runs of decided set-up rules are replayed at once, between rules that are not decided', () => {
    // 3 and 5 are not decided but cannot change what the set-up reads (a body processor ctl, a
    // nolog match that sets MATCHED_VAR); 6 skips over 7; 9 reads MATCHED_VAR(S) as the runs
    // left them (56 after 6: the list emptied, MATCHED_VAR kept), and ends the prefix.
    const rules = `SecRuleEngine On
SecRequestBodyAccess On
SecAction "id:1,phase:1,pass,nolog,setvar:tx.a=1"
SecRule &TX:b "@eq 0" "id:2,phase:1,pass,nolog,setvar:tx.b=2"
SecRule REQUEST_HEADERS:Content-Type "@rx json" "id:3,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"
SecRule &TX:c "@eq 0" "id:4,phase:1,pass,nolog,setvar:tx.c=3"
SecAction "id:45,phase:1,pass,nolog,setvar:tx.d=4"
SecRule ARGS "@streq mv" "id:5,phase:1,pass,nolog"
SecRule &TX:e "@eq 0" "id:6,phase:1,pass,nolog,setvar:tx.e=5,skipAfter:S"
SecAction "id:7,phase:1,pass,nolog,setvar:tx.never=1"
SecMarker S
SecAction "id:56,phase:1,pass,nolog,setvar:tx.f=6"
SecRule TX:zzz "@eq 1" "id:8,phase:1,pass,nolog"
SecRule MATCHED_VARS|MATCHED_VAR "@rx ." "id:9,phase:1,pass,log,msg:'mv %{MATCHED_VAR_NAME}=%{MATCHED_VAR}',setvar:tx.seen=+1"
SecRule TX:a "@eq 1" "id:10,phase:2,pass,log,msg:'a %{tx.b} %{tx.c} %{tx.d} %{tx.e}'"`;
    const plan = Transaction.buildFoldPlan(wafFromText(rules).ruleSet);
    const runs = plan.runs.map((r, i) => (r === undefined ? '' : `${i}-${r.end}:${r.records.map((m) => m.id).join(',')}`)).filter((x) => x !== '');
    assert.deepEqual(runs, ['0-2:1,2', '3-5:4,45', '6-11:6,56']);
    compare(rules, [{ uri: '/' }, { uri: '/?a=mv' }, { uri: '/', body: '{"a":"mv"}', headers: [['Content-Type', 'application/json']] }, { uri: '/?a=mv', remove: ['2'] }], 'runs');
  });

  it('random rule sets: fold on and off agree', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const keys = ['a', 'b', 'c', 'pa', '0'];
    const ops = ['@lt', '@ge', '@eq', '!@eq'];
    let folded = 0;
    for (let set = 0; set < 150; set++) {
      const lines = ['SecRuleEngine On', 'SecRequestBodyAccess On'];
      let id = 100;
      let marker = 0;
      const open: string[] = [];
      for (let n = 0; n < 4; n++) lines.push(`SecAction "id:${id++},phase:1,pass,nolog,setvar:tx.${keys[rnd(4)]}=${rnd(3)}"`);
      for (let n = 0; n < 3; n++) lines.push(`SecRule &TX:${keys[rnd(4)]} "@eq 0" "id:${id++},phase:1,pass,nolog,setvar:tx.${keys[rnd(4)]}=${rnd(3)}"`);
      for (let n = 0; n < 25; n++) {
        const phase = 1 + rnd(5);
        const k = keys[rnd(keys.length)];
        const kind = rnd(10);
        const skip = rnd(3) === 0 ? `,skipAfter:M${marker}` : '';
        if (skip) open.push(`M${marker++}`);
        const count = rnd(4) === 0 ? '&' : '';
        const param = rnd(5) === 0 ? `%{tx.${keys[rnd(4)]}}` : String(rnd(3));
        if (kind < 5) lines.push(`SecRule ${count}TX:${k} "${ops[rnd(ops.length)]} ${param}" "id:${id++},phase:${phase},pass,${rnd(2) ? 'nolog' : `log,msg:'g %{MATCHED_VAR}'`}${skip}"`);
        else if (kind < 7) lines.push(`SecRule ARGS "@streq v${rnd(3)}" "id:${id++},phase:${phase},pass,log,msg:'arg',severity:${rnd(5)},setvar:tx.${keys[rnd(keys.length)]}=+1${skip}"`);
        else if (kind < 8) lines.push(`SecRule ARGS "@rx (v\\d)" "id:${id++},phase:${phase},pass,nolog,capture${skip}"`);
        else if (kind < 9) lines.push(`SecRule ARGS "@streq v${rnd(3)}" "id:${id++},phase:${phase},pass,nolog,ctl:ruleRemoveById=${100 + rnd(id - 100)}"`);
        else lines.push(`SecRule TX:${k} "@ge ${rnd(3)}" "id:${id++},phase:${phase},pass,nolog,chain"\nSecRule ARGS "@streq v${rnd(3)}" "setvar:tx.${keys[rnd(4)]}=${rnd(3)}"`);
        if (open.length && rnd(3) === 0) lines.push(`SecMarker ${open.shift()}`);
      }
      for (const m of open) lines.push(`SecMarker ${m}`);
      lines.push(`SecRule TX:a "@ge 2" "id:${id},phase:2,deny,status:403,log,msg:'deny'"`);
      // Markers out of phase order are still valid text; skipAfter to a marker of another phase
      // jumps to the end of the phase (as the engine does).
      const text = lines.join('\n');
      const [hits, misses] = decided(wafFromText(text));
      folded += hits.length + misses.length;
      compare(text, [{ uri: '/' }, { uri: '/?x=v0' }, { uri: '/?x=v1&y=v2' }, { uri: '/?x=v2', remove: ['101'] }], `set ${set}`);
    }
    assert.ok(folded > 150 * 5, `only ${folded} rules decided`);
  });
});

// Phases 3 and 4 of a transaction without a response, recorded at load and replayed at once
// (QuietPhase in engine/transaction.ts). The probes here are phase 5's only: a phase 3 or 4 rule
// reading all of TX or MATCHED_VARS would (rightly) keep those phases from being recorded.
describe('phases 3 and 4 without a response', () => {
  interface Quiet {
    replayQuiet(q: unknown): void;
  }
  const proto = Transaction.prototype as unknown as Quiet;
  const replayQuiet = proto.replayQuiet;
  let replayed = 0;
  proto.replayQuiet = function (this: Quiet, q: unknown): void {
    replayed++;
    replayQuiet.call(this, q);
  };
  const P5 = `SecRule TX "@unconditionalMatch" "id:9951,phase:5,pass,log,msg:'tx'"
SecRule MATCHED_VARS "@unconditionalMatch" "id:9952,phase:5,pass,log,msg:'mv',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule MATCHED_VAR "@unconditionalMatch" "id:9954,phase:5,pass,log,msg:'mv1',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule HIGHEST_SEVERITY "@unconditionalMatch" "id:9953,phase:5,pass,log,msg:'hs'"`;

  /** Fold on and off, each request without a response and with one; how many phases the fold's
   * engine replayed as recorded. */
  function compareQuiet(rules: string, reqs: Req[], label: string): number {
    const text = `${rules}\n${P5}`;
    const on = wafFromText(text);
    const off = wafFromText(text);
    let used = 0;
    for (const r of reqs) {
      for (const variant of [{ ...r, noResponse: true }, r, { ...r, responseHeaders: [['Content-Type', 'text/html'], ['X', 'leak']] as [string, string][] }]) {
        for (let round = 0; round < 2; round++) {
          setFolding(true);
          replayed = 0;
          const a = outcome(on, variant);
          if (variant.noResponse) used += replayed;
          else assert.equal(replayed, 0, `${label}: replayed with a response`);
          setFolding(false);
          const b = outcome(off, variant);
          setFolding(true);
          assert.equal(a, b, `${label} ${JSON.stringify(variant)}`);
        }
      }
    }
    return used;
  }

  function quietIds(rules: string): string[] {
    const plan = Transaction.buildFoldPlan(wafFromText(`${rules}\n${P5}`).ruleSet);
    return [3, 4].map((p) => {
      const q = plan.quiet[p] as { records: { id: number }[] } | undefined;
      return q === undefined ? '-' : q.records.map((m) => m.id).join(',');
    });
  }

  const OUT = `${SETUP}
SecAction "id:5,phase:1,pass,nolog,setvar:tx.out_pl1=0,setvar:tx.out_threshold=4"
SecRule ARGS "@streq attack" "id:30,phase:2,pass,log,msg:'in',severity:2,setvar:tx.score=+5"
SecRule TX:pl "@lt 1" "id:40,phase:3,pass,nolog,skipAfter:END-3"
SecRule RESPONSE_HEADERS "@rx leak" "id:41,phase:3,pass,log,msg:'leak',severity:3,setvar:tx.out_pl1=+4"
SecMarker END-3
SecRule TX:pl "@ge 1" "id:42,phase:3,pass,nolog,setvar:tx.out_score=+%{tx.out_pl1}"
SecRule TX:out_score "@ge %{tx.out_threshold}" "id:43,phase:3,deny,status:403,log,msg:'out %{tx.out_score}'"
SecAction "id:44,phase:4,pass,nolog,setvar:tx.out_score=0"
SecRule TX:pl "@ge 1" "id:45,phase:4,pass,nolog,setvar:tx.out_score=+%{tx.out_pl1}"
SecRule RESPONSE_BODY "@rx leak" "id:46,phase:4,pass,log,msg:'body leak',setvar:tx.out_pl1=+4"
SecRule TX:out_score "@ge %{tx.out_threshold}" "id:47,phase:4,deny,status:403,log,msg:'out4'"
SecRule TX:out_score "@eq 0" "id:48,phase:4,pass,nolog,skipAfter:END-4"
SecAction "id:49,phase:4,pass,nolog,setvar:tx.never=1"
SecMarker END-4
SecRule TX:out_score "@ge 0" "id:50,phase:5,pass,log,msg:'out at 5 %{tx.out_score} %{tx.never}'"`;
  const REQS_Q: Req[] = [{ uri: '/' }, { uri: '/?a=attack' }, { uri: '/?a=attack', remove: ['44'] }];

  it('are recorded when their rules read only TX the request side cannot change, and replayed', () => {
    assert.deepEqual(quietIds(OUT), ['42', '44,45,48']);
    const used = compareQuiet(OUT, REQS_Q, 'out');
    // Phases 3 and 4 of the two requests without a removal, twice each.
    assert.equal(used, 8);
  });

  it('are not recorded when a rule there reads a request variable, MATCHED_VAR or deletes TX', () => {
    for (const extra of [
      `SecRule ARGS "@streq x" "id:60,phase:3,pass,nolog,setvar:tx.x=1"`,
      `SecRule TX:pl "@ge 1" "id:60,phase:4,pass,nolog,setvar:tx.x=%{MATCHED_VAR}"`,
      `SecAction "id:60,phase:3,pass,nolog,setvar:!tx.score"`,
      `SecRule TX:pl "@ge 1" "id:60,phase:3,pass,nolog,ctl:ruleRemoveById=45"`,
      `SecRule TX:pl "@rx (1)" "id:60,phase:4,pass,nolog,capture"`,
    ]) {
      const rules = `${OUT}\n${extra}`;
      assert.deepEqual(quietIds(rules), ['-', '-'], extra);
      assert.equal(compareQuiet(rules, [...REQS_Q, { uri: '/?a=x' }], extra), 0);
    }
  });

  it('are not recorded when a request rule writes what they read', () => {
    const rules = `${OUT}\nSecRule ARGS "@streq bump" "id:61,phase:2,pass,nolog,setvar:tx.out_pl1=+4"`;
    assert.deepEqual(quietIds(rules), ['-', '-']);
    assert.equal(compareQuiet(rules, [...REQS_Q, { uri: '/?a=bump' }], 'bump'), 0);
  });

  it('phase 4 is not recorded when a rule there disrupts on the probe; phase 3 still is', () => {
    const rules = `${OUT}\nSecRule TX:pl "@ge 1" "id:62,phase:4,deny,status:403,log,msg:'always'"`;
    assert.deepEqual(quietIds(rules), ['42', '-']);
    assert.equal(compareQuiet(rules, REQS_Q, 'deny'), 4);
  });

  it('are walked when a ctl removed one of their rules or targets', () => {
    const rules = `${OUT}
SecRule ARGS "@streq rm" "id:63,phase:1,pass,nolog,ctl:ruleRemoveById=44"
SecRule ARGS "@streq tag" "id:64,phase:2,pass,nolog,ctl:ruleRemoveByTag=t4"
SecRule ARGS "@streq tgt" "id:65,phase:1,pass,nolog,ctl:ruleRemoveTargetById=45;TX:pl"
SecRule TX:pl "@ge 1" "id:66,phase:4,pass,nolog,tag:t4,setvar:tx.out_score=+9"`;
    assert.deepEqual(quietIds(rules), ['42', '44,45,48,66']);
    // A rule removed by id or tag: neither phase; a target of a phase-4 link: phase 3 still (twice).
    for (const [uri, used] of [['/?a=rm', 0], ['/?a=tag', 0], ['/?a=tgt', 2]] as const) assert.equal(compareQuiet(rules, [{ uri }], uri), used, uri);
    assert.equal(compareQuiet(rules, [{ uri: '/' }], 'none'), 4);
  });

  it('hold or not per removal: the answer kept for one shared first removal is not another\'s', () => {
    // Two first removals, each shared by every transaction that runs it: one of a link outside
    // phases 3-4 (both replayed), one of a phase-4 link's target (phase 4 walked). In either
    // order on one engine, each must get its own answer.
    const rules = `${OUT}
SecRule ARGS "@streq other" "id:67,phase:1,pass,nolog,ctl:ruleRemoveTargetById=30;ARGS:zz"
SecRule ARGS "@streq tgt" "id:65,phase:1,pass,nolog,ctl:ruleRemoveTargetById=45;TX:pl"`;
    assert.equal(compareQuiet(rules, [{ uri: '/?a=other' }, { uri: '/?a=tgt' }, { uri: '/?a=other' }], 'other-tgt'), 4 + 2 + 4);
    assert.equal(compareQuiet(rules, [{ uri: '/?a=tgt' }, { uri: '/?a=other' }, { uri: '/?a=tgt' }], 'tgt-other'), 2 + 4 + 2);
  });
});
