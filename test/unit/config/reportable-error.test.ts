import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, reportableError } from '../../../src/config/diagnostics.ts';
import { loadConfigText } from '../../../src/config/load.ts';

function errorOf(text: string): unknown {
  try {
    loadConfigText(text, { name: '/etc/sentinel/sentinel.kdl' });
  } catch (err) {
    return err;
  }
  throw new Error('expected a config error');
}

test('reportableError: where and what, never the quoted line or a URL password', () => {
  const table: [string, RegExp][] = [
    ['system { token "hunter2\n}', /^invalid configuration \(1 error\(s\)\):\n {2}error: \/etc\/sentinel\/sentinel\.kdl:1:24: KDL syntax error: a quoted string cannot span lines/],
    ['agents { agent "a" { config { api-key "hunter2"x" } } }', /sentinel\.kdl:1:48: KDL syntax error: expected whitespace/],
    ['rate-limits { redis-url "redis://u:hunter2@h:6379" }}', /KDL syntax error: unexpected '}'/],
  ];
  for (const [text, want] of table) {
    const err = errorOf(text);
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /hunter2/, 'the CLI\'s message quotes the line');
    const out = reportableError(err);
    assert.doesNotMatch(out, /hunter2|\n {2}\d+ \|/, out);
    assert.match(out, want);
  }
  assert.equal(reportableError(new Error('connect to redis://app:hunter2@h:6379 failed')), 'connect to redis://app:<redacted>@h:6379 failed');
  assert.equal(reportableError('plain'), 'plain');
});
