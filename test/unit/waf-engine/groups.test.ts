// Links grouped by what they read (engine/groups.ts): a link whose bit a group's summary has is
// evaluated on the summary's fresh items only. Each case runs the same requests through two
// engines of the same rules, grouping on and off, and compares everything a rule or a caller can
// see (outcome.ts); each also checks that the grouped path was taken, so a case cannot pass by
// never reaching it. Each edge the summary relies on has its case.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { setGrouping } from '../../../src/waf/engine/groups.ts';
import { setBatching, Transaction } from '../../../src/waf/engine/transaction.ts';
import type { Rule } from '../../../src/waf/engine/rule.ts';
import { wafFromText, type Waf } from '../../../src/waf/index.ts';
import { outcome, PROBES, type Req } from './outcome.ts';

// The private method the grouped path goes through (a measurement hook, as the benches use).
interface Grouped {
  matchGrouped(link: Rule, g: unknown, collected: unknown): boolean | undefined;
}
const proto = Transaction.prototype as unknown as Grouped;
const matchGrouped = proto.matchGrouped;
/** Links evaluated on a group's summary (matchGrouped answered) since the last reset; `under`:
 * those on the group made for a ctl's target removals (groupUnder), not the link's own. */
let summarised = 0;
let under = 0;
proto.matchGrouped = function (this: Grouped, link: Rule, g: unknown, collected: unknown): boolean | undefined {
  const r = matchGrouped.call(this, link, g, collected);
  if (r !== undefined) summarised++;
  if (r !== undefined && g !== link.group) under++;
  return r;
};

afterEach(() => setGrouping(true));

const HEAD = `SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "@rx ^text/xml" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"
SecRule REQUEST_HEADERS:Content-Type "@rx ^application/json" "id:2,phase:1,pass,nolog,ctl:requestBodyProcessor=JSON"`;

/** Runs every request twice (warm caches the second time) with grouping on and off on two
 * engines of the same rules; returns how many links the grouped path answered. */
function compare(rules: string, reqs: Req[], label = ''): number {
  const text = `${HEAD}\n${rules}\n${PROBES}`;
  const on = wafFromText(text);
  const off = wafFromText(text);
  let used = 0;
  for (const r of reqs) {
    for (let round = 0; round < 2; round++) {
      setGrouping(true);
      summarised = 0;
      const a = outcome(on, r);
      used += summarised;
      setGrouping(false);
      const b = outcome(off, r);
      setGrouping(true);
      assert.equal(a, b, `${label} ${JSON.stringify(r)}`);
    }
  }
  return used;
}

/** Requests that teach the memo a value (it keeps values seen in an earlier transaction). */
function repeat(r: Req, n = 3): Req[] {
  return Array.from({ length: n }, () => r);
}

function groupOf(waf: Waf, id: number): unknown {
  return waf.ruleSet.byId.get(id)!.group;
}

const FORM: [string, string][] = [['Content-Type', 'application/x-www-form-urlencoded']];

describe('links grouped by what they read', () => {
  it('the same targets share a group; counts, TX, MATCHED_VARS, macros and exclusions decide', () => {
    const waf = wafFromText(`${HEAD}
SecRule ARGS|REQUEST_COOKIES "@rx a" "id:10,phase:2,pass"
SecRule ARGS|REQUEST_COOKIES "@rx b" "id:11,phase:2,pass"
SecRule ARGS|REQUEST_COOKIES|!ARGS:x "@rx c" "id:12,phase:2,pass"
SecRule &ARGS "@eq 0" "id:13,phase:2,pass"
SecRule TX:a "@rx a" "id:14,phase:2,pass"
SecRule MATCHED_VARS "@rx a" "id:15,phase:2,pass"
SecRule ARGS|REQUEST_COOKIES "@rx %{tx.a}" "id:16,phase:2,pass"
SecRule REQUEST_FILENAME|REQUEST_HEADERS:User-Agent|XML:/* "@rx d" "id:17,phase:2,pass"`);
    assert.ok(groupOf(waf, 10) !== undefined);
    assert.equal(groupOf(waf, 10), groupOf(waf, 11));
    assert.ok(groupOf(waf, 12) !== undefined && groupOf(waf, 12) !== groupOf(waf, 10));
    for (const id of [13, 14, 15, 16]) assert.equal(groupOf(waf, id), undefined, `rule ${id}`);
    assert.ok(groupOf(waf, 17) !== undefined);
  });

  it('known values and a new one: only the new one is evaluated, matches are the same', () => {
    const rules = `SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS:User-Agent "@rx attack" "id:10,phase:2,pass,log,msg:'a %{MATCHED_VAR_NAME}',setvar:tx.score=+1"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS:User-Agent "@rx evil" "id:11,phase:2,pass,log,msg:'e %{MATCHED_VAR_NAME}',setvar:tx.score=+1"
SecRule ARGS|REQUEST_COOKIES|REQUEST_HEADERS:User-Agent "@rx ^[0-9]+$" "id:12,phase:2,pass,log,msg:'n %{MATCHED_VAR_NAME}'"`;
    const headers: [string, string][] = [['User-Agent', 'curl'], ['Cookie', 'a=b; c=d']];
    const used = compare(rules, [
      ...repeat({ uri: '/?q=shoes&p=1', headers }),
      { uri: '/?q=shoes&p=2', headers },
      { uri: '/?q=shoes&p=attack', headers },
      { uri: '/?q=evil&p=3', headers },
      { uri: '/?q=shoes&p=4', headers: [['User-Agent', 'attack'], ['Cookie', 'a=b; c=evil']] },
    ], 'known');
    assert.ok(used > 0, 'the grouped path was taken');
  });

  it('constant @rx links ask the prefilter in the grouped loop: transformations, negation, multiMatch, captures', () => {
    const rules = `SecRule ARGS|REQUEST_HEADERS:User-Agent "@rx attack" "id:10,phase:2,pass,log,t:none,t:lowercase,msg:'a %{MATCHED_VAR}',setvar:tx.score=+1"
SecRule ARGS|REQUEST_HEADERS:User-Agent "@rx ^(ev)il" "id:11,phase:2,pass,log,capture,t:none,t:urlDecodeUni,msg:'e %{TX.1}',setvar:tx.cap=%{TX.1}"
SecRule ARGS|REQUEST_HEADERS:User-Agent "!@rx ^[a-z0-9 ]+$" "id:12,phase:2,pass,log,msg:'odd %{MATCHED_VAR}'"
SecRule ARGS|REQUEST_HEADERS:User-Agent "@rx <x>" "id:13,phase:2,pass,log,multiMatch,t:none,t:urlDecodeUni,msg:'mm %{MATCHED_VAR}'"
SecRule ARGS|REQUEST_HEADERS:User-Agent "@rx \\d{3}" "id:14,phase:2,pass,log,t:none,t:removeWhitespace,msg:'d %{MATCHED_VAR}'"`;
    const headers: [string, string][] = [['User-Agent', 'curl']];
    // A fresh value every link misses is answered by the prefilter: no matchValue call for it
    // (the outcomes' probe rules, ids 99xx, are not counted).
    const p = Transaction.prototype as unknown as { matchValue(...a: unknown[]): boolean };
    const matchValue = p.matchValue;
    let calls = 0;
    p.matchValue = function (this: unknown, ...a: unknown[]): boolean {
      if ((a[0] as Rule).id < 100) calls++;
      return matchValue.apply(this, a);
    };
    // The grouped loop's own answer: with the batched walk (batch.test.ts) these links are
    // stepped over before they reach it.
    setBatching(false);
    try {
      compare(rules, repeat({ uri: '/?q=shoes', headers }), 'warm');
      setGrouping(true);
      calls = 0;
      const text = `${HEAD}\n${rules}\n${PROBES}`;
      const waf = wafFromText(text);
      for (const r of repeat({ uri: '/?q=shoes', headers })) outcome(waf, r);
      calls = 0;
      outcome(waf, { uri: '/?q=boots', headers });
      // Only the negated link (12, its prefilter's 0 is a hit) and the multiMatch one (13, every
      // stage) evaluate the new value.
      assert.equal(calls, 2, 'matchValue calls for a fresh value every prefiltered link misses');
    } finally {
      p.matchValue = matchValue;
      setBatching(true);
    }
    const used = compare(rules, [
      ...repeat({ uri: '/?q=shoes', headers }),
      { uri: '/?q=ATTACK', headers },
      { uri: '/?q=%65vil&r=evil', headers },
      { uri: '/?q=Shoes!', headers },
      { uri: '/?q=%3Cx%3E', headers },
      { uri: '/?q=1%202%203&z=12%203', headers: [['User-Agent', 'evil 123']] },
    ], 'prefiltered');
    assert.ok(used > 0, 'the grouped path was taken');
  });

  it('a negated operator: an absent target never matches, a present one does', () => {
    const rules = `SecRule REQUEST_HEADERS:X-Absent "!@rx foo" "id:10,phase:1,pass,log,msg:'absent 1'"
SecRule REQUEST_HEADERS:X-Absent "!@rx bar" "id:11,phase:1,pass,log,msg:'absent 2'"
SecRule ARGS "!@rx ^ok$" "id:12,phase:1,pass,log,msg:'neg %{MATCHED_VAR}'"
SecRule ARGS "!@rx ^fine$" "id:13,phase:1,pass,log,msg:'neg2 %{MATCHED_VAR}'"`;
    const used = compare(rules, [...repeat({ uri: '/?a=ok' }), { uri: '/?a=fine' }, { uri: '/?a=bad' }, { uri: '/' }, { uri: '/?a=ok', headers: [['X-Absent', 'foo']] }], 'negated');
    assert.ok(used > 0);
  });

  it('a count over an empty collection still matches (&ARGS @eq 0 is not grouped)', () => {
    const rules = `SecRule &ARGS "@eq 0" "id:10,phase:1,pass,log,msg:'no args'"
SecRule &ARGS "@eq 0" "id:11,phase:1,pass,log,msg:'no args 2'"
SecRule ARGS "@rx x" "id:12,phase:1,pass,log,msg:'x'"
SecRule ARGS "@rx y" "id:13,phase:1,pass,log,msg:'y'"`;
    const used = compare(rules, [...repeat({ uri: '/' }), ...repeat({ uri: '/?a=1' }), { uri: '/?a=x' }], 'count');
    assert.ok(used > 0);
  });

  it('chains: a grouped link after a starter that set TX, a grouped starter before a TX link', () => {
    const rules = `SecRule ARGS "@rx ^go" "id:10,phase:2,pass,log,msg:'chain %{MATCHED_VAR}',chain,setvar:tx.seen=1"
  SecRule ARGS "@rx now$" "setvar:tx.score=+5"
SecRule ARGS "@rx ^stop" "id:11,phase:2,pass,log,msg:'chain2',chain"
  SecRule TX:seen "@eq 1"
SecRule ARGS "@rx now" "id:12,phase:2,pass,log,msg:'plain %{MATCHED_VAR_NAME}'"`;
    const used = compare(rules, [...repeat({ uri: '/?a=hello&b=world' }), { uri: '/?a=go-now' }, { uri: '/?a=go&b=now' }, { uri: '/?a=stop&b=go' }], 'chain');
    assert.ok(used > 0);
  });

  it('SecRuleUpdateTargetById exclusions keep their meaning', () => {
    const rules = `SecRule ARGS|REQUEST_COOKIES "@rx attack" "id:10,phase:2,pass,log,msg:'10 %{MATCHED_VAR_NAME}'"
SecRule ARGS|REQUEST_COOKIES "@rx attack" "id:11,phase:2,pass,log,msg:'11 %{MATCHED_VAR_NAME}'"
SecRule ARGS|REQUEST_COOKIES "@rx attack" "id:12,phase:2,pass,log,msg:'12 %{MATCHED_VAR_NAME}'"
SecRule ARGS|REQUEST_COOKIES "@rx attack" "id:13,phase:2,pass,log,msg:'13 %{MATCHED_VAR_NAME}'"
SecRuleUpdateTargetById 11 "!ARGS:secret"
SecRuleUpdateTargetById 12 "!ARGS:secret"
SecRuleUpdateTargetById 13 "!REQUEST_COOKIES:/^tok/"`;
    const waf = wafFromText(`${HEAD}\n${rules}`);
    assert.notEqual(groupOf(waf, 11), groupOf(waf, 10), 'exclusions make other groups');
    assert.notEqual(groupOf(waf, 13), groupOf(waf, 10));
    assert.equal(groupOf(waf, 11), groupOf(waf, 12));
    const headers: [string, string][] = [['Cookie', 'token=attack; x=y']];
    // The excluded value new (the summary leaves it fresh), the others well known.
    const used = compare(rules, [
      ...repeat({ uri: '/?a=1&b=1&c=1&secret=s', headers }),
      { uri: '/?a=1&b=1&c=1&secret=attack-new', headers },
      { uri: '/?a=attack&secret=attack' },
    ], 'update');
    assert.ok(used > 0);
  });

  it('ctl:ruleRemoveTargetById at run time on one link of a group', () => {
    const rules = `SecRule ARGS:rm "@streq 1" "id:10,phase:1,pass,nolog,ctl:ruleRemoveTargetById=21;ARGS:q,ctl:ruleRemoveTargetByTag=t23;ARGS"
SecRule ARGS "@rx attack" "id:20,phase:1,pass,log,msg:'20 %{MATCHED_VAR_NAME}'"
SecRule ARGS "@rx attack" "id:21,phase:1,pass,log,msg:'21 %{MATCHED_VAR_NAME}'"
SecRule ARGS "@rx attack" "id:22,phase:1,pass,log,msg:'22 %{MATCHED_VAR_NAME}'"
SecRule ARGS "@rx attack" "id:23,phase:1,pass,log,msg:'23 %{MATCHED_VAR_NAME}',tag:'t23'"`;
    const used = compare(rules, [...repeat({ uri: '/?q=x&p=y' }), { uri: '/?q=attack&p=attack&rm=1' }, { uri: '/?q=attack&rm=1' }, { uri: '/?q=attack' }], 'ctl');
    assert.ok(used > 0);
  });

  it('links whose targets a ctl removed read the group made for the removal (as CRS 941010)', () => {
    // 10 removes REQUEST_FILENAME (whole) from the tagged links on every request, as CRS 941010
    // does, and 11 ARGS:q from 31 and REQUEST_COOKIES from 32 when asked (a second removal: a
    // merged list for 32's links, another list for 31's).
    // 70 more links miss the path, so its value is well known (a summary ANDs such a value's
    // bits in): the removed REQUEST_FILENAME must be left out of the summary, not ANDed.
    const FILLERS = Array.from({ length: 70 }, (_, i) => `SecRule REQUEST_FILENAME "@streq /zz${i}" "id:${500 + i},phase:1,pass,nolog"`).join('\n');
    const rules = `SecRule REQUEST_FILENAME "@rx ^/" "id:10,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=perf;REQUEST_FILENAME"
SecRule ARGS:rm "@streq 1" "id:11,phase:1,pass,nolog,ctl:ruleRemoveTargetById=31;ARGS:q,ctl:ruleRemoveTargetById=32;REQUEST_COOKIES"
SecRule ARGS|REQUEST_COOKIES|REQUEST_FILENAME "@rx attack" "id:30,phase:2,pass,log,msg:'30 %{MATCHED_VAR_NAME}',tag:'perf'"
SecRule ARGS|REQUEST_COOKIES|REQUEST_FILENAME "@rx attack" "id:31,phase:2,pass,log,msg:'31 %{MATCHED_VAR_NAME}',tag:'perf'"
SecRule ARGS|REQUEST_COOKIES|REQUEST_FILENAME "@rx attack" "id:32,phase:2,pass,log,msg:'32 %{MATCHED_VAR_NAME}',tag:'perf',chain"
  SecRule ARGS|REQUEST_COOKIES|REQUEST_FILENAME "@rx attack" "t:none"
SecRule ARGS|REQUEST_COOKIES|REQUEST_FILENAME "@rx attack" "id:33,phase:2,pass,log,msg:'33 %{MATCHED_VAR_NAME}'"
SecRule ARGS|REQUEST_COOKIES|REQUEST_FILENAME|!ARGS:p "@rx attack" "id:34,phase:2,pass,log,msg:'34 %{MATCHED_VAR_NAME}',tag:'perf'"
${FILLERS}`;
    const headers: [string, string][] = [['Cookie', 'a=b; c=d']];
    under = 0;
    const used = compare(rules, [
      ...repeat({ uri: '/shop?q=x&p=y', headers }),
      { uri: '/shop?q=x&p=new', headers },
      { uri: '/attack?q=x&p=y', headers },
      { uri: '/shop?q=attack&p=attack', headers: [['Cookie', 'a=attack']] },
      ...repeat({ uri: '/shop?q=x&p=y&rm=1', headers }, 2),
      { uri: '/attack?q=attack&p=new&rm=1', headers: [['Cookie', 'a=attack']] },
      { uri: '/shop?q=attack&rm=1', headers },
    ], 'removed');
    assert.ok(used > 0);
    assert.ok(under > 0, 'the links under the removal were answered from a summary');
  });

  it('a scalar changed mid-phase by ctl:requestBodyProcessor is read again', () => {
    const rules = `SecRule REQBODY_PROCESSOR "@streq A" "id:10,phase:1,pass,log,msg:'A'"
SecRule REQBODY_PROCESSOR "@streq B" "id:11,phase:1,pass,log,msg:'B'"
SecRule ARGS:set "@streq 1" "id:12,phase:1,pass,nolog,ctl:requestBodyProcessor=URLENCODED"
SecRule REQBODY_PROCESSOR "@streq URLENCODED" "id:13,phase:1,pass,log,msg:'now %{MATCHED_VAR}'"
SecRule REQBODY_PROCESSOR "@streq JSON" "id:14,phase:1,pass,log,msg:'json'"`;
    const used = compare(rules, [...repeat({ uri: '/?x=1' }), { uri: '/?set=1' }, { uri: '/?set=1', body: 'a=b', headers: FORM }, { uri: '/', body: '{"a":1}', headers: [['Content-Type', 'application/json']] }], 'scalar');
    assert.ok(used > 0);
  });

  it('body arguments in phase 2 after phase 1 read the query only; an XML body', () => {
    const rules = `SecRule ARGS|XML:/* "@rx attack" "id:10,phase:1,pass,log,msg:'p1 %{MATCHED_VAR_NAME}'"
SecRule ARGS|XML:/* "@rx evil" "id:11,phase:1,pass,log,msg:'p1e %{MATCHED_VAR_NAME}'"
SecRule ARGS|XML:/* "@rx attack" "id:20,phase:2,pass,log,msg:'p2 %{MATCHED_VAR_NAME}'"
SecRule ARGS|XML:/* "@rx evil" "id:21,phase:2,pass,log,msg:'p2e %{MATCHED_VAR_NAME}'"`;
    const used = compare(rules, [
      ...repeat({ uri: '/?q=1', body: 'a=b', headers: FORM }),
      { uri: '/?q=1', body: 'a=attack', headers: FORM },
      { uri: '/?q=evil', body: 'a=b', headers: FORM },
      { uri: '/?q=1', body: '<r><a>attack</a><b>evil</b></r>', headers: [['Content-Type', 'text/xml']] },
    ], 'body');
    assert.ok(used > 0);
  });

  it('two transactions interleaved between phases read their own items', () => {
    const text = `${HEAD}
SecRule ARGS "@rx attack" "id:20,phase:2,pass,log,msg:'20 %{MATCHED_VAR}'"
SecRule ARGS "@rx attack" "id:21,phase:2,pass,log,msg:'21 %{MATCHED_VAR}'"
SecRule ARGS "@rx attack" "id:22,phase:2,pass,log,msg:'22 %{MATCHED_VAR}'"`;
    const waf = wafFromText(text);
    const tx = (uri: string): ReturnType<Waf['newTransaction']> =>
      waf.newTransaction({ clientIp: '10.0.0.1', clientPort: 1, serverPort: 80, method: 'GET', uri, protocol: 'HTTP/1.1', headers: [['Host', 'h']] });
    for (let i = 0; i < 3; i++) {
      const t = tx('/?a=ok');
      t.processRequestHeaders();
      t.processRequestBody();
    }
    summarised = 0;
    const a = tx('/?a=attack-a');
    const b = tx('/?a=fine');
    a.processRequestHeaders();
    b.processRequestHeaders();
    b.processRequestBody();
    a.processRequestBody();
    assert.deepEqual(a.matchedRules().map((m) => m.msg), ['20 attack-a', '21 attack-a', '22 attack-a']);
    assert.deepEqual(b.matchedRules(), []);
    assert.ok(summarised > 0);
  });
});
