// The transformation stages an item keeps by chain (Item.stages: up to three chains' as (id, stages)
// pairs, more in an array by chain id, sessions 25 and 31): every chain reads its own stages, whether the item holds one
// chain, has just gone from one to two, or holds many, and whichever order the chains come in.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { wafFromText } from '../../../src/waf/index.ts';

// ' AbC%41 ' through each chain; rules of one chain read it again after others (a kept answer).
const CHAINS: [string, string][] = [
  ['t:lowercase', ' abc%41 '],
  ['t:lowercase', ' abc%41 '],
  ['t:uppercase', ' ABC%41 '],
  ['t:trim', 'AbC%41'],
  ['t:urlDecode', ' AbCA '],
  ['t:length', '8'],
  ['t:lowercase,t:trim', 'abc%41'],
  ['t:uppercase', ' ABC%41 '],
  ['t:lowercase', ' abc%41 '],
];

function rules(order: number[], variable: string): string {
  return order.map((c, i) => `SecRule ${variable} "@streq ${CHAINS[c]![1]}" "id:${i + 1},phase:1,pass,log,t:none,${CHAINS[c]![0]}"`).join('\n');
}

function matched(text: string, uri: string, n: number): number[][] {
  const waf = wafFromText(`SecRuleEngine On\n${text}`);
  const out: number[][] = [];
  for (let k = 0; k < n; k++) {
    const tx = waf.newTransaction({ clientIp: '192.0.2.1', clientPort: 1, serverPort: 80, method: 'GET', uri, protocol: 'HTTP/1.1', headers: [] });
    tx.processRequestHeaders();
    out.push(tx.matchedRules().map((m) => m.id));
  }
  return out;
}

describe('transformation stages kept by chain', () => {
  const all = CHAINS.map((_, i) => i + 1);
  it('one chain, then a second, then many: each rule sees its own chain, in every transaction', () => {
    const order = CHAINS.map((_, i) => i);
    assert.deepEqual(matched(rules(order, 'ARGS:a'), '/p?a=%20AbC%2541%20', 3), [all, all, all]);
  });

  it('the chains in another order, and a rule whose value is another chain\'s does not match', () => {
    const order = [5, 0, 4, 2, 6, 3, 1];
    const text = `${rules(order, 'ARGS:a')}\nSecRule ARGS:a "@streq ${CHAINS[0]![1]}" "id:99,phase:1,pass,log,t:none,t:uppercase"`;
    const want = order.map((_, i) => i + 1);
    assert.deepEqual(matched(text, '/p?a=%20AbC%2541%20', 2), [want, want]);
  });

  it('chains that change nothing (no stages array kept) beside chains that change the value at a later step', () => {
    const text = [
      'SecRule ARGS:a "@streq abc" "id:1,phase:1,pass,log,t:none,t:lowercase,setvar:tx.mv=%{MATCHED_VAR}"',
      'SecRule ARGS:a "@streq ABC" "id:2,phase:1,pass,log,t:none,t:lowercase,t:uppercase"',
      'SecRule ARGS:a "@streq abc" "id:3,phase:1,pass,log,t:none,t:lowercase,t:uppercase,multiMatch"',
      'SecRule ARGS:a "@streq abc" "id:4,phase:1,pass,log,t:none,t:lowercase,t:uppercase"',
      'SecRule ARGS:a "@streq abc" "id:5,phase:1,pass,log,t:none,t:trim,multiMatch"',
      'SecRule ARGS:a "@streq abc" "id:6,phase:1,pass,log,t:none,t:lowercase"',
      'SecRule ARGS:a "@rx ^abc$" "id:7,phase:1,pass,log,t:none,t:trim,t:lowercase,t:removeNulls,setvar:tx.n=+1"',
      'SecRule TX:mv "@streq abc" "id:8,phase:1,pass,log"',
      'SecRule TX:n "@eq 1" "id:9,phase:1,pass,log"',
    ].join('\n');
    assert.deepEqual(matched(text, '/p?a=abc', 3), [[1, 2, 3, 5, 6, 7, 8, 9], [1, 2, 3, 5, 6, 7, 8, 9], [1, 2, 3, 5, 6, 7, 8, 9]]);
  });

  it('up to three chains as pairs, a fourth turns them into the array: each read again after each step', () => {
    // chains 0, 2, 3 are three distinct ones (pairs), 4 the fourth (the array by chain id), 5 a fifth
    const order = [0, 2, 0, 3, 2, 4, 0, 3, 4, 2, 5, 0, 2, 3, 4, 5];
    const want = order.map((_, i) => i + 1);
    assert.deepEqual(matched(rules(order, 'ARGS:a'), '/p?a=%20AbC%2541%20', 3), [want, want, want]);
  });

  it('two chains only (the pair becomes the array) and a scalar read by both', () => {
    const order = [2, 0, 2, 0];
    assert.deepEqual(matched(rules(order, 'REQUEST_BASENAME'), '/%20AbC%2541%20', 2), [[1, 2, 3, 4], [1, 2, 3, 4]]);
  });
});
