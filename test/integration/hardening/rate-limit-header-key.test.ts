// Session 18 audit (docs/security.md "Session 18 audit"): a `header:<Name>` rate-limit key read the
// client's header, so `key "header:X-Forwarded-For"` (or X-Real-IP, True-Client-IP ...) with no
// trusted proxy in front was the client's choice: a new value per request, a new bucket, no limit.
// The key now reads what the upstream gets: the address the gateway wrote, or nothing for an
// identity header it removed. Real requests on loopback.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startLimitedGateway, type LimitedGateway } from '../../helpers/rate-limit.ts';

let g: LimitedGateway;
const status = (path: string, headers: Record<string, string>) => g.status(path, headers);

before(async () => {
  g = await startLimitedGateway([
    { prefix: '/xff', key: 'header:X-Forwarded-For' },
    { prefix: '/real', key: 'header:X-Real-IP' },
    { prefix: '/tci', key: 'header:True-Client-IP' },
    { prefix: '/key', key: 'header:X-Api-Key' },
  ]);
});

after(() => g.close());

test('a key on an identity header is what the upstream gets: a spoofed value per request is no fresh bucket', async () => {
  for (const [path, name] of [['/xff', 'x-forwarded-for'], ['/real', 'x-real-ip'], ['/tci', 'true-client-ip']] as const) {
    assert.equal(await status(path, { [name]: '10.0.0.1' }), 200, path);
    for (let i = 2; i < 5; i++) assert.equal(await status(path, { [name]: `10.0.0.${i}` }), 429, `${path} ${name}: 10.0.0.${i}`);
    assert.equal(await status(path, {}), 429, `${path} without the header`);
  }
  // an ordinary header stays the client's: each key its own bucket
  assert.equal(await status('/key', { 'x-api-key': 'a' }), 200);
  assert.equal(await status('/key', { 'x-api-key': 'b' }), 200);
  assert.equal(await status('/key', { 'x-api-key': 'a' }), 429);
});
