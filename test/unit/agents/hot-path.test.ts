// The agent hop's per-call shortcuts (issue 16 item 3): the shared deadline queue, the
// pre-serialised plain allow reply, and cancellation without an AbortSignal.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineQueue } from '../../../src/agent-protocol/deadlines.ts';
import { allowReplyText, parseAgentReply, plainAllowCorrelationId, plainAllowReply } from '../../../src/agent-protocol/messages.ts';
import { CancelScope } from '../../../src/agent-protocol/client.ts';
import { CancelReason } from '../../../src/agent-protocol/messages.ts';
import { allow, block } from '../../../src/agent-sdk/index.ts';
import { Context } from '../../../src/server/context.ts';
import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { until } from '../../helpers/until.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('deadlines: each fires once, after its time, in deadline order across timeout values; cancelled ones never fire', async () => {
  let clock = 0;
  const q = new DeadlineQueue(() => clock);
  const fired: string[] = [];
  q.add(30, () => fired.push('a30'));
  const b = q.add(30, () => fired.push('b30'));
  q.add(10, () => fired.push('c10'));
  q.add(50, () => fired.push('d50'));
  b.cancel();
  b.cancel(); // idempotent
  clock = 9;
  await sleep(15);
  assert.deepEqual(fired, [], 'nothing is due before its deadline, even when the timer runs');
  clock = 31;
  await sleep(40);
  assert.deepEqual(fired, ['c10', 'a30']);
  clock = 100;
  await sleep(40);
  assert.deepEqual(fired, ['c10', 'a30', 'd50']);
});

test('deadlines: a callback may add deadlines; cancelling after firing is harmless', async () => {
  const q = new DeadlineQueue();
  const fired: number[] = [];
  const first = q.add(5, () => {
    fired.push(1);
    q.add(5, () => fired.push(2));
  });
  // the second is armed when the first fires: wait for it rather than for a sum of delays
  await until('both deadlines', () => fired.length === 2);
  first.cancel();
  assert.deepEqual(fired, [1, 2]);
});

test('deadlines: many settled calls leave nothing behind and a live one still fires', async () => {
  const q = new DeadlineQueue();
  let late = 0;
  for (let i = 0; i < 10_000; i++) q.add(20, () => assert.fail('cancelled deadline fired')).cancel();
  q.add(20, () => late++);
  await until('the live deadline', () => late > 0);
  assert.equal(late, 1);
});

test('deadlines: an object target gets onDeadline once; a cancelled one never', async () => {
  let clock = 0;
  const q = new DeadlineQueue(() => clock);
  const fired: string[] = [];
  q.add(10, { onDeadline: () => fired.push('obj') });
  q.add(10, { onDeadline: () => fired.push('cancelled') }).cancel();
  q.add(5, () => fired.push('fn'));
  clock = 20;
  await sleep(30);
  assert.deepEqual(fired, ['fn', 'obj']);
});

test('plain allow: the template is byte for byte what the general path writes for allow()', () => {
  for (const id of ['abc', 'trace-1~2#2', '01HX9Z', '', ' !#[]~']) {
    const wire = Buffer.from(JSON.stringify(allow().toWire(id)));
    const text = allowReplyText(id)!;
    assert.deepEqual(Buffer.from(text, 'latin1'), wire, id);
    assert.equal(Buffer.byteLength(text, 'utf8'), text.length, 'one byte per character');
    assert.equal(plainAllowCorrelationId(wire), id);
    assert.deepEqual(plainAllowReply(id), parseAgentReply(JSON.parse(wire.toString())), 'same validated reply as the general path');
  }
  // a non-ASCII id is not one byte per character: the general path, whose bytes the gateway still recognises
  assert.equal(allowReplyText('ü-ñ'), undefined);
  assert.equal(plainAllowCorrelationId(Buffer.from(JSON.stringify(allow().toWire('ü-ñ')))), 'ü-ñ');
});

test('plain allow: ids that need JSON escapes and anything else take the general path', () => {
  for (const id of ['a"b', 'a\\b', 'a\nb', '\u0001', 'a\u007f']) assert.equal(allowReplyText(id), undefined, JSON.stringify(id));
  const other = [
    JSON.stringify(block(403).toWire('a')),
    JSON.stringify(allow().setRequestHeader('x', '1').toWire('a')),
    JSON.stringify(allow().tag('t').toWire('a')),
    JSON.stringify({ ...allow().toWire('a'), needs_more: true }),
    // the same reply spelled differently (another agent implementation): valid, but not the template
    JSON.stringify(allow().toWire('a'), null, 1),
    '{"decision":"allow","audit":{"custom":{"correlation_id":"a"}}}',
    // an escaped id inside the template's frame
    JSON.stringify(allow().toWire('a"b')),
    JSON.stringify(allow().toWire('a\\u0041')),
  ];
  for (const text of other) assert.equal(plainAllowCorrelationId(Buffer.from(text)), undefined, text);
  assert.equal(plainAllowCorrelationId(Buffer.alloc(0)), undefined);
});

test('plain allow reply: its lists are shared and cannot be mutated', () => {
  const r = plainAllowReply('a');
  assert.throws(() => (r.tags as string[]).push('x'));
  assert.equal(plainAllowReply('b').tags.length, 0);
});

test('CancelScope: listeners run once with the code; late listeners run at once; removed ones never', () => {
  const s = new CancelScope();
  const seen: string[] = [];
  const removed = () => seen.push('removed');
  s.onCancel(() => seen.push(`first ${s.cancelCode}`));
  s.onCancel(removed);
  s.offCancel(removed);
  s.cancel(CancelReason.BlockedByAgent);
  s.cancel(CancelReason.Timeout);
  s.onCancel(() => seen.push('late'));
  assert.deepEqual(seen, [`first ${CancelReason.BlockedByAgent}`, 'late']);
  assert.equal(s.cancelled, true);
});

test('request context: onCancel without an AbortSignal; the signal, when asked for, aborts too', () => {
  const raw = { headers: {}, httpVersion: '1.1' } as unknown as IncomingMessage;
  const ctx = new Context('t', 0, raw, 'GET', '/', '', 'h', '127.0.0.1', 1, 'l', 'http', undefined, 'r', 'u', {}, pino({ level: 'silent' }));
  const seen: string[] = [];
  const off = () => seen.push('off');
  ctx.onCancel(() => seen.push('on'));
  ctx.onCancel(off);
  ctx.offCancel(off);
  const signal = ctx.signal;
  assert.equal(ctx.cancelled, false);
  ctx.cancel('client closed the connection');
  ctx.cancel('again');
  ctx.onCancel(() => seen.push('late'));
  assert.deepEqual(seen, ['on', 'late']);
  assert.equal(ctx.cancelled, true);
  assert.equal(signal.aborted, true);
});
