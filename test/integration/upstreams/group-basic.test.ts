import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import { fakeServices, pickContext, startServer, type TestServer } from './helpers.ts';

const servers: TestServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

test('round robin over real targets, IPv6 target, all address forms merged', async () => {
  const a = await startServer((_req, res) => res.end('a'));
  const b = await startServer((_req, res) => res.end('b'));
  const c = await startServer((_req, res) => res.end('c'), '::1');
  servers.push(a, b, c);
  const config = {
    id: 'api',
    target: [{ address: a.address, weight: 1 }],
    targets: { target: [{ address: b.address, weight: 1 }] },
    address: c.address,
  } as RawUpstream;
  const group = new UpstreamGroup({ id: 'api', config, baseDir: '.', services: fakeServices() });
  try {
    assert.deepEqual(group.targets.map((t) => t.address), [a.address, b.address, c.address]);
    assert.equal(group.targets[2]!.host, '::1');
    const bodies: string[] = [];
    for (let i = 0; i < 6; i++) {
      const pick = group.select(pickContext())!;
      const res = await request(group.origin(pick.target) + '/', { dispatcher: group.dispatcher(pick.target) });
      bodies.push(await res.body.text());
      group.report(pick.target, { kind: 'response', status: res.statusCode, latencyMs: 1 });
    }
    assert.deepEqual(bodies, ['a', 'b', 'c', 'a', 'b', 'c']);
    assert.ok(group.targets.every((t) => t.inFlight === 0));
  } finally {
    await group.close();
  }
});
