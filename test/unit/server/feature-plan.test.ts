// planFeatures: which features a config gets and in which order (table), and the programming
// errors it refuses (unknown dependency, cycle).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defineFeature, planFeatures, type FeatureManifest } from '../../../src/pipeline/feature.ts';
import type { CompiledConfig } from '../../../src/config/compile.ts';

const config = {} as CompiledConfig;
function f(name: string, used: boolean, dependencies: string[] = [], after: string[] = []): FeatureManifest {
  return defineFeature({ name, dependencies, after, uses: () => used, register() {} });
}
const names = (list: FeatureManifest[]) => list.map((m) => m.name);

const cases: { name: string; all: FeatureManifest[]; want: string[] }[] = [
  { name: 'unused features are left out', all: [f('a', true), f('b', false), f('c', true)], want: ['a', 'c'] },
  { name: 'a used feature pulls its hard dependencies in, before it', all: [f('fwd', true, ['lb']), f('lb', false)], want: ['lb', 'fwd'] },
  { name: 'transitive dependencies', all: [f('c', true, ['b']), f('b', false, ['a']), f('a', false)], want: ['a', 'b', 'c'] },
  { name: '`after` orders used features only', all: [f('fwd', true, [], ['disc', 'lb']), f('lb', true, [], ['disc']), f('disc', false)], want: ['lb', 'fwd'] },
  { name: '`after` puts a used feature first', all: [f('fwd', true, [], ['disc']), f('disc', true)], want: ['disc', 'fwd'] },
  { name: 'list order otherwise', all: [f('x', true), f('y', true), f('z', true)], want: ['x', 'y', 'z'] },
];

for (const c of cases) {
  test(`planFeatures: ${c.name}`, () => {
    assert.deepEqual(names(planFeatures(c.all, config)), c.want);
  });
}

test('planFeatures refuses an unknown dependency and a cycle', () => {
  assert.throws(() => planFeatures([f('a', true, ['nope'])], config), /feature "a" depends on unknown feature "nope"/);
  assert.throws(() => planFeatures([f('a', true, ['b']), f('b', false, ['a'])], config), /feature dependency cycle: a -> b -> a/);
});
