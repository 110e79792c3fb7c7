import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { ConfigError, configFromCli, configFromJson, defaultConfig, parseExclusion } from '../../../src/waf/agent/config.ts';

describe('sentinel-waf CLI and env', () => {
  it('env first, flags override', () => {
    const c = configFromCli(
      ['--paranoia-level=3', '--detect-only', '--disable-rules', '920350, 942100-942110', '--exclusion', 'path=/api;host=a.test:942100,tag=attack-xss', '--exclude-paths', '/health,/metrics'],
      { SENTINEL_WAF_SOCKET: '/tmp/w.sock', SENTINEL_WAF_PARANOIA_LEVEL: '2', SENTINEL_WAF_MODE: 'blocking' },
    );
    assert.equal(c.socketPath, '/tmp/w.sock');
    assert.equal(c.paranoiaLevel, 3);
    assert.equal(c.mode, 'detection');
    assert.deepEqual(c.disabledRuleIds, ['920350', '942100-942110']);
    assert.deepEqual(c.exclusions, [{ path: '/api', host: 'a.test', ruleIds: ['942100'], tags: ['attack-xss'] }]);
    assert.deepEqual(c.excludePaths, ['/health', '/metrics']);
  });

  it('--workers: 0 (one per CPU) by default, from the env, the flag wins', () => {
    assert.equal(configFromCli([], {}).workers, 0);
    assert.equal(configFromCli([], { SENTINEL_WAF_WORKERS: '3' }).workers, 3);
    assert.equal(configFromCli(['--workers', '1'], { SENTINEL_WAF_WORKERS: '3' }).workers, 1);
    assert.equal(configFromCli(['--workers=4'], {}).workers, 4);
  });

  it('request-side-only: off by default; the flag, the env and the Configure key turn it on', () => {
    assert.equal(configFromCli([], {}).requestSideOnly, false);
    assert.equal(configFromCli(['--request-side-only'], {}).requestSideOnly, true);
    assert.equal(configFromCli([], { SENTINEL_WAF_REQUEST_SIDE_ONLY: 'true' }).requestSideOnly, true);
    assert.equal(configFromJson(defaultConfig(), { 'request-side-only': true }).requestSideOnly, true);
    assert.equal(configFromJson({ ...defaultConfig(), requestSideOnly: true }, { 'request-side-only': 'false' }).requestSideOnly, false);
    assert.throws(() => configFromJson(defaultConfig(), { 'request-side-only': 'sometimes' }), /request-side-only must be true or false/);
  });

  const bad: [string[], RegExp][] = [
    [['--workers', '-1'], /--workers must be an integer in 0\.\.1024/],
    [['--workers', 'many'], /--workers must be an integer/],
    [['--paranoia-level', '5'], /paranoia-level must be an integer in 1\.\.4/],
    [['--mode', 'maybe'], /mode must be "blocking" or "detection"/],
    [['--socket'], /--socket needs a value/],
    [['--frobnicate'], /unknown flag --frobnicate/],
    [['--exclusion', 'path=/x:'], /lists no rule/],
    [['--exclusion', 'where=/x:1'], /exclusion scope must be/],
  ];
  for (const [argv, re] of bad) {
    it(`rejects ${argv.join(' ')}`, () => assert.throws(() => configFromCli(argv, {}), (e: unknown) => e instanceof ConfigError && re.test(e.message)));
  }

  it('parses a bare id list as a global-scope exclusion', () => {
    assert.deepEqual(parseExclusion('942100,942200'), { ruleIds: ['942100', '942200'], tags: [] });
  });
});

describe('sentinel-waf Configure JSON', () => {
  it('merges kebab-case keys over the base', () => {
    const c = configFromJson(defaultConfig(), {
      'paranoia-level': 2,
      'block-mode': false,
      'anomaly-threshold': 10,
      exclusions: [{ 'rule-ids': ['920350'], path: '/upload' }],
      'response-inspection': true,
    });
    assert.equal(c.paranoiaLevel, 2);
    assert.equal(c.mode, 'detection');
    assert.equal(c.inboundThreshold, 10);
    assert.deepEqual(c.exclusions, [{ ruleIds: ['920350'], tags: [], path: '/upload' }]);
    assert.equal(c.inspectResponseBody, true);
  });

  it('a single string is a list of one (a KDL config node with one value)', () => {
    const c = configFromJson(defaultConfig(), { 'exclude-paths': '/health', 'disabled-rules': '920350' });
    assert.deepEqual(c.excludePaths, ['/health']);
    assert.deepEqual(c.disabledRuleIds, ['920350']);
  });

  it('null keeps the base; unknown keys and bad values are errors', () => {
    const base = defaultConfig();
    assert.equal(configFromJson(base, null), base);
    assert.throws(() => configFromJson(base, { 'paranoia-levle': 2 }), /unknown configuration key "paranoia-levle"/);
    assert.throws(() => configFromJson(base, { 'paranoia-level': 0 }), /1\.\.4/);
    assert.throws(() => configFromJson(base, { exclusions: [{ path: '/x' }] }), /lists no rule-ids or tags/);
    assert.throws(() => configFromJson(base, []), /must be a JSON object/);
  });
});
