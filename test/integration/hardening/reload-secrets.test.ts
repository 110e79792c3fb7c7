// A failed reload's error (session 14 audit): a KDL syntax error quotes the source line under a
// caret, and that line is where an operator's mistake is, often a secret (a password with an
// unescaped quote, an unterminated token). The message went whole into the status page's reload
// history, the `reload_failed` audit event (shipped to syslog) and the error log: "no secret in a
// dump or a log line" (docs/core.md) did not hold. Outside the CLI the error now names the file,
// line, column and what is wrong, without the line itself; URL passwords are redacted.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { ConfigError } from '../../../src/config/diagnostics.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-reload-secrets-'));
const file = join(dir, 'sentinel.kdl');
const audit = join(dir, 'audit.log');
let gw: Gateway | undefined;
after(async () => {
  await gw?.close();
});

const good = `
listeners { listener "admin" { address "127.0.0.1:0" } }
routes {
  route "status-page" { matches { path-prefix "/_/status" }; builtin-handler "status-page" }
}
observability { logging { level "error"; audit-log { file "${audit}" } } }
`;

test('a reload that fails on a line holding a secret does not show the line', async () => {
  writeFileSync(file, good);
  gw = await startGateway({ configPath: file, logLevel: 'silent' });
  const broken = [
    // an unterminated string: the rest of the line is quoted under the caret
    good.replace('routes {', 'rate-limits { redis-password "hunter2-unterminated\n}\nroutes {'),
    // an unescaped quote inside a value
    good.replace('routes {', 'agents { agent "a" { unix-socket "/tmp/a"; config { api-key "hunter2"quoted" } } }\nroutes {'),
    // a URL with a password on a line with a syntax error
    good.replace('routes {', 'rate-limits { redis-url "redis://app:hunter2-url@127.0.0.1:6379" }}\nroutes {'),
  ];
  for (const text of broken) {
    writeFileSync(file, text);
    await assert.rejects(gw.reload(), (err: unknown) => err instanceof ConfigError && /hunter2/.test(err.message), 'the thrown error (the CLI\'s) still quotes the line');
  }
  const r = await rawRequest(gw.address('admin').port, http1('GET', '/_/status?format=json', ['Host: 127.0.0.1', 'Connection: close']));
  const reloads = (JSON.parse(r.body) as { reloads: { result: string; error?: string }[] }).reloads.filter((x) => x.result === 'failure');
  assert.equal(reloads.length, 3);
  for (const x of reloads) {
    assert.doesNotMatch(x.error!, /hunter2/, x.error);
    assert.match(x.error!, /sentinel\.kdl:\d+:\d+: KDL syntax error/, 'where and what stay');
  }
  await gw.close();
  gw = undefined;
  const events = (existsSync(audit) ? readFileSync(audit, 'utf8') : '').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  const failed = events.filter((e) => e.action === 'reload_failed');
  assert.equal(failed.length, 3);
  for (const e of failed) assert.doesNotMatch(String(e.reason), /hunter2/);
});
