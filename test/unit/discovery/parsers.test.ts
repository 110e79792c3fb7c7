// Pure parts of the discovery sources: targets files, SRV selection (RFC 2782).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SrvRecord } from 'node:dns';
import { parseTargetsFile } from '../../../src/upstream/discovery/file.ts';
import { selectSrv } from '../../../src/upstream/discovery/dns-srv.ts';

const fileCases: [string, string, string[] | RegExp][] = [
  ['one per line', '10.0.0.1:80\n10.0.0.2:8080\n', ['10.0.0.1:80/10.0.0.1/80/1', '10.0.0.2:8080/10.0.0.2/8080/1']],
  ['comments, blank lines, CRLF, indentation', '# backends\r\n\r\n  10.0.0.1:80   # primary\r\n\n', ['10.0.0.1:80/10.0.0.1/80/1']],
  ['weights: bare and weight=', 'a.internal:80 3\nb.internal:80 weight=0\n', ['a.internal:80/a.internal/80/3', 'b.internal:80/b.internal/80/0']],
  ['IPv6 needs brackets', '[::1]:9000\n', ['[::1]:9000/::1/9000/1']],
  ['empty file', '', []],
  ['no port', '10.0.0.1\n', /line 1: invalid target address "10\.0\.0\.1"/],
  ['bad port on line 2', '10.0.0.1:80\n10.0.0.2:99999\n', /line 2: invalid port/],
  ['bad weight', '10.0.0.1:80 heavy\n', /line 1: invalid weight "heavy"/],
  ['three fields', '10.0.0.1:80 1 2\n', /line 1: expected "host:port \[weight\]"/],
  ['unbracketed IPv6', '::1:80\n', /IPv6 addresses need brackets/],
];

for (const [name, text, want] of fileCases) {
  test(`parseTargetsFile: ${name}`, () => {
    if (want instanceof RegExp) assert.throws(() => parseTargetsFile(text), want);
    else assert.deepEqual(parseTargetsFile(text).map((t) => `${t.address}/${t.host}/${t.port}/${t.weight}`), want);
  });
}

const srv = (name: string, port: number, priority: number, weight: number): SrvRecord => ({ name, port, priority, weight });

const srvCases: [string, SrvRecord[], string[]][] = [
  ['lowest priority only', [srv('a.x', 80, 10, 5), srv('b.x', 81, 20, 5), srv('c.x', 82, 10, 1)], ['a.x:80/5', 'c.x:82/1']],
  ['weight 0 becomes 1', [srv('a.x', 80, 0, 0), srv('b.x', 80, 0, 3)], ['a.x:80/1', 'b.x:80/3']],
  ['"." means not available', [srv('.', 0, 0, 0)], []],
  ['empty name (as node reports ".") means not available', [srv('', 0, 0, 0)], []],
  ['a "." record does not hide real ones', [srv('.', 0, 0, 0), srv('a.x', 80, 5, 1)], ['a.x:80/1']],
  ['trailing dot removed', [srv('a.x.', 443, 1, 1)], ['a.x:443/1']],
  ['no records', [], []],
];

for (const [name, records, want] of srvCases) {
  test(`selectSrv: ${name}`, () => {
    assert.deepEqual(selectSrv(records).map((t) => `${t.host}:${t.port}/${t.weight}`), want);
  });
}
