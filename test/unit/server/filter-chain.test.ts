// FilterChain.onRequest: synchronous while the filters are, the last filter's own promise handed
// back as it is (the agent hop: no async frame of the chain's around an agent's call), and the
// filter that answered recorded for the caller in every case.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FilterChain, type RefusalOut } from '../../../src/pipeline/chain.ts';
import type { LocalResponse, RequestContext, RequestFilter } from '../../../src/pipeline/types.ts';

const ctx = {} as RequestContext; // the filters below do not read it
const answer = (status: number): LocalResponse => ({ status, headers: {}, body: '' });

function filter(id: string, onRequest: RequestFilter['onRequest']): RequestFilter {
  return { id, type: 'test', onRequest };
}

test('synchronous filters: an answer without a promise, and the filter that gave it', () => {
  const out: RefusalOut = { refusedBy: undefined };
  const a = filter('a', () => undefined);
  const b = filter('b', () => answer(429));
  const c = filter('c', () => assert.fail('not asked after an answer'));
  assert.deepEqual(new FilterChain([a, b, c]).onRequest(ctx, undefined, out), answer(429));
  assert.equal(out.refusedBy, b);
  assert.equal(new FilterChain([a]).onRequest(ctx, undefined, out), undefined);
});

test("the last filter's promise is returned as it is (no wrapper promise)", async () => {
  const out: RefusalOut = { refusedBy: undefined };
  const pending = Promise.resolve(answer(503));
  const last = filter('agent', () => pending);
  const got = new FilterChain([filter('sync', () => undefined), last]).onRequest(ctx, undefined, out);
  assert.equal(got, pending);
  assert.equal(out.refusedBy, last);
  assert.deepEqual(await got, answer(503));
});

test('a promise before the last filter: the rest run after it, in order, and the answering filter is recorded', async () => {
  const asked: string[] = [];
  const first = filter('first', () => (asked.push('first'), Promise.resolve(undefined)));
  const second = filter('second', () => (asked.push('second'), undefined));
  const third = filter('third', () => (asked.push('third'), Promise.resolve(answer(403))));
  const fourth = filter('fourth', () => assert.fail('not asked after an answer'));
  const out: RefusalOut = { refusedBy: undefined };
  const got = new FilterChain([first, second, third, fourth]).onRequest(ctx, undefined, out);
  assert.ok(got instanceof Promise);
  assert.deepEqual(await got, answer(403));
  assert.deepEqual(asked, ['first', 'second', 'third']);
  assert.equal(out.refusedBy, third);
  // nobody answers: undefined, after every filter
  const none = new FilterChain([first, second]).onRequest(ctx, undefined, out);
  assert.equal(await none, undefined);
});

test('a first filter that answers through its promise stops the chain', async () => {
  const out: RefusalOut = { refusedBy: undefined };
  const first = filter('first', () => Promise.resolve(answer(401)));
  const got = new FilterChain([first, filter('second', () => assert.fail('not asked'))]).onRequest(ctx, undefined, out);
  assert.deepEqual(await got, answer(401));
  assert.equal(out.refusedBy, first);
});
