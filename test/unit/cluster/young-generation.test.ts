// The semi-space flag the cluster primaries give their workers (src/cluster/young-generation.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

import { DEFAULT_SEMI_SPACE_MB, semiSpaceMb, workerExecArgv } from '../../../src/cluster/young-generation.ts';

test('workerExecArgv: the flag is added unless the operator chose one or turned it off', () => {
  const cases: { name: string; execArgv: string[]; env: NodeJS.ProcessEnv; want: string[] }[] = [
    { name: 'default', execArgv: [], env: {}, want: ['--min-semi-space-size=16'] },
    { name: 'parent flags kept first', execArgv: ['--import', 'tsx'], env: {}, want: ['--import', 'tsx', '--min-semi-space-size=16'] },
    { name: 'empty env value = default', execArgv: [], env: { SENTINEL_SEMI_SPACE_MB: ' ' }, want: ['--min-semi-space-size=16'] },
    { name: 'smaller', execArgv: [], env: { SENTINEL_SEMI_SPACE_MB: '8' }, want: ['--min-semi-space-size=8'] },
    { name: 'above V8 max raises the max', execArgv: [], env: { SENTINEL_SEMI_SPACE_MB: '32' }, want: ['--min-semi-space-size=32', '--max-semi-space-size=32'] },
    { name: '0 = V8 sizing', execArgv: ['--x'], env: { SENTINEL_SEMI_SPACE_MB: '0' }, want: ['--x'] },
    { name: 'parent has min', execArgv: ['--min-semi-space-size=4'], env: {}, want: ['--min-semi-space-size=4'] },
    { name: 'parent has max (underscores)', execArgv: ['--max_semi_space_size=64'], env: {}, want: ['--max_semi_space_size=64'] },
    { name: 'NODE_OPTIONS has it (inherited)', execArgv: [], env: { NODE_OPTIONS: '--enable-source-maps --min-semi-space-size=2' }, want: [] },
    { name: 'NODE_OPTIONS without it', execArgv: [], env: { NODE_OPTIONS: '--enable-source-maps' }, want: ['--min-semi-space-size=16'] },
  ];
  for (const c of cases) assert.deepEqual(workerExecArgv(c.execArgv, c.env), c.want, c.name);
});

test('SENTINEL_SEMI_SPACE_MB: integers 0-1024, anything else is an error', () => {
  assert.equal(semiSpaceMb({}), DEFAULT_SEMI_SPACE_MB);
  assert.equal(semiSpaceMb({ SENTINEL_SEMI_SPACE_MB: '1024' }), 1024);
  for (const bad of ['-1', '1025', '1.5', 'big', '16MB']) assert.throws(() => semiSpaceMb({ SENTINEL_SEMI_SPACE_MB: bad }), /SENTINEL_SEMI_SPACE_MB/, bad);
});

test('V8 sizes the young generation from the flag at start-up only (why it is a fork argument)', () => {
  const probe = 'const v8 = require("node:v8"); if (process.argv[1]) v8.setFlagsFromString(process.argv[1]); const n = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space"); console.log(n.space_size / 2 ** 20)';
  const mb = (flags: string[], late = '') => Number(spawnSync(process.execPath, [...flags, '-e', probe, '--', late], { encoding: 'utf8' }).stdout.trim());
  const fromFlag = mb(workerExecArgv([], {}));
  assert.ok(fromFlag >= DEFAULT_SEMI_SPACE_MB, `new space ${fromFlag} MB with the flag`);
  assert.ok(mb([]) < DEFAULT_SEMI_SPACE_MB, 'V8 starts smaller without it');
  assert.ok(mb([], '--min-semi-space-size=16') < DEFAULT_SEMI_SPACE_MB, 'set after start-up, it does not resize');
});
