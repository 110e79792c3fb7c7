// Pure SNI table: normalisation, wildcard depth, exact-over-wildcard, priority, overlaps.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildSniTable, isMisdirected, lookupSni, normalizeHostname, type SniEntry } from '../../../plugins/tls/sni.ts';

const entry = (source: string, names: string[], priority = false): SniEntry<string> => ({ source, names, priority, value: source });

describe('normalizeHostname', () => {
  for (const [input, out] of [
    ['Example.COM', 'example.com'],
    ['example.com.', 'example.com'],
    ['*.Example.com', '*.example.com'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['localhost', 'localhost'],
  ] as const) {
    it(`${input} -> ${out}`, () => assert.equal(normalizeHostname(input), out));
  }
  for (const [input, why] of [
    ['', /not a valid DNS name/],
    ['a..b', /not a valid DNS name/],
    ['-a.com', /not a valid DNS name/],
    ['a.*.com', /whole left-most label/],
    ['f*o.com', /whole left-most label/],
    ['*', /whole left-most label|at least two labels/],
    ['*.com', /at least two labels/],
    ['a b.com', /not a valid DNS name/],
  ] as const) {
    it(`rejects "${input}"`, () => assert.throws(() => normalizeHostname(input), why));
  }
});

describe('lookupSni', () => {
  const { table } = buildSniTable(
    [entry('api', ['api.example.com', 'www.example.com']), entry('wild', ['*.example.com']), entry('deep', ['*.b.example.com']), entry('exact-b', ['x.b.example.com'])],
    { allowOverlaps: false },
  );
  const cases: [string | undefined | false, string | undefined][] = [
    ['api.example.com', 'api'],
    ['API.Example.Com.', 'api'],
    ['www.example.com', 'api'], // exact beats the wildcard
    ['other.example.com', 'wild'],
    ['example.com', undefined], // wildcard does not cover the bare domain
    ['a.b.example.com', 'deep'], // one label under *.b.example.com
    ['x.b.example.com', 'exact-b'],
    ['a.c.example.com', undefined], // *.example.com covers one label only
    ['.example.com', undefined],
    ['', undefined],
    [undefined, undefined],
    [false, undefined],
    ['unknown.test', undefined],
  ];
  for (const [name, want] of cases) {
    it(`${JSON.stringify(name)} -> ${want ?? '(default)'}`, () => assert.equal(lookupSni(table, name)?.value, want));
  }
});

describe('overlaps', () => {
  it('the same name in two ordinary entries is an error naming both', () => {
    assert.throws(() => buildSniTable([entry('one', ['a.test']), entry('two', ['A.test'])], { allowOverlaps: false }), /"a\.test" is claimed by one and two.*allow-sni-overlaps/);
  });
  it('identical wildcards overlap too', () => {
    assert.throws(() => buildSniTable([entry('one', ['*.a.test']), entry('two', ['*.a.test'])], { allowOverlaps: false }), /"\*\.a\.test"/);
  });
  it('exact vs wildcard is not an overlap', () => {
    const r = buildSniTable([entry('one', ['x.a.test']), entry('two', ['*.a.test'])], { allowOverlaps: false });
    assert.deepEqual(r.overlaps, []);
  });
  it('allow-sni-overlaps: the first declared wins and the overlap is reported', () => {
    const r = buildSniTable([entry('one', ['a.test']), entry('two', ['a.test', 'b.test']), entry('three', ['a.test'])], { allowOverlaps: true });
    assert.equal(lookupSni(r.table, 'a.test')?.value, 'one');
    assert.equal(lookupSni(r.table, 'b.test')?.value, 'two');
    assert.deepEqual(r.overlaps, [{ name: 'a.test', winner: 'one', losers: ['two', 'three'] }]);
  });
  it('priority-hostnames win silently over ordinary entries, wherever declared', () => {
    const r = buildSniTable([entry('one', ['a.test']), entry('prio', ['a.test'], true)], { allowOverlaps: false });
    assert.equal(lookupSni(r.table, 'a.test')?.value, 'prio');
    assert.deepEqual(r.overlaps, []);
  });
  it('two priority entries for one name still overlap', () => {
    assert.throws(() => buildSniTable([entry('p1', ['a.test'], true), entry('p2', ['a.test'], true), entry('x', ['a.test'])], { allowOverlaps: false }), /p1 and p2/);
  });
  it('a name listed twice in one entry is not an overlap', () => {
    assert.deepEqual(buildSniTable([entry('one', ['a.test', 'A.TEST'])], { allowOverlaps: false }).overlaps, []);
  });
});

describe('isMisdirected (421)', () => {
  // certificates are strings here; what each covers, as X509Certificate.checkHost would say
  const covered: Record<string, RegExp> = { dflt: /^www\.example\.com$/, api: /^api\.example\.com$/, wild: /^[^.]+\.example\.com$/, admin: /^admin\.internal\.test$/ };
  const covers = (cert: string, host: string) => covered[cert]!.test(host);
  const { table } = buildSniTable([entry('api', ['api.example.com']), entry('wild', ['*.example.com']), entry('admin', ['admin.internal.test'])], { allowOverlaps: false });
  const rows: [sni: string | undefined, host: string, misdirected: boolean][] = [
    ['api.example.com', 'api.example.com', false],
    ['api.example.com', 'admin.internal.test', true],
    ['admin.internal.test', 'api.example.com', true],
    ['admin.internal.test', 'www.example.com', true], // the wildcard entry owns www (by name)... and admin does not cover it
    ['foo.example.com', 'api.example.com', false], // the wildcard covers api: coalescing
    ['foo.example.com', 'admin.internal.test', true],
    [undefined, 'www.example.com', false], // default certificate, wildcard-owned name it covers
    [undefined, 'api.example.com', true],
    [undefined, 'nobody.test', false], // owned by nobody
    ['api.example.com', 'nobody.test', false],
    ['unknown.other', 'admin.internal.test', true], // an unknown SNI gets the default
    ['API.Example.COM.', 'api.example.com', false],
  ];
  for (const [sni, host, want] of rows) {
    it(`SNI ${sni ?? '(none)'}, Host ${host}: ${want ? '421' : 'served'}`, () => assert.equal(isMisdirected(table, 'dflt', sni, host, covers), want));
  }
  it('no sni entries: the default serves every host', () => {
    const empty = buildSniTable<string>([], { allowOverlaps: false }).table;
    assert.equal(isMisdirected(empty, 'dflt', 'x.test', 'www.example.com', covers), false);
  });
});
