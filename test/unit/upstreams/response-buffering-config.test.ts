// `response-buffering { }` and its limits (docs/upstreams.md, "Response buffering"): what the
// config accepts, the clear errors, and the policy the group gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configDiagnostics, configErrors } from '../../helpers/config-diagnostics.ts';
import { DEFAULT_RESPONSE_BUFFER_FILE_BYTES, DEFAULT_RESPONSE_BUFFER_MEMORY_BYTES, ResponseBufferBudget, responseBufferBudget, responseBufferPolicy } from '../../../src/upstream/response-buffer.ts';
import { startGateway } from '../../../src/server/gateway.ts';
import { simpleConfig } from '../../helpers/gateway.ts';

const cfg = (block: string, limits = '') => `
${limits}
listeners { listener "l" { address "127.0.0.1:0"; protocol "http" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u" } }
upstreams { upstream "u" { target "127.0.0.1:1"; ${block} } }
`;

test('response-buffering: defaults on, knobs accepted, off by enabled #false', () => {
  assert.deepEqual(configErrors(cfg('')), []);
  assert.deepEqual(configErrors(cfg('response-buffering { memory-bytes 65536; file-bytes 0 }', 'limits { max-response-buffer-memory-bytes 1048576; max-response-buffer-file-bytes 0; max-response-buffer-bytes-per-client 1048576 }')), []);
  assert.deepEqual(configErrors(cfg('response-buffering { enabled #false }')), []);
  assert.deepEqual(responseBufferPolicy(undefined), { memoryBytes: DEFAULT_RESPONSE_BUFFER_MEMORY_BYTES, fileBytes: DEFAULT_RESPONSE_BUFFER_FILE_BYTES });
  assert.deepEqual(responseBufferPolicy({ 'memory-bytes': 65536, 'file-bytes': 0 }), { memoryBytes: 65536, fileBytes: 0 });
  assert.equal(responseBufferPolicy({ enabled: false }), undefined);
});

test('response-buffering: clear errors for values that cannot work, a warning for an unknown key', () => {
  const tooSmall = configErrors(cfg('response-buffering { memory-bytes 100 }'));
  assert.equal(tooSmall.length, 1, tooSmall.join('\n'));
  assert.match(tooSmall[0]!, /memory-bytes/);
  const negative = configErrors(cfg('response-buffering { file-bytes -1 }'));
  assert.equal(negative.length, 1, negative.join('\n'));
  assert.match(negative[0]!, /file-bytes/);
  const unknown = configDiagnostics(cfg('response-buffering { memory 65536 }')).warnings;
  assert.ok(unknown.some((e) => /response-buffering: unknown key "memory"/.test(e)), unknown.join('\n'));
  const limit = configErrors(cfg('', 'limits { max-response-buffer-bytes-per-client -5 }'));
  assert.equal(limit.length, 1, limit.join('\n'));
  assert.match(limit[0]!, /max-response-buffer-bytes-per-client: must be >= 0/);
});

test('the budget: per-client and process bounds, IPv6 per /64, everything given back', () => {
  const b = new ResponseBufferBudget();
  const events: string[] = [];
  b.onEvent = (e) => events.push(e);
  b.memoryCap = 100;
  b.fileCap = 1000;
  b.perClientCap = 300;
  const a = ResponseBufferBudget.clientKey('2001:db8:0:1::5');
  assert.equal(a, ResponseBufferBudget.clientKey('2001:db8:0:1:ffff::9'), 'one /64 is one client');
  assert.ok(b.fits(a, 100, false));
  b.add(a, 100, false);
  assert.equal(b.fits('192.0.2.1', 1, false), false, 'process memory bound');
  assert.ok(b.fits(a, 200, true));
  b.add(a, 200, true);
  assert.equal(b.fits(a, 1, true), false, 'per-client bound');
  assert.ok(b.fits('192.0.2.1', 300, true), 'another client has its own share');
  assert.deepEqual(events, ['limit_memory', 'limit_client']);
  b.give(a, 100, 200);
  assert.equal(b.memoryUsed + b.fileUsed, 0);
  assert.equal(b.clientCount, 0);
});

test('the process bounds hold for the whole gateway: each cluster worker takes its share (one pod memory limit and /tmp volume hold them all)', async () => {
  const limits = 'limits { max-response-buffer-memory-bytes 8388608; max-response-buffer-file-bytes 402653184; max-response-buffer-bytes-per-client 1048576 }';
  const alone = await startGateway({ configText: simpleConfig('127.0.0.1:9', { top: limits }), logLevel: 'silent' });
  try {
    assert.deepEqual([responseBufferBudget.memoryCap, responseBufferBudget.fileCap, responseBufferBudget.perClientCap], [8388608, 402653184, 1048576]);
  } finally {
    await alone.close();
  }
  const worker = await startGateway({ configText: simpleConfig('127.0.0.1:9', { top: limits }), logLevel: 'silent', clusterWorker: { id: 1, workers: 4 } });
  try {
    // per client stays whole: one client's connections land on one worker
    assert.deepEqual([responseBufferBudget.memoryCap, responseBufferBudget.fileCap, responseBufferBudget.perClientCap], [2097152, 100663296, 1048576]);
  } finally {
    await worker.close();
  }
});

// Session 29 (lead): an answer starts buffering only with a memory slot, so one address that took
// the whole memory bound left every other slow client unbuffered (their answers held connections).
test("the budget: one client's share of the memory bound is a quarter (at least one slot); files are not shared so", () => {
  const b = new ResponseBufferBudget();
  const events: string[] = [];
  b.onEvent = (e) => events.push(e);
  b.memoryCap = 400;
  b.fileCap = 1000;
  b.perClientCap = 1000;
  const hog = '192.0.2.1';
  assert.ok(b.fits(hog, 100, false));
  b.add(hog, 100, false);
  assert.equal(b.fits(hog, 100, false), false, 'a second slot is past the quarter');
  assert.deepEqual(events, ['limit_client']);
  assert.ok(b.fits(hog, 500, true), 'its files are bounded by the per-client bound only');
  for (const other of ['192.0.2.2', '192.0.2.3', '192.0.2.4']) {
    assert.ok(b.fits(other, 100, false), `${other} still gets a slot`);
    b.add(other, 100, false);
  }
  assert.equal(b.fits('192.0.2.5', 100, false), false, 'the process bound still holds');
  b.give(hog, 100, 0);
  assert.ok(b.fits(hog, 100, false), 'given back, the share is free again');
  const tiny = new ResponseBufferBudget();
  tiny.memoryCap = 100;
  assert.ok(tiny.fits(hog, 100, false), 'a bound under four slots still gives a client one');
});
