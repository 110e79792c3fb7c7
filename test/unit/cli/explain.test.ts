// Golden tests for `sentinel explain`, run through the CLI entry (bin/sentinel.mjs: dist/ when
// built and fresh, else the sources) as a child process: test/fixtures/explain/cases.json lists each case (arguments, exit code); its
// expected output is test/fixtures/explain/golden/NAME.txt (stdout, or stderr for exit 2).
// UPDATE_GOLDEN=1 rewrites the golden files from the current output (review the diff).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../../src/config/load.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import { requestMatchInput, matchRoute } from '../../../src/routing/match.ts';
import { FEATURES } from '../../../src/features.ts';
import { explain } from '../../../src/cli/explain/report.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const dir = 'test/fixtures/explain';
const cases = JSON.parse(readFileSync(join(root, dir, 'cases.json'), 'utf8')) as { name: string; args: string[]; code: number; matched?: string }[];

function runCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(root, 'bin', 'sentinel.mjs'), 'explain', ...args], { cwd: root, env: { ...process.env, SENTINEL_CONFIG: '' } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

for (const c of cases) {
  test(`sentinel explain golden: ${c.name}`, async () => {
    const args = c.args.map((a, i) => (c.args[i - 1] === '-c' ? `${dir}/${a}` : a));
    const r = await runCli(args);
    assert.equal(r.code, c.code, `exit code; stderr: ${r.stderr}`);
    const out = c.code === 2 ? r.stderr : r.stdout;
    const golden = join(root, dir, 'golden', `${c.name}.txt`);
    if (process.env.UPDATE_GOLDEN) {
      mkdirSync(join(root, dir, 'golden'), { recursive: true });
      writeFileSync(golden, out);
    }
    assert.ok(existsSync(golden), `missing ${golden} (run with UPDATE_GOLDEN=1 and review it)`);
    assert.equal(out, readFileSync(golden, 'utf8'));
    if (args.includes('--json')) assert.equal(JSON.parse(out).matched, c.matched ?? 'api-v2');
  });
}

test('explain shows websocket-inspection only where a filter is shown the frames (--json form)', () => {
  const config = loadConfigFile(join(root, dir, 'websocket.kdl'), { validators: pluginValidators });
  const inspection = (path: string) => explain(config, FEATURES, { method: 'GET', target: path, headers: [['Upgrade', 'websocket']] }, 'websocket.kdl').route?.websocket_inspection;
  assert.deepEqual(inspection('/feed'), { active: true, filters: ['ws-guard'], whole_messages: true, max_message_bytes: 65536, max_frame_bytes: 65536, max_fragments: 64 });
  assert.deepEqual(inspection('/ticks'), { active: true, filters: ['ws-guard'], whole_messages: false, max_message_bytes: null, max_frame_bytes: 1048576, max_fragments: 1024 }, 'the agent not subscribed is not listed');
  assert.deepEqual(inspection('/raw'), { active: false, reason: 'no filter on the route subscribes to websocket_frame (frames are relayed raw, compression offers pass)' }, 'its only agent sees request_headers: no effect');
  assert.equal(inspection('/chat'), undefined, 'no websocket-inspection: nothing to show');
});

test('explain agrees with the real matcher on every route of the fixture, for a table of requests', () => {
  const config = loadConfigFile(join(root, dir, 'routes.kdl'), { validators: pluginValidators });
  const requests: [string, string, string, Record<string, string>][] = [
    ['GET', '/api/v2/x', 'api.example.com', {}],
    ['GET', '/api/v2/x', 'api.example.com', { 'x-beta': '1' }],
    ['GET', '/api/v2/x', 'www.example.com', {}],
    ['GET', '/api/v1', 'other.test', {}],
    ['GET', '/search?q=1', 'a.test', {}],
    ['HEAD', '/search?q', 'a.test', {}],
    ['DELETE', '/search?q=1', 'a.test', {}],
    ['GET', '/apix', 'a.test', {}],
    ['GET', '/', 'example.com', {}],
  ];
  for (const listener of config.listeners) {
    for (const [method, target, host, headers] of requests) {
      const report = explain(config, FEATURES, { method, target, headers: [['Host', host], ...Object.entries(headers)], listener: listener.id }, 'routes.kdl');
      const [path, query = ''] = target.split('?');
      const expected = matchRoute(config.routesByListener.get(listener.id)!, requestMatchInput(method, path!, query, host, { host, ...headers }));
      assert.equal(report.matched, expected?.id ?? null, `${listener.id} ${method} ${host}${target}`);
      // every candidate before the match names the condition that failed, and that condition really fails
      for (const cand of report.candidates) {
        if (cand.status === 'failed') assert.ok(cand.failed && cand.failed.condition !== 'listener');
        if (cand.status === 'other-listener') assert.equal(cand.failed?.condition, 'listener');
      }
    }
  }
});

test('explain reports the ambiguous_query_param 400 exactly when the real matcher reads an ambiguous parameter', () => {
  const config = loadConfigFile(join(root, dir, 'routes.kdl'), { validators: pluginValidators });
  const requests: [string, string, Record<string, string>][] = [
    ['/search?q=kdl&q=yaml', 'a.test', {}],
    ['/search?q=kdl&q=kdl', 'a.test', {}],
    ['/search?page=2;q=kdl', 'a.test', {}],
    ['/search?q=kdl;page=2', 'a.test', {}],
    ['/search?q=kdl', 'a.test', {}],
    // an earlier route matches: the search route's query condition is never read, nothing is refused
    ['/api/v2/x?q=a&q=b', 'api.example.com', { 'x-beta': '1' }],
  ];
  for (const [target, host, headers] of requests) {
    const report = explain(config, FEATURES, { method: 'GET', target, headers: [['Host', host], ...Object.entries(headers)], listener: 'public' }, 'routes.kdl');
    const [path, query = ''] = target.split('?');
    const input = requestMatchInput('GET', path!, query, host, { host, ...headers });
    matchRoute(config.routesByListener.get('public')!, input);
    assert.equal(report.ambiguous_query?.param ?? null, input.ambiguousQuery ?? null, target);
  }
});
