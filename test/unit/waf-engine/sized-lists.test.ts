// A transaction's lists made at the size the last one reached (session 26): the TX key order,
// the matched rules' records and the group summaries' fresh items are written by index below a
// count, in arrays whose length is a hint from earlier transactions. Whatever the hint (larger
// or smaller than what this transaction puts, set by a transaction still open), each list reads
// exactly what this transaction put, in order: nothing past its count, nothing of another's.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { TxCollection } from '../../../src/waf/engine/collections.ts';
import { txSlot } from '../../../src/waf/engine/rule.ts';
import { wafFromText } from '../../../src/waf/index.ts';

/** A reference for TX's order: a Map keeps insertion order, a deleted key that comes back goes last. */
class Model {
  readonly map = new Map<string, string>();
  set(key: string, value: string): void {
    this.map.set(key.toLowerCase(), value);
  }
  delete(key: string): void {
    this.map.delete(key.toLowerCase());
  }
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function same(tx: TxCollection, m: Model, what: string): void {
  assert.deepEqual(
    tx.items.map((it) => [it.key.toLowerCase(), it.value]),
    [...m.map],
    what,
  );
  assert.deepEqual(
    tx.rawEntries().map(([k, one]) => [k, one[0]!.value]),
    [...m.map],
    `${what} (raw entries)`,
  );
}

describe('TX order made at a hinted size', () => {
  // Slotted keys (literal setvar keys have process-wide slots) and run-time keys (a Map) mixed.
  const slotted = Array.from({ length: 12 }, (_, i) => `sized_slot_${i}`);
  for (const k of slotted) txSlot(k);
  const keys = [...slotted, ...Array.from({ length: 12 }, (_, i) => `Sized_Dyn_${i}`)];

  it('random puts, updates and deletes read back in order, for collections open at once of other sizes', () => {
    const r = rng(26);
    for (let round = 0; round < 60; round++) {
      // A large collection raises the hint, a small one lowers it; `a` and `b` are open at once.
      const a = new TxCollection();
      const ma = new Model();
      const big = new TxCollection();
      for (let i = 0; i < 30 + (round % 5) * 40; i++) big.set(`big_${round}_${i}`, String(i));
      const b = new TxCollection();
      const mb = new Model();
      const small = new TxCollection();
      small.set('only', '1');
      for (let op = 0; op < 80; op++) {
        const [tx, m] = r() < 0.5 ? [a, ma] : [b, mb];
        const key = keys[Math.floor(r() * keys.length)]!;
        if (r() < 0.3) {
          tx.delete(key);
          m.delete(key);
        } else {
          const v = `${round}.${op}`;
          tx.set(key, v);
          m.set(key, v);
        }
      }
      same(a, ma, `round ${round}, a`);
      same(b, mb, `round ${round}, b`);
      assert.deepEqual(small.items.map((it) => it.value), ['1']);
    }
  });

  it('matching() and resetTo() see only the present keys', () => {
    const tx = new TxCollection();
    const m = new Model();
    for (const k of keys) {
      tx.set(k, k);
      m.set(k, k);
    }
    const kept = new Map(tx.rawEntries().slice(0, 5));
    for (const k of keys.slice(3)) {
      tx.delete(k);
      m.delete(k);
    }
    const sel = { name: 'TX', keyRegex: /^sized_/, exclude: false, count: false } as unknown as Parameters<TxCollection['matching']>[0];
    assert.deepEqual(tx.matching(sel).map((it) => it.key), keys.slice(0, 3));
    // Deleted keys past the count must not come back: resetTo reads only what is present.
    tx.resetTo(kept);
    assert.deepEqual(tx.items.map((it) => it.value), keys.slice(0, 5));
    tx.set('after_reset', 'x');
    assert.deepEqual(tx.items.map((it) => it.value), [...keys.slice(0, 5), 'x']);
  });
});

describe('matched rules made at a hinted size', () => {
  // Rule n matches when ARGS:n is present: a transaction matches as many rules as it has arguments.
  const text = [
    'SecRuleEngine DetectionOnly',
    ...Array.from({ length: 40 }, (_, i) => `SecRule ARGS:a${i} "@streq x" "id:${i + 1},phase:${1 + (i % 2)},pass,${i % 3 === 0 ? 'nolog' : 'log'},severity:${(i % 5) + 1},msg:'m${i}'"`),
    'SecRule HIGHEST_SEVERITY "@lt 255" "id:100,phase:2,pass,log,setvar:tx.highest=%{HIGHEST_SEVERITY}"',
  ].join('\n');
  const waf = wafFromText(text);
  const open = (n: number) => {
    const q = Array.from({ length: n }, (_, i) => `a${i}=x`).join('&');
    return waf.newTransaction({ clientIp: '192.0.2.1', clientPort: 1, serverPort: 80, method: 'GET', uri: `/p?${q}`, protocol: 'HTTP/1.1', headers: [] });
  };
  const want = (n: number, all: boolean): number[] => {
    const ids = Array.from({ length: n }, (_, i) => i).filter((i) => all || i % 3 !== 0);
    // phase 1 first (even indexes), then phase 2 (odd ones, then 100 when anything matched)
    const ordered = [...ids.filter((i) => i % 2 === 0), ...ids.filter((i) => i % 2 === 1)].map((i) => i + 1);
    return n > 0 ? [...ordered, 100] : ordered;
  };

  it('each of several transactions open at once keeps its own records, whatever the last one left', () => {
    for (const sizes of [
      [40, 3, 0, 17],
      [0, 40, 1, 2],
      [5, 5, 39, 40],
    ]) {
      const txs = sizes.map((n) => open(n));
      // Interleaved: every phase 1, then every phase 2 in reverse order.
      for (const tx of txs) tx.processRequestHeaders();
      for (const tx of [...txs].reverse()) tx.processRequestBody();
      sizes.forEach((n, k) => {
        const tx = txs[k]!;
        assert.deepEqual(tx.allMatchedRules().map((m) => m.id), want(n, true), `all records, ${n} arguments`);
        assert.deepEqual(tx.matchedRules().map((m) => m.id), want(n, false), `logged records, ${n} arguments`);
        // HIGHEST_SEVERITY reads the records: only this transaction's.
        const sev = Array.from({ length: n }, (_, i) => (i % 5) + 1);
        assert.equal(tx.getTx('highest'), n > 0 ? String(Math.min(...sev)) : undefined, `HIGHEST_SEVERITY, ${n} arguments`);
      });
      for (const tx of txs) tx.processLogging();
    }
  });
});
