// SeenBefore (src/waf/seen-before.ts) hashes a value's characters: equal text is the same value
// whatever V8 made of the string (a literal, a concatenation, a slice, a Buffer's decoding, a
// two-byte string), which is how the in-process engine meets the gateway's strings.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { currentTransaction, SeenBefore } from '../../../src/waf/seen-before.ts';

const big = `${'x'.repeat(64)}blue running shoes`;
const kinds: [string, () => string][] = [
  ['a literal', () => 'blue running shoes'],
  ['a concatenation', () => ['blue', ' running', ' shoes'].join('').slice(0, 4) + ' running shoes'],
  ['a slice', () => big.slice(64)],
  ['a Buffer decoded as latin1', () => Buffer.from('blue running shoes', 'latin1').toString('latin1')],
  ['JSON.parse', () => JSON.parse('"blue running shoes"') as string],
];

test('SeenBefore: the same text in another transaction is seen before, whatever the string kind', () => {
  for (const [first, a] of kinds) {
    for (const [second, b] of kinds) {
      const seen = new SeenBefore();
      currentTransaction.serial = 1;
      assert.equal(seen.check(a()), false, `${first}: first sight`);
      assert.equal(seen.check(b()), false, `${second} in the same transaction`);
      currentTransaction.serial = 2;
      assert.equal(seen.check(b()), true, `${second} after ${first}`);
    }
  }
  const seen = new SeenBefore();
  currentTransaction.serial = 3;
  seen.check('blue running sho\u015bs');
  currentTransaction.serial = 4;
  assert.equal(seen.check(['blue running sho', '\u015b', 's'].join('')), true, 'two-byte text too');
  assert.equal(seen.check('blue running shoes!'), false, 'other text is not');
});
