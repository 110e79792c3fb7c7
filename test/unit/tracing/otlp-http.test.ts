// The OTLP/HTTP transport's pure rules (plugins/tracing/otlp-http.ts): which answers and errors
// are retried, Retry-After, the backoff, and the OTEL_EXPORTER_OTLP_* variables. The transport
// itself against real receivers: test/integration/tracing/otlp-http.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffMs, isRetryableError, isRetryableStatus, otlpEnvironment, retryAfterMs, INITIAL_BACKOFF_MS, MAX_BACKOFF_MS } from '../../../plugins/tracing/otlp-http.ts';

test('retryable statuses are exactly the OTLP spec list (429, 502, 503, 504)', () => {
  const retryable = [];
  for (let s = 100; s < 600; s++) if (isRetryableStatus(s)) retryable.push(s);
  assert.deepEqual(retryable, [429, 502, 503, 504]);
});

test('retryable network errors: the collector down, restarting, unreachable or timing out', () => {
  const table: [unknown, boolean][] = [
    [Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), true],
    [Object.assign(new Error('reset'), { code: 'ECONNRESET' }), true],
    [Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }), true],
    [Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' }), true],
    [Object.assign(new Error('headers timeout'), { code: 'UND_ERR_HEADERS_TIMEOUT' }), true],
    [Object.assign(new Error('dns'), { code: 'ENOTFOUND' }), true],
    [Object.assign(new Error('dns'), { code: 'EAI_AGAIN' }), true],
    [Object.assign(new Error('self-signed'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), false],
    [Object.assign(new Error('closed'), { code: 'UND_ERR_DESTROYED' }), false],
    [new Error('no code'), false],
    [null, false],
    ['a string', false],
  ];
  for (const [err, want] of table) assert.equal(isRetryableError(err), want, String((err as { code?: string } | null)?.code ?? err));
});

test('Retry-After: delay-seconds or an HTTP date, nothing for garbage', () => {
  const now = Date.parse('2026-12-05T08:00:00Z');
  const table: [string | undefined, number | undefined][] = [
    [undefined, undefined],
    ['0', 0],
    ['3', 3000],
    [' 12 ', 12_000],
    ['Sat, 05 Dec 2026 08:00:07 GMT', 7000],
    ['Sat, 05 Dec 2026 07:59:00 GMT', 0], // in the past: at once
    ['soon', undefined],
    ['-5', undefined],
    ['1.5', undefined],
  ];
  for (const [value, want] of table) assert.equal(retryAfterMs(value, now), want, String(value));
});

test('backoff: 1 s x1.5 per retry, capped at 5 s, jitter within ±20%', () => {
  const mid = () => 0.5; // no jitter
  assert.deepEqual([0, 1, 2, 3, 4, 5].map((n) => backoffMs(n, mid)), [1000, 1500, 2250, 3375, MAX_BACKOFF_MS, MAX_BACKOFF_MS]);
  assert.equal(backoffMs(0, () => 0), INITIAL_BACKOFF_MS * 0.8);
  assert.equal(backoffMs(0, () => 1), INITIAL_BACKOFF_MS * 1.2);
  assert.equal(backoffMs(9, () => 1), MAX_BACKOFF_MS, 'the cap holds with jitter');
});

test('OTEL_EXPORTER_OTLP_* headers: name=value pairs, URL-decoded, the traces variable wins name by name', () => {
  const env = otlpEnvironment({
    OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Basic%20abc, x-tenant = blue ,x-empty=,broken,x-prop=1;meta',
    OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=green',
  });
  assert.deepEqual(env.headers, { authorization: 'Basic abc', 'x-tenant': 'green', 'x-prop': '1' });
  assert.equal(env.warnings.length, 1);
  assert.match(env.warnings[0]!, /OTEL_EXPORTER_OTLP_HEADERS: "broken" is not name=value/);
  assert.deepEqual(otlpEnvironment({ OTEL_EXPORTER_OTLP_HEADERS: 'a=%E0%A4%A' }).warnings.length, 1, 'bad URL encoding is reported, not thrown');
});

test('OTEL_EXPORTER_OTLP_* compression and certificate files', () => {
  assert.equal(otlpEnvironment({}).compression, 'none');
  assert.equal(otlpEnvironment({ OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' }).compression, 'gzip');
  assert.equal(otlpEnvironment({ OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' }).compression, 'none', 'the traces variable wins');
  const zstd = otlpEnvironment({ OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' });
  assert.equal(zstd.compression, 'none');
  assert.match(zstd.warnings[0]!, /OTEL_EXPORTER_OTLP_COMPRESSION="zstd" is not "gzip" or "none"/);

  const files: Record<string, string> = { '/ca.pem': 'CA', '/traces-ca.pem': 'TRACES CA', '/c.pem': 'CERT', '/k.pem': 'KEY' };
  const read = (p: string): Buffer => {
    const f = files[p];
    if (f === undefined) throw new Error('ENOENT: no such file');
    return Buffer.from(f);
  };
  const tls = otlpEnvironment({ OTEL_EXPORTER_OTLP_CERTIFICATE: '/ca.pem', OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: '/traces-ca.pem', OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: '/c.pem', OTEL_EXPORTER_OTLP_CLIENT_KEY: '/k.pem' }, read);
  assert.deepEqual({ ca: tls.tls.ca?.toString(), cert: tls.tls.cert?.toString(), key: tls.tls.key?.toString() }, { ca: 'TRACES CA', cert: 'CERT', key: 'KEY' });
  const missing = otlpEnvironment({ OTEL_EXPORTER_OTLP_CERTIFICATE: '/nope.pem' }, read);
  assert.deepEqual(missing.tls, {});
  assert.match(missing.warnings[0]!, /OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read the CA certificate "\/nope.pem"/);
});
