// The batched walk (transaction.ts walkBatch, batchesOf): a stretch of consecutive rules whose
// starter is a grouped link is stepped over while each rule provably misses; the first that may not goes to evaluate(). Each case runs the same requests
// through two engines of the same rules, batching on and off (grouping on in both), compares
// everything a rule or a caller can see (outcome.ts), and checks that the batch stepped over
// rules, so a case cannot pass by never reaching it. Each edge a batch relies on has its case.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';

import { batchesOf, setBatching, Transaction } from '../../../src/waf/engine/transaction.ts';
import type { RuleEntry } from '../../../src/waf/engine/rule.ts';
import { wafFromText } from '../../../src/waf/index.ts';
import { outcome, PROBES, type Req } from './outcome.ts';

// The private method the batch goes through (a measurement hook, as the benches use).
interface Batched {
  walkBatch(entries: RuleEntry[], i: number, end: number): number;
}
const proto = Transaction.prototype as unknown as Batched;
const walkBatch = proto.walkBatch;
/** The cases' rules (ids 100-8999) the batches stepped over since the last reset (a removed
 * rule counts too). */
let stepped = 0;
proto.walkBatch = function (this: Batched, entries: RuleEntry[], i: number, end: number): number {
  const at = walkBatch.call(this, entries, i, end);
  for (let j = i; j < at; j++) {
    const e = entries[j]!;
    if (e.kind === 'rule' && e.rule.id >= 100 && e.rule.id < 9000) stepped++;
  }
  return at;
};

afterEach(() => setBatching(true));

const HEAD = `SecRuleEngine On
SecRequestBodyAccess On
SecRule REQUEST_HEADERS:Content-Type "@rx ^text/xml" "id:1,phase:1,pass,nolog,ctl:requestBodyProcessor=XML"`;

/** Runs every request twice (warm caches the second time) with batching on and off on two
 * engines of the same rules; returns how many rules the batches stepped over. */
function compare(rules: string, reqs: Req[], label = ''): number {
  const text = `${HEAD}\n${rules}\n${PROBES}`;
  const on = wafFromText(text);
  const off = wafFromText(text);
  let used = 0;
  for (const r of reqs) {
    for (let round = 0; round < 2; round++) {
      setBatching(true);
      stepped = 0;
      const a = outcome(on, r);
      used += stepped;
      setBatching(false);
      stepped = 0;
      const b = outcome(off, r);
      assert.equal(stepped, 0, 'no batch with batching off');
      setBatching(true);
      assert.equal(a, b, `${label} ${JSON.stringify(r)}`);
    }
  }
  return used;
}

/** Requests after which a group's summary has taken its AND again (groups.ts: every 32
 * summaries; before, an AND taken while the memo knew less leaves links to the walk). */
const WARM = 40;

/** How many rules the batches stepped over in `last`, after `before` (batching on). */
function steppedOn(rules: string, before: Req[], last: Req): number {
  const waf = wafFromText(`${HEAD}\n${rules}\n${PROBES}`);
  for (const r of before) outcome(waf, r);
  stepped = 0;
  outcome(waf, last);
  return stepped;
}

/** Requests that teach the memo a value (it keeps values seen in an earlier transaction). */
function repeat(r: Req, n = 3): Req[] {
  return Array.from({ length: n }, () => r);
}

/** `n` rules of ids from `id`, each `@rx` a pattern of its own (`word` + the id) on `targets`. */
function stretch(id: number, n: number, targets = 'ARGS|REQUEST_COOKIES', extra = ''): string {
  return Array.from({ length: n }, (_, k) => `SecRule ${targets} "@rx ${'w'}${id + k}x" "id:${id + k},phase:2,pass,log,t:none,t:lowercase,msg:'${id + k} %{MATCHED_VAR_NAME}=%{MATCHED_VAR}',setvar:tx.score=+1${extra}"`).join('\n');
}

describe('the batched walk of grouped rules', () => {
  it('which rules a batch holds: ungrouped, macro and response-only rules end it', () => {
    const waf = wafFromText(`${HEAD}
SecRule ARGS "@rx a" "id:10,phase:2,pass"
SecRule ARGS "@rx b" "id:11,phase:2,pass,chain"
  SecRule TX:x "@eq 1" "t:none"
SecMarker M1
SecRule ARGS "@rx c" "id:12,phase:2,pass,skipAfter:M1"
SecRule ARGS "!@rx d" "id:13,phase:2,pass"
SecRule ARGS "@rx e" "id:14,phase:2,pass,multiMatch"
SecRule TX:a "@rx f" "id:15,phase:2,pass"
SecRule ARGS "@rx %{tx.a}" "id:16,phase:2,pass"
SecRule RESPONSE_HEADERS "@rx g" "id:17,phase:2,pass"
SecRule &ARGS "@eq 1" "id:18,phase:2,pass"
SecAction "id:19,phase:2,pass"
SecRule ARGS "@streq h" "id:20,phase:2,pass"
SecRule ARGS "@detectSQLi" "id:21,phase:2,pass"`);
    const entries = waf.ruleSet.phases[2]!;
    const ends = batchesOf(waf.ruleSet)[2]!;
    const at = (id: number): number => entries.findIndex((e) => e.kind === 'rule' && e.rule.id === id);
    // 10, 11 (a chain starter), 12 (a skipAfter), 13 (negated), 14 (multiMatch), the marker
    // between them: one stretch.
    for (const id of [10, 11, 12, 13, 14]) assert.equal(ends[at(id)], at(14) + 1, `rule ${id}`);
    for (const id of [15, 16, 17, 18, 19]) assert.equal(ends[at(id)], 0, `rule ${id}`);
    for (const id of [20, 21]) assert.equal(ends[at(id)], at(21) + 1, `rule ${id}`);
  });

  it('operators the prefilter does not answer, negated, multiMatch and captures inside a batch', () => {
    const rules = `${stretch(100, 2)}
SecRule ARGS|REQUEST_COOKIES "!@rx ^[a-z0-9=;-]*$" "id:110,phase:2,pass,log,msg:'neg %{MATCHED_VAR}'"
SecRule ARGS|REQUEST_COOKIES "@rx <x>" "id:111,phase:2,pass,log,multiMatch,t:none,t:urlDecodeUni,msg:'mm %{MATCHED_VAR}'"
SecRule ARGS|REQUEST_COOKIES "@pm badword worse" "id:112,phase:2,pass,log,t:none,t:lowercase,msg:'pm %{MATCHED_VAR}'"
SecRule ARGS|REQUEST_COOKIES "@detectSQLi" "id:113,phase:2,pass,log,capture,msg:'sqli %{TX.0}',setvar:tx.fp=%{TX.0}"
SecRule ARGS|REQUEST_COOKIES "@rx ^(ev)(il)" "id:114,phase:2,pass,log,capture,msg:'cap %{TX.1}%{TX.2}',setvar:tx.cap=%{TX.1}"
SecRule ARGS|REQUEST_COOKIES "@streq exact" "id:115,phase:2,pass,log,msg:'eq'"
SecRule ARGS|REQUEST_COOKIES "!@streq exact" "id:116,phase:2,pass,nolog"
${stretch(120, 2)}`;
    const headers: [string, string][] = [['Cookie', 'a=b']];
    const used = compare(rules, [
      ...repeat({ uri: '/?q=shoes&p=1', headers }, WARM),
      { uri: '/?q=shoes&p=2', headers },
      { uri: '/?q=Shoes!&p=3', headers },
      { uri: '/?q=%253Cx%253E&p=4', headers },
      { uri: '/?q=a+BadWord&p=5', headers },
      { uri: "/?q=1'+or+1=1--&p=6", headers },
      { uri: '/?q=evil&p=exact', headers: [['Cookie', 'a=w121x']] },
    ], 'operators');
    assert.ok(used > 0, 'the batches stepped over rules');
  });

  it('a hit inside a batch, its chain and the rules after it', () => {
    const rules = `${stretch(100, 6)}
SecRule ARGS "@rx ^go" "id:110,phase:2,pass,log,msg:'chain %{MATCHED_VAR}',chain,setvar:tx.seen=1"
  SecRule TX:seen "@eq 1" "setvar:tx.score=+5"
${stretch(120, 6)}`;
    const headers: [string, string][] = [['Cookie', 'a=b; c=d']];
    const used = compare(rules, [
      ...repeat({ uri: '/?q=shoes&p=1', headers }),
      { uri: '/?q=shoes&p=2', headers },
      { uri: '/?q=shoes&p=w103x', headers },
      { uri: '/?q=W103X&p=w125x', headers: [['Cookie', 'a=w100x; c=w100x']] },
      { uri: '/?q=go&p=w121x', headers },
      { uri: '/?q=go-on&p=9', headers },
    ], 'hit');
    assert.ok(used > 0, 'the batches stepped over rules');
  });

  it('MATCHED_VARS left by an earlier rule is reset by a batch whose rules miss', () => {
    // 10 (a count: not in a batch) matches and sets MATCHED_VARS; the stretch after it misses,
    // and each miss's evaluate() leaves MATCHED_VARS empty. Every rule's evaluate() resets it
    // before reading it, so no rule sees the difference: the state is compared directly.
    const rules = `SecRule &ARGS:a "@eq 1" "id:10,phase:2,pass,log,msg:'m'"
${stretch(100, 4)}`;
    const used = compare(rules, [...repeat({ uri: '/?a=1' }), { uri: '/?a=mark' }, { uri: '/?a=mark&b=new' }], 'matched vars');
    assert.ok(used > 0);
    const left = (on: boolean): number => {
      setBatching(on);
      const waf = wafFromText(`${HEAD}\n${rules}`);
      let n = -1;
      // The last value new to the process (one seen before has a memo entry that knows nothing).
      for (const uri of [...Array.from({ length: WARM }, () => '/?a=1'), `/?a=once-${on ? 1 : 2}`]) {
        const tx = waf.newTransaction({ clientIp: '10.0.0.1', clientPort: 1, serverPort: 80, method: 'GET', uri, protocol: 'HTTP/1.1', headers: [['Host', 'h']] });
        tx.processRequestHeaders();
        tx.processRequestBody();
        n = (tx as unknown as { matchedVars: unknown[] }).matchedVars.length;
      }
      return n;
    };
    assert.equal(left(true), left(false));
    assert.equal(left(true), 0);
  });

  it('rules removed inside a batch: before phase 1 and by a ctl of a rule inside it', () => {
    const rules = `${stretch(100, 3)}
SecRule ARGS "@rx rmnow" "id:103,phase:2,pass,log,msg:'rm',ctl:ruleRemoveById=105,ctl:ruleRemoveByTag=t107"
${stretch(104, 2)}
${stretch(106, 3, 'ARGS|REQUEST_COOKIES', ",tag:'t107'")}`;
    const used = compare(rules, [
      ...repeat({ uri: '/?q=x' }),
      { uri: '/?q=w105x&r=w107x' },
      { uri: '/?q=w105x&r=w107x&s=rmnow' },
      { uri: '/?q=w105x&r=w101x', remove: ['101', '105'] },
      { uri: '/?q=w104x&r=w108x', remove: ['100-102'] },
    ], 'removed');
    assert.ok(used > 0);
    // A removed rule whose value would match is stepped over in the batch (not sent to the walk,
    // which would step over it too: the outcome is the same, the count is not): all nine. The
    // value is new to the process (a value seen before has an entry that knows nothing yet).
    assert.equal(steppedOn(rules, repeat({ uri: '/?q=x' }, WARM), { uri: '/?q=w101x-once', remove: ['101'] }), 9);
  });

  it('targets removed by a ctl inside a batch and before it (the group made for the removal)', () => {
    const rules = `SecRule ARGS:rm "@streq 1" "id:10,phase:1,pass,nolog,ctl:ruleRemoveTargetById=102;ARGS:q,ctl:ruleRemoveTargetByTag=t104;REQUEST_COOKIES"
${stretch(100, 3)}
SecRule ARGS "@rx cut" "id:103,phase:2,pass,log,msg:'cut',ctl:ruleRemoveTargetById=105;ARGS"
${stretch(104, 4, 'ARGS|REQUEST_COOKIES', ",tag:'t104'")}`;
    const headers: [string, string][] = [['Cookie', 'a=w104x; c=w105x']];
    const used = compare(rules, [
      ...repeat({ uri: '/?q=x&p=y' }),
      { uri: '/?q=w102x&p=w105x&rm=1', headers },
      { uri: '/?q=w102x&p=w105x', headers },
      { uri: '/?q=w105x&p=cut', headers },
      { uri: '/?q=w105x&p=cut&rm=1', headers },
    ], 'targets');
    assert.ok(used > 0);
  });

  it('links whose targets a ctl removed read the group made for the removal in a batch', () => {
    // As CRS 941010: REQUEST_FILENAME removed from the tagged links on every request. The path
    // would match 101 through the removed target: its own group would send 101 to the walk, the
    // group under the removal steps over it.
    const rules = `SecRule REQUEST_FILENAME "@rx ^/" "id:10,phase:1,pass,nolog,ctl:ruleRemoveTargetByTag=perf;REQUEST_FILENAME"
${stretch(100, 4, 'ARGS|REQUEST_FILENAME', ",tag:'perf'")}`;
    const used = compare(rules, [...repeat({ uri: '/shop?q=x' }, WARM), { uri: '/w101x?q=x' }, { uri: '/w101x?q=w102x' }], 'under');
    assert.ok(used > 0);
    assert.equal(steppedOn(rules, repeat({ uri: '/shop?q=x' }, WARM), { uri: '/w101x?q=x' }), 4);
  });

  it('a skipAfter landing inside a batch, on a marker and on a rule', () => {
    const rules = `SecRule ARGS:skip "@streq m" "id:10,phase:2,pass,nolog,skipAfter:MID"
SecRule ARGS:skip "@streq r" "id:11,phase:2,pass,nolog,skipAfter:104"
${stretch(100, 3)}
SecMarker MID
${stretch(103, 4)}`;
    const used = compare(rules, [
      ...repeat({ uri: '/?q=x' }),
      { uri: '/?q=w101x&p=w105x&skip=m' },
      { uri: '/?q=w101x&p=w104x&skip=r' },
      { uri: '/?q=w104x&p=w105x&skip=r' },
      { uri: '/?q=w101x&p=w106x' },
    ], 'skipAfter');
    assert.ok(used > 0);
  });

  it('an XML body: links reading XML leave the batch for the selector walk', () => {
    const rules = stretch(100, 4, 'ARGS|XML:/*');
    // The memo learns the query's value without an XML body (links of a transaction with one take
    // the selector walk), so the summary would answer for the links but for the XML values.
    const used = compare(rules, [
      ...repeat({ uri: '/?q=1' }, WARM),
      ...repeat({ uri: '/?q=1', body: '<r><a>x</a></r>', headers: [['Content-Type', 'text/xml']] }),
      { uri: '/?q=1', body: '<r><a>w101x</a><b>w103x</b></r>', headers: [['Content-Type', 'text/xml']] },
      { uri: '/?q=w102x' },
    ], 'xml');
    assert.ok(used > 0);
  });

  it('response-only rules stay out of a batch (a walk without a response steps over them)', () => {
    // Phase 3 without a response: 30 matches and sets MATCHED_VARS; the response-only rules
    // after it are stepped over unread, so MATCHED_VARS is what 30 left.
    const rules = `SecRule REQUEST_HEADERS:X "@rx ." "id:30,phase:3,pass,log,msg:'x'"
SecRule RESPONSE_HEADERS "@rx w31x" "id:31,phase:3,pass,log,msg:'31'"
SecRule RESPONSE_HEADERS "@rx w32x" "id:32,phase:3,pass,log,msg:'32'"
${stretch(100, 2)}`;
    const headers: [string, string][] = [['X', 'y']];
    const used = compare(rules, [...repeat({ uri: '/?q=1', headers, noResponse: true }, WARM), { uri: '/?q=2', headers, noResponse: true }, { uri: '/?q=3', headers }], 'response');
    assert.ok(used > 0);
  });
});
