// The names the gateway writes on every upstream request, registered in undici's well-known header
// names (src/upstream/undici-names.ts) when the first target pool is made: the upstream gets them as
// written, undici still refuses a bad value under a registered name, and a name that is not a
// lower-case token is never registered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { errors } from 'undici';
import { createTargetPool } from '../../../src/upstream/pool.ts';
import { GATEWAY_HEADER_NAMES, registerKnownHeaderNames } from '../../../src/upstream/undici-names.ts';

const names = (createRequire(import.meta.url)('undici/lib/core/constants.js') as { headerNameLowerCasedRecord: Record<string, string | undefined> }).headerNameLowerCasedRecord;

test("the first target pool registers forwardHeaders' names in undici; values are still checked", async () => {
  for (const n of GATEWAY_HEADER_NAMES) assert.equal(names[n], undefined, `${n} not known before a pool is made (this file runs alone)`);
  let seen: IncomingHttpHeaders | undefined;
  const server = createServer((req, res) => {
    seen = req.headers;
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const pool = createTargetPool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connections: 1, maxIdle: 1, idleTimeoutMs: 1000, maxLifetimeMs: undefined, connectTimeoutMs: 1000, headersTimeoutMs: 5000, bodyTimeoutMs: 5000, allowH2: false });
  try {
    for (const n of GATEWAY_HEADER_NAMES) assert.equal(names[n], n, `${n} registered`);
    const headers = Object.fromEntries(GATEWAY_HEADER_NAMES.map((n, i) => [n, `v${i}`]));
    const r = await pool.pool.request({ path: '/', method: 'GET', headers });
    await r.body.text();
    for (const [n, v] of Object.entries(headers)) assert.equal(seen?.[n], v, `the upstream gets ${n} as written`);
    await assert.rejects(
      pool.pool.request({ path: '/', method: 'GET', headers: { 'x-real-ip': '192.0.2.1\r\nx-injected: 1' } }),
      (err: unknown) => err instanceof errors.InvalidArgumentError,
      'a value with CR/LF is refused under a registered name',
    );
  } finally {
    await pool.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('a name that is not a lower-case token is refused, never registered', () => {
  for (const bad of ['X-Upper', 'bad name', 'colon:', '', 'new\nline']) {
    assert.throws(() => registerKnownHeaderNames([bad]), /not a lower-case header name token/);
    assert.equal(names[bad], undefined);
  }
  assert.equal(registerKnownHeaderNames(['x-sentinel-test']), true);
  assert.equal(names['x-sentinel-test'], 'x-sentinel-test');
});
