// Target-set planning (src/upstream/discovery/diff.ts): what stays, what is new, what leaves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeSpecs, planTargetSet } from '../../../src/upstream/discovery/diff.ts';
import type { TargetSpec } from '../../../src/upstream/address.ts';

const spec = (address: string, weight = 1): TargetSpec => {
  const i = address.lastIndexOf(':');
  return { address, host: address.slice(0, i), port: Number(address.slice(i + 1)), weight };
};

interface T {
  address: string;
  weight: number;
  id: number;
}

function run(current: T[], wanted: TargetSpec[]) {
  let id = 100;
  const plan = planTargetSet(current, wanted, (s) => ({ address: s.address, weight: s.weight, id: id++ }));
  return {
    changed: plan.changed,
    next: plan.next.map((t) => `${t.address}#${t.id}`),
    added: plan.added.map((t) => t.address),
    removed: plan.removed.map((t) => t.address),
    reweighted: plan.reweighted.map(([t, w]) => `${t.address}:${t.weight}->${w}`),
  };
}

const a = { address: '10.0.0.1:80', weight: 1, id: 1 };
const b = { address: '10.0.0.2:80', weight: 1, id: 2 };
const c = { address: '10.0.0.3:80', weight: 2, id: 3 };

const cases: [string, T[], TargetSpec[], ReturnType<typeof run>][] = [
  ['same set, same order: unchanged', [a, b], [spec(a.address), spec(b.address)], { changed: false, next: ['10.0.0.1:80#1', '10.0.0.2:80#2'], added: [], removed: [], reweighted: [] }],
  ['one added: survivors keep their objects', [a], [spec(a.address), spec(b.address)], { changed: true, next: ['10.0.0.1:80#1', '10.0.0.2:80#100'], added: ['10.0.0.2:80'], removed: [], reweighted: [] }],
  ['one removed', [a, b, c], [spec(a.address), spec(c.address, 2)], { changed: true, next: ['10.0.0.1:80#1', '10.0.0.3:80#3'], added: [], removed: ['10.0.0.2:80'], reweighted: [] }],
  ['weight change keeps the object', [a, c], [spec(a.address), spec(c.address, 5)], { changed: true, next: ['10.0.0.1:80#1', '10.0.0.3:80#3'], added: [], removed: [], reweighted: ['10.0.0.3:80:2->5'] }],
  ['empty answer removes everything', [a, b], [], { changed: true, next: [], added: [], removed: ['10.0.0.1:80', '10.0.0.2:80'], reweighted: [] }],
  ['empty stays empty', [], [], { changed: false, next: [], added: [], removed: [], reweighted: [] }],
  ['duplicate address: first wins', [], [spec('10.0.0.9:80', 3), spec('10.0.0.9:80', 1)], { changed: true, next: ['10.0.0.9:80#100'], added: ['10.0.0.9:80'], removed: [], reweighted: [] }],
  ['order change only is a change (new list)', [a, b], [spec(b.address), spec(a.address)], { changed: true, next: ['10.0.0.2:80#2', '10.0.0.1:80#1'], added: [], removed: [], reweighted: [] }],
];

for (const [name, current, wanted, want] of cases) {
  test(`planTargetSet: ${name}`, () => assert.deepEqual(run(current, wanted), want));
}

test('mergeSpecs: static first in config order, discovered sorted, a discovered duplicate of a static target dropped', () => {
  const merged = mergeSpecs([spec('static-b:80'), spec('static-a:80')], [spec('10.0.0.9:80'), spec('static-b:80', 7), spec('10.0.0.1:80')]);
  assert.deepEqual(
    merged.map((s) => `${s.address}/${s.weight}`),
    ['static-b:80/1', 'static-a:80/1', '10.0.0.1:80/1', '10.0.0.9:80/1'],
  );
});

test('mergeSpecs + planTargetSet: a DNS answer in another order is no change', () => {
  const first = mergeSpecs([], [spec('10.0.0.2:80'), spec('10.0.0.1:80')]);
  const current = first.map((s, i) => ({ address: s.address, weight: s.weight, id: i }));
  const again = mergeSpecs([], [spec('10.0.0.1:80'), spec('10.0.0.2:80')]);
  assert.equal(planTargetSet(current, again, () => assert.fail('nothing new')).changed, false);
});
