import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';

import { BatchedLineWriter } from '../../../src/waf/agent/audit-writer.ts';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('lines written in one turn go out in one write, in order, newline-terminated', async () => {
  const writes: string[] = [];
  const w = new BatchedLineWriter({ write: (t: string) => writes.push(t) });
  w.write('{"a":1}');
  w.write('{"b":2}');
  w.write('{"c":3}');
  assert.deepEqual(writes, [], 'nothing is written before the turn ends');
  assert.equal(w.queued, 3);
  await turn();
  assert.deepEqual(writes, ['{"a":1}\n{"b":2}\n{"c":3}\n']);
  assert.equal(w.queued, 0);
});

test('each turn gets its own write; an empty turn writes nothing', async () => {
  const writes: string[] = [];
  const w = new BatchedLineWriter({ write: (t: string) => writes.push(t) });
  w.write('one');
  await turn();
  await turn();
  w.write('two');
  w.write('three');
  await turn();
  assert.deepEqual(writes, ['one\n', 'two\nthree\n']);
  w.flush();
  assert.equal(writes.length, 2);
});

test('lines still queued when the process exits are written to the descriptor', () => {
  // A child queues lines and exits in the same turn: the exit handler writes them synchronously.
  const mod = resolve(import.meta.dirname, '../../../src/waf/agent/audit-writer.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `import { stdoutLines } from ${JSON.stringify(mod)}; stdoutLines().write('first'); stdoutLines().write('second'); process.exit(0);`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'first\nsecond\n');
});
