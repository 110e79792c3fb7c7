// Which Sec-WebSocket-Extensions offers reach the upstream when frames are inspected.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withoutCompressionOffers } from '../../../src/websocket/proxy.ts';

const cases: [string | string[] | undefined, string | undefined][] = [
  [undefined, undefined],
  ['permessage-deflate', undefined],
  ['PerMessage-Deflate; client_max_window_bits', undefined],
  ['permessage-deflate; server_no_context_takeover, permessage-deflate', undefined],
  ['x-webkit-deflate-frame', undefined],
  ['permessage-deflate, x-custom; a=1', 'x-custom; a=1'],
  [['x-one', 'permessage-deflate'], 'x-one'],
  ['permessage-deflatex', 'permessage-deflatex'],
  [' , ', undefined],
];

for (const [input, expected] of cases) {
  test(`withoutCompressionOffers(${JSON.stringify(input)}) = ${JSON.stringify(expected)}`, () => {
    assert.equal(withoutCompressionOffers(input), expected);
  });
}
