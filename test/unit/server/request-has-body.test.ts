// The one body-presence test the forwarder, the cache and agent body inspection share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { requestHasBody } from '../../../src/server/request-body.ts';

const req = (major: number, headers: Record<string, string>, endAfterHeaders?: boolean) =>
  ({ httpVersionMajor: major, headers, ...(endAfterHeaders === undefined ? {} : { stream: { endAfterHeaders } }) }) as unknown as IncomingMessage;

for (const [name, r, want] of [
  ['HTTP/1.1 without Content-Length or Transfer-Encoding', req(1, {}), false],
  ['Content-Length: 0', req(1, { 'content-length': '0' }), false],
  ['Content-Length: 12', req(1, { 'content-length': '12' }), true],
  ['Transfer-Encoding: chunked', req(1, { 'transfer-encoding': 'chunked' }), true],
  ['HTTP/2, HEADERS ended the stream', req(2, {}, true), false],
  // agent body inspection missed this one before it used the shared test
  ['HTTP/2, DATA follows without Content-Length', req(2, {}, false), true],
  ['HTTP/2 with Content-Length: 0', req(2, { 'content-length': '0' }, false), false],
] as const) {
  test(`requestHasBody: ${name} -> ${want}`, () => assert.equal(requestHasBody(r), want));
}
