// sentinel-waf tune, the pure part: audit lines -> proposals -> SecLang that loads.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { exclusionsText, parseAuditLog, proposeExclusions, splitExclusions } from '../../../src/waf/tune/index.ts';

const line = (uri: string, rules: { id: number; var?: string }[], decision = 'block'): string => JSON.stringify({ decision, uri, rules });

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
