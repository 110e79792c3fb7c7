// The transformation stages an item keeps by chain (Item.stages: one chain's as a pair, more in
// an array by chain id, session 25): every chain reads its own stages, whether the item holds one
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

  it('two chains only (the pair becomes the array) and a scalar read by both', () => {
    const order = [2, 0, 2, 0];
    assert.deepEqual(matched(rules(order, 'REQUEST_BASENAME'), '/%20AbC%2541%20', 2), [[1, 2, 3, 4], [1, 2, 3, 4]]);
  });
});
