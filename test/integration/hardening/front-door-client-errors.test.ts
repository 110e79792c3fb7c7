// Issue #17 items 12 and 16: requests Node's parser refuses get the gateway's JSON error (501 for
// an unknown method), are counted by kind and access-logged; Fastify's error codes never reach a
// client; the combined access log escapes what the client sent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';
import { escapeLogField, formatAccess } from '../../../src/logging/access-log.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { until } from '../../helpers/until.ts';

let up: TestUpstream;
let gw: Gateway;
let port: number;
const dir = mkdtempSync(join(tmpdir(), 'sentinel-client-errors-'));
const accessFile = join(dir, 'access.log');

before(async () => {
  up = await startUpstream();
  gw = (await gatewayFrom(simpleConfig(up.address, { top: `observability { logging { level "error"; access-log { file "${accessFile}"; format "combined" } } }` }))).gw;
  port = gw.address('http').port;
});

after(async () => {
  await gw.close();
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

async function accessLog(match: (text: string) => boolean): Promise<string> {
  // the sink is asynchronous: flush and poll (bounded; the caller's assertion says what is missing)
  const read = () => {
    (gw as unknown as { accessLog?: { flush?(): void } }).accessLog?.flush?.();
    try {
      return readFileSync(accessFile, 'utf8');
    } catch {
      return ''; // not created yet
    }
  };
  await until('the access-log line', () => match(read())).catch(() => undefined);
  return read();
}

test('an unknown method gets 501 with the JSON error body, a metric and an access-log line', async () => {
  const n = up.seen.length;
  const r = await rawRequest(port, 'CUST /x HTTP/1.1\r\nHost: public.example.com\r\n\r\n');
  assert.equal(r.status, 501);
  assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
  const body = JSON.parse(r.body) as { error: string; status: number; request_id: string };
  assert.equal(body.status, 501);
  assert.ok(body.request_id);
  assert.equal(r.headers['x-correlation-id'], body.request_id);
  assert.equal(up.seen.length, n);
  assert.match(await gw.metrics.render(), /sentinel_client_errors_total\{kind="unknown_method"\} 1/);
  const log = await accessLog((t) => t.includes(body.request_id));
  assert.match(log, new RegExp(`"CUST /x HTTP/1.1" 501 \\d+ "-" "-" ${body.request_id} `));
});

test('other parser errors: JSON 400 / 431, counted by kind', async () => {
  const cases: [string, number, string][] = [
    ['GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n', 400, 'invalid_header_token'],
    ['GET /a b HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'invalid_constant'],
    [`GET /x HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`, 431, 'header_overflow'],
  ];
  for (const [bytes, status, kind] of cases) {
    const r = await rawRequest(port, bytes);
    assert.equal(r.status, status, kind);
    assert.equal((JSON.parse(r.body) as { status: number }).status, status, kind);
    assert.match(await gw.metrics.render(), new RegExp(`sentinel_client_errors_total\\{kind="${kind}"\\} [1-9]`), kind);
  }
});

test('Fastify error codes never reach a client', async () => {
  const cases = [
    http1('GET', '/%C0%AF', ['Host: a', 'Connection: close']),
    http1('GET', '/%FF', ['Host: a', 'Connection: close']),
    http1('GET', '/%zz', ['Host: a', 'Connection: close']),
    http1('POST', '/x', ['Host: a', 'Connection: close', 'Content-Type: ;;;', 'Content-Length: 3'], 'abc'),
    http1('POST', '/x', ['Host: a', 'Connection: close', 'Content-Type: application/json', 'Content-Length: 1'], '{'),
    http1('GET', '/x', ['Connection: close']),
  ];
  for (const bytes of cases) {
    const r = await rawRequest(port, bytes);
    assert.doesNotMatch(r.body, /FST_|statusCode/, bytes.split('\r\n')[0]);
    assert.ok(r.status === 200 || r.body.startsWith('{"error"'), `${bytes.split('\r\n')[0]}: ${r.status} ${r.body}`);
  }
  // a body type Fastify cannot parse is the upstream's business: forwarded
  const n = up.seen.length;
  await rawRequest(port, http1('POST', '/ct', ['Host: a', 'Connection: close', 'Content-Type: ;;;', 'Content-Length: 3'], 'abc'));
  assert.equal(up.seen.length, n + 1);
  assert.equal(up.seen[n]!.body.toString(), 'abc');
});

test('combined access log escapes quotes, backslashes and control characters', async () => {
  const r = await rawRequest(port, http1('GET', '/q', ['Host: a', 'User-Agent: evil" 200 0 "x\\y\tz', 'Referer: r"', 'Connection: close']));
  assert.equal(r.status, 200);
  const log = await accessLog((t) => t.includes('"GET /q '));
  const line = log.split('\n').find((l) => l.includes('"GET /q '))!;
  assert.ok(line.includes('"r\\x22" "evil\\x22 200 0 \\x22x\\x5Cy\\x09z"'), line);
  // every quoted field is balanced: 3 quoted fields, 6 quote characters
  assert.equal(line.split('"').length - 1, 6, line);
  assert.equal(escapeLogField('plain text/1.0'), 'plain text/1.0');
  assert.equal(escapeLogField('a\nb\u00e9'), 'a\\x0Ab\\xE9');
  const forged = formatAccess(
    { timestamp: '2026-01-02T03:04:05.000Z', trace_id: 'T', method: 'GET', path: '/"', protocol: 'HTTP/1.1', status: 200, body_bytes: 0, duration_ms: 0, client_ip: '1.1.1.1', upstream_attempts: 0, instance_id: 'i', body_bytes_sent: 0, connection_reused: false, rate_limit_hit: false, user_agent: '"\n1.1.1.1 - - ' },
    'combined',
  );
  assert.equal(forged.split('\n').length, 2, 'one line');
});
