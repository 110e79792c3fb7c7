// The transport error codes added with write-secs and the HTTP/2 dispatcher map to the statuses,
// reasons and retry hints the forwarder relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyUpstreamError } from '../../../src/errors/index.ts';
import { H2Error, H2_REFUSED, H2_UNSUPPORTED } from '../../../src/upstream/h2.ts';
import { UpstreamWriteTimeout } from '../../../src/server/forwarder.ts';

const cases: [string, unknown, { status: number; reason: string; beforeSend: boolean }][] = [
  ['write-secs stall', new UpstreamWriteTimeout(1000), { status: 504, reason: 'timeout', beforeSend: false }],
  ['target without h2 (min-version 2)', new H2Error(H2_UNSUPPORTED, 'x'), { status: 502, reason: 'protocol', beforeSend: true }],
  ['refused stream that could not be resent', new H2Error(H2_REFUSED, 'x'), { status: 502, reason: 'reset', beforeSend: true }],
];

for (const [name, err, want] of cases) {
  test(`classifyUpstreamError: ${name}`, () => {
    const c = classifyUpstreamError(err);
    assert.deepEqual({ status: c.status, reason: c.reason, beforeSend: c.beforeSend }, want);
    assert.ok(!/\d+\.\d+\.\d+\.\d+/.test(c.message), 'client-facing message names no address');
  });
}
