// sentinel-waf tune, the pure part: audit lines -> proposals -> SecLang that loads.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';

import { extraRulesText } from '../../../src/waf/extra/index.ts';
import { loadWaf, type Waf } from '../../../src/waf/index.ts';
import { exclusionsText, parseAuditLog, proposeExclusions, splitExclusions } from '../../../src/waf/tune/index.ts';
import { conformanceData, describeNeeding } from '../../helpers/needs.ts';
import { crsDir } from '../waf-regex/crs-rules.ts';

const line = (uri: string, rules: { id: number; var?: string; tags?: string[] }[], decision = 'block'): string => JSON.stringify({ decision, uri, rules });

test('groups by rule, path and target with counts; scoring rules and allowed lines are ignored', () => {
  const log = [
    line('/search?q=a', [{ id: 942100, var: 'ARGS:q' }, { id: 949110, var: 'TX:blocking_inbound_anomaly_score' }]),
    line('/search?q=b', [{ id: 942100, var: 'ARGS:q' }]),
    line('/search', [{ id: 920350, var: 'REQUEST_HEADERS:Host' }], 'detect'),
    line('/upload', [{ id: 921110, var: 'REQUEST_BODY' }]),
    line('/search', [{ id: 942100, var: 'ARGS:q' }], 'allow'),
    'sentinel-waf: not json',
  ].join('\n');
  const proposals = proposeExclusions(parseAuditLog(log));
  assert.deepEqual(proposals, [
    { ruleId: 942100, path: '/search', target: 'ARGS:q', count: 2, paths: 1 },
    { ruleId: 920350, path: '/search', target: 'REQUEST_HEADERS:Host', count: 1, paths: 1 },
    { ruleId: 921110, path: '/upload', count: 1, paths: 1 },
  ]);
  assert.deepEqual(proposeExclusions(parseAuditLog(log), { minCount: 2 }).map((p) => p.ruleId), [942100]);
});

test('a (rule, target) pair on many paths becomes one exclusion everywhere', () => {
  const log = ['/a', '/b', '/c', '/c'].map((p) => line(`${p}?token=x`, [{ id: 942440, var: 'ARGS:token' }])).join('\n');
  assert.deepEqual(proposeExclusions(parseAuditLog(log)), [{ ruleId: 942440, target: 'ARGS:token', count: 4, paths: 3 }]);
});

test('the SecLang text loads and splits into before-CRS ctl rules and after-CRS target updates', () => {
  const text = exclusionsText(
    [
      { ruleId: 942100, path: '/search', target: 'ARGS:q', count: 2, paths: 1 },
      { ruleId: 921110, path: '/up"load', count: 1, paths: 1 },
      { ruleId: 942440, target: 'ARGS:token', count: 4, paths: 3 },
    ],
    { firstId: 10100 },
  );
  assert.match(text, /SecRule REQUEST_FILENAME "@streq \/search" "id:10100,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetById=942100;ARGS:q"/);
  assert.match(text, /SecRule REQUEST_FILENAME "@streq \/up\\"load" "id:10101,phase:1,pass,nolog,t:none,ctl:ruleRemoveById=921110"/);
  assert.match(text, /SecRuleUpdateTargetById 942440 "!ARGS:token"/);
  const { before, after } = splitExclusions(text, 'exclusions.conf');
  assert.equal(before.split('\n').length, 2);
  assert.match(after, /^SecRuleUpdateTargetById 942440/);
});

// Session 31 (wafaudit31), session 30's open item: with the `hpp` set on, an argument excluded
// from a CRS SQLi / XSS rule still reached 990131 / 990132 through ARGS_JOINED when repeated.
describe('the hpp set: ARGS_JOINED beside ARGS', () => {
  const sqli = (v: string): { id: number; var: string; tags: string[] } => ({ id: 942100, var: v, tags: ['attack-sqli', 'paranoia-level/1'] });
  const xss = (v: string): { id: number; var: string; tags: string[] } => ({ id: 941100, var: v, tags: ['attack-xss', 'paranoia-level/1'] });

  test('an ARGS exclusion of a SQLi or XSS rule gets its joined twin (990131 / 990132) when hpp is on', () => {
    const log = [
      line('/search?q=a', [sqli('ARGS:q')]),
      line('/search?q=b', [sqli('ARGS_GET:q'), xss('ARGS:q')]),
      line('/tags', [sqli('ARGS:t[]')]),
      line('/api', [sqli('ARGS:json.ids.3')]),
      line('/search', [{ id: 932160, var: 'ARGS:cmd', tags: ['attack-rce'] }]),
      line('/search', [sqli('REQUEST_COOKIES:c'), sqli('ARGS_NAMES:q')]),
    ].join('\n');
    const without = proposeExclusions(parseAuditLog(log));
    assert.ok(!without.some((p) => p.target?.startsWith('ARGS_JOINED')), 'nothing joined with the set off');
    const got = proposeExclusions(parseAuditLog(log), { hpp: true }).filter((p) => p.target?.startsWith('ARGS_JOINED'));
    assert.deepEqual(
      got.map((p) => `${p.ruleId} ${p.path} ${p.target} ${p.count} ${p.besides!.join('+')}`),
      ['990131 /search ARGS_JOINED:q 2 942100', '990131 /tags ARGS_JOINED:t 1 942100', '990131 /api ARGS_JOINED:json.ids 1 942100', '990132 /search ARGS_JOINED:q 1 941100'],
    );
  });

  test("the set's own hits are keyed exclusions (not the whole rule), and turn the twins on", () => {
    const log = [
      line('/p?q=1&q=2', [{ id: 990131, var: 'ARGS_JOINED:q', tags: ['attack-sqli'] }, sqli('ARGS:q')]),
      line('/p?q=1&q=2', [{ id: 990131, var: 'ARGS_JOINED:q', tags: ['attack-sqli'] }]),
    ].join('\n');
    const got = proposeExclusions(parseAuditLog(log));
    assert.deepEqual(got, [
      { ruleId: 990131, path: '/p', target: 'ARGS_JOINED:q', count: 2, paths: 1, besides: [942100] },
      { ruleId: 942100, path: '/p', target: 'ARGS:q', count: 1, paths: 1 },
    ]);
    const text = exclusionsText(got);
    assert.match(text, /ctl:ruleRemoveTargetById=990131;ARGS_JOINED:q"/);
    assert.match(text, /# rule 990131 on ARGS_JOINED:q at \/p: 2 hits \(the hpp set's joined values, beside 942100 on the argument\)/);
  });

  test('everywhere: SecRuleUpdateTargetById on the joined target too', () => {
    const log = ['/a', '/b', '/c'].map((p) => line(`${p}?token=x`, [sqli('ARGS:token')])).join('\n');
    const text = exclusionsText(proposeExclusions(parseAuditLog(log), { hpp: true }));
    assert.match(text, /SecRuleUpdateTargetById 942100 "!ARGS:token"/);
    assert.match(text, /SecRuleUpdateTargetById 990131 "!ARGS_JOINED:token"/);
  });

  // The workflow on the engine: the audit lines the agent writes for a field that holds SQL-looking
  // text, tuned, then a repeated value of that field passes on its path and is refused elsewhere.
  describeNeeding(conformanceData('crs').missing, 'tuned exclusions with the hpp set (CRS PL1)', {}, () => {
    const build = (exclusions: string): Waf => {
      const { before, after } = splitExclusions(exclusions, 'exclusions.conf');
      return loadWaf({ mode: 'blocking', paranoiaLevel: 1, crsDir, directives: `${extraRulesText(['hpp'], join(crsDir, 'rules'))}${before}`, afterDirectives: after });
    };
    const run = (waf: Waf, uri: string): { blocked: boolean; line: string } => {
      const tx = waf.newTransaction({ clientIp: '192.0.2.7', clientPort: 40000, serverPort: 443, method: 'GET', uri, protocol: 'HTTP/1.1', headers: [['Host', 'shop.example'], ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0'], ['Accept', 'text/html']] });
      const it = tx.processRequestHeaders() ?? tx.processRequestBody();
      // as the agent writes its audit line (service.ts): the first matched variable, the attack tags
      const rules = tx.matchedRules().map((m) => ({ id: m.id, ...(m.matched[0] ? { var: m.matched[0].variable } : {}), tags: m.tags.filter((t) => t.startsWith('attack-')) }));
      return { blocked: it !== undefined, line: JSON.stringify({ decision: it ? 'block' : 'allow', uri, rules }) };
    };
    const twice = `/notes?q=${encodeURIComponent("1' OR '1'='1")}&q=x`;

    test('a tuned field repeated passes on its path, not elsewhere; an audit log with hpp hits', () => {
      const base = build('');
      const seen = [run(base, `/notes?q=${encodeURIComponent("1' OR '1'='1")}`), run(base, twice)];
      assert.ok(seen.every((r) => r.blocked), 'both refused before tuning');
      assert.match(seen[1]!.line, /"id":990131,"var":"ARGS_JOINED:q"/);
      const text = exclusionsText(proposeExclusions(parseAuditLog(seen.map((r) => r.line).join('\n'))));
      assert.match(text, /ctl:ruleRemoveTargetById=990131;ARGS_JOINED:q/);
      const tuned = build(text);
      assert.equal(run(tuned, twice).blocked, false, 'the tuned field, repeated, passes');
      assert.equal(run(tuned, twice.replace('/notes', '/other')).blocked, true, 'the same on another path is refused');
      assert.equal(run(tuned, twice.replaceAll('q=', 'r=')).blocked, true, 'another field on the path is refused');
    });

    test('from ARGS hits alone (no hpp hit in the log), the twin comes with --extra-rules hpp', () => {
      const base = build('');
      const lines = [run(base, `/notes?q=${encodeURIComponent("1' OR '1'='1")}`)].map((r) => r.line).join('\n');
      const plain = build(exclusionsText(proposeExclusions(parseAuditLog(lines))));
      assert.equal(run(plain, twice).blocked, true, 'without the twin the repeated field is refused by 990131 (the open item)');
      const tuned = build(exclusionsText(proposeExclusions(parseAuditLog(lines), { hpp: true })));
      assert.equal(run(tuned, twice).blocked, false, 'with it the repeated field passes');
      assert.equal(run(tuned, twice.replaceAll('q=', 'r=')).blocked, true, 'another field on the path is refused');
    });
  });
});
