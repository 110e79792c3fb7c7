import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  loadDirectives,
  parseActions,
  parseOperator,
  parseText,
  parseVariables,
  SecLangError,
} from '../../../src/waf/seclang/parser.ts';

const pos = { file: 't.conf', line: 1 };

describe('seclang parseText', () => {
  it('joins continuation lines and keeps the first line number', () => {
    const ds = parseText('# comment\n\nSecRule ARGS "@rx a b" \\\n    "id:1,\\\n    pass"\nSecMarker END', 'x.conf');
    assert.equal(ds.length, 2);
    assert.deepEqual(ds[0]!.args, ['ARGS', '@rx a b', 'id:1,    pass']);
    assert.equal(ds[0]!.line, 3);
    assert.equal(ds[1]!.name, 'SecMarker');
    assert.deepEqual(ds[1]!.args, ['END']);
  });

  it('unescapes \\" inside double quotes but keeps other backslashes', () => {
    const [d] = parseText('SecRule ARGS "@rx \\"a\\d\\"" "id:1"', 'x.conf');
    assert.equal(d!.args[1], '@rx "a\\d"');
  });

  it('reports unterminated quotes with file, line and text', () => {
    assert.throws(
      () => parseText('\nSecRule ARGS "@rx a', 'bad.conf'),
      (e: unknown) => e instanceof SecLangError && e.pos.line === 2 && e.message.startsWith('bad.conf:2: unterminated double quote'),
    );
  });
});

describe('seclang Include', () => {
  it('expands globs in name order, relative to the including file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'seclang-'));
    try {
      writeFileSync(join(dir, 'b.conf'), 'SecMarker B');
      writeFileSync(join(dir, 'a.conf'), 'SecMarker A');
      writeFileSync(join(dir, 'c.txt'), 'SecMarker C');
      const ds = loadDirectives('Include *.conf\nSecMarker Z', 'main', dir);
      assert.deepEqual(ds.map((d) => d.args[0]), ['A', 'B', 'Z']);
      assert.equal(ds[0]!.file, join(dir, 'a.conf'));
      assert.throws(() => loadDirectives('Include nothing-*.conf', 'main', dir), /Include matched no file/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('seclang variables', () => {
  it('parses counts, exclusions, literal and regex keys', () => {
    const vs = parseVariables("ARGS|!ARGS:foo|&TX:x|REQUEST_HEADERS:/^x-(a|b)$/|REQUEST_COOKIES:'/weird'|xml:/*", pos);
    assert.deepEqual(vs, [
      { name: 'ARGS', count: false, exclude: false },
      { name: 'ARGS', key: 'foo', count: false, exclude: true },
      { name: 'TX', key: 'x', count: true, exclude: false },
      { name: 'REQUEST_HEADERS', keyRegex: '^x-(a|b)$', count: false, exclude: false },
      { name: 'REQUEST_COOKIES', key: '/weird', count: false, exclude: false },
      { name: 'XML', key: '/*', count: false, exclude: false },
    ]);
  });

  it('rejects bad names', () => {
    assert.throws(() => parseVariables('ARGS||TX', pos), /empty variable/);
    assert.throws(() => parseVariables('AR-GS', pos), /invalid variable name/);
  });
});

describe('seclang operator', () => {
  const cases: [string, { name: string; param: string; negated: boolean }][] = [
    ['@rx ^a b$', { name: 'rx', param: '^a b$', negated: false }],
    ['!@eq 0', { name: 'eq', param: '0', negated: true }],
    ['^bare$', { name: 'rx', param: '^bare$', negated: false }],
    ['@unconditionalMatch', { name: 'unconditionalMatch', param: '', negated: false }],
  ];
  for (const [text, want] of cases) it(text, () => assert.deepEqual(parseOperator(text, pos), want));
});

describe('seclang actions', () => {
  it('groups single-quoted values with commas and escaped quotes', () => {
    assert.deepEqual(parseActions("id:1, phase:2,msg:'a, b \\'c\\'',t:none,setvar:'tx.x=+%{tx.y}',nolog", pos), [
      { name: 'id', value: '1' },
      { name: 'phase', value: '2' },
      { name: 'msg', value: "a, b 'c'" },
      { name: 't', value: 'none' },
      { name: 'setvar', value: 'tx.x=+%{tx.y}' },
      { name: 'nolog', value: '' },
    ]);
  });

  it('keeps ctl values whole', () => {
    assert.deepEqual(parseActions('ctl:ruleRemoveTargetById=942100;ARGS:pwd', pos), [
      { name: 'ctl', value: 'ruleRemoveTargetById=942100;ARGS:pwd' },
    ]);
  });

  it('reports an unterminated quote', () => {
    assert.throws(() => parseActions("msg:'abc", pos), /unterminated quote in action "msg"/);
  });
});
