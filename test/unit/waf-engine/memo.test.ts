import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { makeItem } from '../../../src/waf/engine/collections.ts';
import { knownMiss, MissMemo, setMiss, type MissEntry } from '../../../src/waf/engine/memo.ts';
import { currentTransaction } from '../../../src/waf/seen-before.ts';
import { wafFromText } from '../../../src/waf/index.ts';

let serials = 9000;
/** The entry of an item's value, the value offered in an earlier transaction first: a value is
 * kept (has an entry) from the second transaction that carries it. */
function kept(memo: MissMemo, item: ReturnType<typeof makeItem>): MissEntry {
  currentTransaction.serial = serials++;
  memo.of(makeItem(item.key, item.value));
  currentTransaction.serial = serials++;
  return memo.of(item)!;
}

describe('miss memo bitsets', () => {
  it('a value has no entry in the first transaction that carries it, then one shared by its items', () => {
    const memo = new MissMemo(40);
    currentTransaction.serial = serials++;
    assert.equal(memo.of(makeItem('k', 'once')), undefined);
    assert.equal(memo.of(makeItem('other', 'once')), undefined, 'the same transaction again');
    currentTransaction.serial = serials++;
    const e = memo.of(makeItem('k', 'once'));
    assert.ok(e !== undefined, 'kept when it comes back');
    assert.equal(memo.of(makeItem('other', 'once')), e);
    assert.equal(memo.size, 1);
  });

  it('an item that outlives its transaction (reused by the next request) gets the entry when its value comes back', () => {
    const memo = new MissMemo(40);
    const item = makeItem('k', 'kept by position');
    currentTransaction.serial = serials++;
    assert.equal(memo.of(item), undefined);
    assert.equal(memo.of(item), undefined, 'asked again in the same transaction');
    currentTransaction.serial = serials++;
    const e = memo.of(item);
    assert.ok(e !== undefined);
    setMiss(e, 3);
    currentTransaction.serial = serials++;
    assert.equal(memo.of(item), e);
    assert.equal(memo.of(makeItem('k', 'kept by position')), e);
  });

  it('sets and reads each link bit alone, across word boundaries', () => {
    const memo = new MissMemo(100);
    for (const link of [0, 1, 7, 8, 31, 32, 33, 63, 64, 99]) {
      const entry = kept(memo, makeItem('', `value-${link}`));
      assert.equal(knownMiss(entry.bits, link), false);
      setMiss(entry, link);
      for (let other = 0; other < 100; other++) assert.equal(knownMiss(entry.bits, other), other === link, `link ${link}, read ${other}`);
      assert.equal(entry.known, 1);
    }
  });

  it('split: `all` has a link only when every known item misses it; new values stay fresh', () => {
    const memo = new MissMemo(70);
    // Two transactions see the same values, so the memo keeps them (admission on second sight).
    const values = ['a', 'b', 'c'];
    for (let tx = 1; tx <= 2; tx++) {
      currentTransaction.serial = 1000 + tx;
      for (const v of values) memo.of(makeItem('k', v));
    }
    currentTransaction.serial = 1003;
    const items = values.map((v) => makeItem('k', v));
    for (const it of items) for (const link of [3, 40, 65]) setMiss(memo.of(it)!, link);
    setMiss(memo.of(items[0]!)!, 50); // only one item misses link 50
    const fresh = makeItem('k', 'never seen');
    const split = memo.split([...items, fresh]);
    assert.deepEqual(split.fresh, [fresh]);
    for (const link of [3, 40, 65]) assert.equal(knownMiss(split.all, link), true, `link ${link}`);
    for (const link of [0, 50, 69]) assert.equal(knownMiss(split.all, link), false, `link ${link}`);
  });

  it('known counts the bits set, once per link, across words', () => {
    const memo = new MissMemo(100);
    const entry = kept(memo, makeItem('', 'counted'));
    const links = [0, 31, 32, 63, 64, 99];
    for (const link of [...links, ...links]) setMiss(entry, link); // the second round changes nothing
    assert.equal(entry.known, links.length);
    let bits = 0;
    for (let link = 0; link < 100; link++) if (knownMiss(entry.bits, link)) bits++;
    assert.equal(bits, links.length);
  });

  it('split ranks items by their known count: an item with less than half the best count stays fresh', () => {
    const memo = new MissMemo(40);
    const well = makeItem('k', 'well known');
    const little = makeItem('k', 'little known');
    for (let link = 0; link < 10; link++) setMiss(kept(memo, well), link);
    for (let link = 0; link < 4; link++) setMiss(kept(memo, little), link); // 4 * 2 < 10
    const split = memo.split([well, little]);
    assert.deepEqual(split.fresh, [little]);
    for (let link = 0; link < 40; link++) assert.equal(knownMiss(split.all, link), link < 10, `link ${link}`);
  });

  it('split of one known item: links it misses later show in `all` too (still true of every known item)', () => {
    const memo = new MissMemo(40);
    const one = makeItem('k', 'alone');
    setMiss(kept(memo, one), 1);
    const split = memo.split([one]);
    assert.deepEqual(split.fresh, []);
    assert.equal(knownMiss(split.all, 1), true);
    assert.equal(knownMiss(split.all, 2), false);
    setMiss(memo.of(one)!, 2);
    assert.equal(knownMiss(split.all, 2), true);
  });

  it('split with no item known (long values): every bit of `all` set, every item fresh', () => {
    const memo = new MissMemo(40);
    const long = makeItem('k', 'x'.repeat(5000));
    const split = memo.split([long]);
    assert.deepEqual(split.fresh, [long]);
    for (let link = 0; link < 40; link++) assert.equal(knownMiss(split.all, link), true);
  });

  it('split of several known items: `all` is their AND, a copy (the items keep their own bits)', () => {
    const memo = new MissMemo(64);
    const a = makeItem('k', 'first');
    const b = makeItem('k', 'second');
    for (const link of [5, 33, 40]) setMiss(kept(memo, a), link);
    for (const link of [5, 33, 41]) setMiss(kept(memo, b), link);
    const split = memo.split([a, b]);
    assert.deepEqual(split.fresh, []);
    for (let link = 0; link < 64; link++) assert.equal(knownMiss(split.all, link), link === 5 || link === 33, `link ${link}`);
    assert.equal(knownMiss(memo.of(a)!.bits, 40), true);
    assert.equal(knownMiss(memo.of(b)!.bits, 41), true);
  });
});

describe('miss memo: the AND of a split kept across transactions', () => {
  it('the same known entries with unchanged counts reuse the AND; a new bit on any of them recomputes it', () => {
    const memo = new MissMemo(64);
    const values = ['kept-a', 'kept-b', 'kept-c'];
    for (let tx = 1; tx <= 2; tx++) {
      currentTransaction.serial = 3000 + tx;
      for (const v of values) memo.of(makeItem('k', v));
    }
    currentTransaction.serial = 3003;
    const items = () => values.map((v) => makeItem('k', v));
    for (const it of items()) for (const link of [1, 40]) setMiss(memo.of(it)!, link);
    setMiss(memo.of(items()[1]!)!, 7); // one item only: not in the AND
    const first = memo.split(items());
    currentTransaction.serial = 3004;
    const again = memo.split(items());
    assert.equal(again.all, first.all, 'same entries, same counts: the kept AND');
    for (let link = 0; link < 64; link++) assert.equal(knownMiss(again.all, link), link === 1 || link === 40, `link ${link}`);
    // Link 7 becomes a miss of every item: the counts move, the AND is computed again and has it.
    for (const it of items()) setMiss(memo.of(it)!, 7);
    currentTransaction.serial = 3005;
    const after = memo.split(items());
    assert.notEqual(after.all, first.all);
    for (let link = 0; link < 64; link++) assert.equal(knownMiss(after.all, link), link === 1 || link === 7 || link === 40, `link ${link}`);
    // Other entries (one item less) do not take the kept AND of three.
    const two = memo.split(items().slice(0, 2));
    assert.notEqual(two.all, after.all);
    for (let link = 0; link < 64; link++) assert.equal(knownMiss(two.all, link), link === 1 || link === 7 || link === 40, `link ${link}`);
  });
});

describe('miss memo: bounded, values in use kept', () => {
  it('keeps a value looked up in every transaction while many more values than it holds come and go', () => {
    const memo = new MissMemo(40, 100);
    let serial = 5000;
    const hot = (): ReturnType<MissMemo['of']> => memo.of(makeItem('User-Agent', 'Mozilla/5.0 (the same every time)'));
    currentTransaction.serial = serial++;
    hot();
    currentTransaction.serial = serial++;
    const kept = hot()!; // second sight: admitted
    setMiss(kept, 3);
    // 1,000 values that each come back once in a later transaction (ids seen twice): each is
    // admitted, so the memo turns over ten times. The hot value is looked up in every transaction.
    for (let n = 0; n < 1000; n++) {
      for (const v of [n, n - 1]) {
        currentTransaction.serial = serial++;
        if (v >= 0) memo.of(makeItem('id', `id-${v}`));
        assert.equal(hot(), kept, `hot value dropped after ${n} others`);
      }
    }
    assert.equal(knownMiss(kept.bits, 3), true);
    assert.ok(memo.size <= 100, `size ${memo.size}`);
  });

  it('drops values not looked up again first, and stays at its bound', () => {
    const memo = new MissMemo(40, 10);
    let serial = 6000;
    const admit = (v: string): void => {
      for (let k = 0; k < 2; k++) {
        currentTransaction.serial = serial++;
        memo.of(makeItem('k', v));
      }
    };
    for (let n = 0; n < 10; n++) admit(`v${n}`);
    assert.equal(memo.size, 10);
    currentTransaction.serial = serial++;
    const used = memo.of(makeItem('k', 'v0')); // v0 was kept first, then looked up again
    admit('v10'); // one over the bound: v1 (oldest not looked up again) goes, v0 stays
    assert.equal(memo.size, 10);
    currentTransaction.serial = serial++;
    assert.equal(memo.of(makeItem('k', 'v0')), used);
    // v1 comes back and is admitted again: v2 is the oldest now but was looked up, so v3 goes.
    const before = memo.of(makeItem('k', 'v2'));
    currentTransaction.serial = serial++;
    memo.of(makeItem('k', 'v1'));
    assert.equal(memo.size, 10);
    currentTransaction.serial = serial++;
    assert.equal(memo.of(makeItem('k', 'v2')), before, 'v2 was looked up after v1 went: kept');
  });
});

describe('miss memo: eviction does not walk the Map', () => {
  it('admits values into a full memo without iterating a Map (V8 walks every deleted entry from the start)', () => {
    const memo = new MissMemo(40, 50);
    let serial = 7000;
    const admit = (v: string): void => {
      for (let k = 0; k < 2; k++) {
        currentTransaction.serial = serial++;
        memo.of(makeItem('k', v));
      }
    };
    for (let n = 0; n < 60; n++) admit(`before-${n}`);
    const proto = Map.prototype as unknown as Record<string | symbol, (...a: unknown[]) => unknown>;
    const names: (string | symbol)[] = ['keys', 'values', 'entries', 'forEach', Symbol.iterator];
    const saved = names.map((k) => proto[k]!);
    let walks = 0;
    names.forEach((k, i) => {
      proto[k] = function (this: unknown, ...a: unknown[]) {
        walks++;
        return saved[i]!.apply(this, a);
      };
    });
    try {
      for (let n = 0; n < 200; n++) admit(`after-${n}`);
    } finally {
      names.forEach((k, i) => (proto[k] = saved[i]!));
    }
    assert.equal(memo.size, 50);
    assert.equal(walks, 0);
  });
});

describe('counts keep their one-item selection on the variable', () => {
  // countItems: `&VAR` selections up to 15 are kept per variable and count, with their memo entry.
  const rules = `SecRule &ARGS:a "@eq 1" "id:1,phase:1,pass,log,msg:'a',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule &ARGS:b "@eq 2" "id:2,phase:1,pass,log,msg:'b',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule &ARGS "@ge 17" "id:3,phase:1,pass,log,msg:'many',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"
SecRule &REQUEST_HEADERS:X-A|&REQUEST_HEADERS:X-B "@eq 0" "id:4,phase:1,pass,log,msg:'none',logdata:'%{MATCHED_VAR_NAME}=%{MATCHED_VAR}'"`;
  const many = Array.from({ length: 18 }, (_, i) => `m${i}=1`).join('&');
  const cases: [string, [string, string][], string][] = [
    ['/?a=1', [], '1 ARGS:a=1|4 REQUEST_HEADERS:X-B=0'],
    ['/?a=1&a=2', [['X-B', 'y']], '4 REQUEST_HEADERS:X-A=0'],
    ['/?b=1&b=2', [['X-A', 'y']], '2 ARGS:b=2|4 REQUEST_HEADERS:X-B=0'],
    ['/?a=1&b=2', [['X-A', 'y'], ['X-B', 'y']], '1 ARGS:a=1'],
    ['/?b=1&b=2&a=3', [], '1 ARGS:a=1|2 ARGS:b=2|4 REQUEST_HEADERS:X-B=0'],
    [`/?${many}`, [], '3 ARGS=18|4 REQUEST_HEADERS:X-B=0'],
    [`/?${many}&z=1`, [['X-B', 'y']], '3 ARGS=19|4 REQUEST_HEADERS:X-A=0'],
    ['/', [['X-B', 'y']], '4 REQUEST_HEADERS:X-A=0'],
  ];
  it('each transaction sees its own counts under each variable\'s key, in any order, again and again', () => {
    const waf = wafFromText(rules);
    for (let round = 0; round < 3; round++) {
      for (const [uri, headers, want] of round === 1 ? [...cases].reverse() : cases) {
        const tx = waf.newTransaction({ clientIp: '10.0.0.1', clientPort: 4000, serverPort: 80, method: 'GET', uri, protocol: 'HTTP/1.1', headers: [['Host', 'h'], ...headers] });
        tx.processRequestHeaders();
        const got = tx.matchedRules().map((m) => `${m.id} ${m.logdata}`).join('|');
        assert.equal(got, want, `${uri} ${JSON.stringify(headers)} round ${round}`);
      }
    }
  });
});
