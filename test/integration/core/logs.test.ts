// Access log lines (JSON and combined) with the reference's fields; audit events for reloads.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { until, UNTIL_MS } from '../../helpers/until.ts';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { formatAccess, clfDate } from '../../../src/logging/access-log.ts';

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups) await c();
});

/** The file's text once `pred` holds; after the bound, what is there (the caller's assertion shows it). */
async function waitFor(file: string, pred: (s: string) => boolean): Promise<string> {
  const read = () => (existsSync(file) ? readFileSync(file, 'utf8') : '');
  await until(`${file} to hold the expected lines`, () => pred(read()), UNTIL_MS, 50).catch(() => undefined);
  return read();
}

test('JSON access log with the reference fields, and audit config_change events', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-logs-'));
  const access = join(dir, 'access.log');
  const audit = join(dir, 'audit.log');
  const up = await startUpstream();
  cleanups.push(() => up.close());
  const cfg = simpleConfig(up.address, { top: `observability { logging { level "error"; access-log { file "${access}" }; audit-log { file "${audit}" } } }` });
  const { gw, url } = await gatewayFrom(cfg);
  cleanups.push(() => gw.close());
  await request(`${url()}/a/b?x=1`, { headers: { 'user-agent': 'test-agent', referer: 'http://ref/' } });
  await request(`${url()}/plain`);
  await gw.reload(cfg);
  await gw.close();
  const [line, plain] = (await waitFor(access, (s) => s.split('\n').length > 2)).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  if (!line || !plain) throw new Error('expected two access log lines');
  const fields = ['timestamp', 'trace_id', 'method', 'path', 'query', 'protocol', 'status', 'body_bytes', 'duration_ms', 'client_ip', 'user_agent', 'referer', 'host', 'route_id', 'upstream', 'upstream_attempts', 'instance_id', 'body_bytes_sent', 'upstream_addr', 'connection_reused', 'rate_limit_hit'];
  // the reference's order; a field without a value (no query, no referer) is left out, not null
  assert.deepEqual(Object.keys(line), fields);
  assert.deepEqual(Object.keys(plain), fields.filter((k) => k !== 'query' && k !== 'user_agent' && k !== 'referer'));
  assert.equal(plain.path, '/plain');
  assert.equal(line.path, '/a/b');
  assert.equal(line.query, 'x=1');
  assert.equal(line.status, 200);
  assert.equal(line.route_id, 'main');
  assert.equal(line.user_agent, 'test-agent');
  assert.equal(line.upstream_attempts, 1);
  const events = (await waitFor(audit, (s) => s.includes('reload_success'))).trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => e.action), ['reload_started', 'reload_success']);
  assert.equal(events[0].event_type, 'config_change');
});

test('combined format', () => {
  const line = formatAccess(
    { timestamp: '2026-01-02T03:04:05.000Z', trace_id: 'T1', method: 'GET', path: '/p', query: 'a=1', protocol: 'HTTP/1.1', status: 200, body_bytes: 12, duration_ms: 3.4, client_ip: '10.0.0.1', upstream_attempts: 1, instance_id: 'i', body_bytes_sent: 12, connection_reused: false, rate_limit_hit: false },
    'combined',
  );
  assert.equal(line, `10.0.0.1 - - [${clfDate(new Date('2026-01-02T03:04:05.000Z'))}] "GET /p?a=1 HTTP/1.1" 200 12 "-" "-" T1 3ms\n`);
  assert.match(clfDate(new Date()), /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$/);
});
