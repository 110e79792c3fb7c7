// The checked resolver an upstream group gives each target's connections (TargetSet.connectLookup,
// docs/security.md "Session 31 (disc31)"): none for an IP target, the whole policy for a
// discovered name, the own-listener check only for a static name; refused addresses counted per
// resolution and logged once per change of a target's refused set. No sockets: node:dns's
// lookup answers from a table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dns, { type LookupAddress } from 'node:dns';
import { Writable } from 'node:stream';
import pino from 'pino';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import { fakeServices } from '../../integration/upstreams/helpers.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import type { TargetSpec } from '../../../src/upstream/address.ts';
import type { DiscoverySource } from '../../../src/upstream/discovery/types.ts';
import type { TargetState } from '../../../src/upstream/types.ts';

const answers = new Map<string, string[]>();

/** Resolves `host` through the group's lookup for `target` (all addresses), with node:dns answering from `answers`. */
function resolveWith(lookup: NonNullable<ReturnType<UpstreamGroup['connectLookup']>>, host: string): Promise<{ err: (Error & { code?: string }) | null; addresses: string[] }> {
  const real = dns.lookup;
  (dns as { lookup: unknown }).lookup = (h: string, _o: unknown, cb: (e: Error | null, a: LookupAddress[]) => void) =>
    cb(null, (answers.get(h) ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 })));
  try {
    return new Promise((resolve) =>
      lookup(host, { all: true }, (err, addresses) => resolve({ err, addresses: Array.isArray(addresses) ? addresses.map((a) => a.address) : [] })),
    );
  } finally {
    (dns as { lookup: unknown }).lookup = real;
  }
}

test('connectLookup: none for IP targets; a discovered name gets the policy, a static name the own-listener check; logged once per change', async () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const services = { ...fakeServices(), log: pino({ level: 'warn' }, sink), ownListeners: () => [{ host: '127.0.0.1', port: 9090 }] };
  const source: DiscoverySource = {
    kind: 'memory',
    intervalMs: undefined,
    resolve: () =>
      Promise.resolve(['svc.test:9090', '10.0.0.5:9090'].map((a): TargetSpec => ({ address: a, host: a.split(':')[0]!, port: 9090, weight: 1 }))),
  };
  const g = new UpstreamGroup({
    id: 'u',
    config: { id: 'u', target: [{ address: 'static.test:9090', weight: 1 }], discovery: { kind: 'memory', allow: ['10.0.0.0/8'] } } as unknown as RawUpstream,
    baseDir: '.',
    services,
    discovery: source,
  });
  await g.ready();
  const byAddress = (a: string) => g.targets.find((t) => t.address === a) as TargetState;
  assert.equal(g.connectLookup(byAddress('10.0.0.5:9090')), undefined, 'an IP target: nothing to resolve');
  const discovered = g.connectLookup(byAddress('svc.test:9090'))!;
  const fixed = g.connectLookup(byAddress('static.test:9090'))!;

  answers.set('svc.test', ['10.0.0.1', '192.168.0.1', '169.254.169.254']);
  assert.deepEqual(await resolveWith(discovered, 'svc.test'), { err: null, addresses: ['10.0.0.1'] });
  assert.deepEqual(await resolveWith(discovered, 'svc.test'), { err: null, addresses: ['10.0.0.1'] });
  const warned = () => lines.filter((l) => l.msg === undefined ? false : String(l.msg).startsWith('upstream connect: resolved addresses refused'));
  assert.equal(warned().length, 1, 'the same refused set twice: logged once');
  answers.set('svc.test', ['127.0.0.1']);
  const r = await resolveWith(discovered, 'svc.test');
  assert.equal(r.err?.code, 'SENTINEL_TARGET_ADDRESS_REFUSED');
  assert.equal(warned().length, 2, 'another refused set: logged');
  answers.set('svc.test', ['10.0.0.2']);
  assert.deepEqual(await resolveWith(discovered, 'svc.test'), { err: null, addresses: ['10.0.0.2'] });
  answers.set('svc.test', ['127.0.0.1']);
  await resolveWith(discovered, 'svc.test');
  assert.equal(warned().length, 3, 'refused again after a clean resolution: a change, logged');

  // a static name: link-local and addresses outside `allow` stay (the operator wrote it); its own listener does not
  answers.set('static.test', ['169.254.169.254', '192.168.0.1']);
  assert.deepEqual(await resolveWith(fixed, 'static.test'), { err: null, addresses: ['169.254.169.254', '192.168.0.1'] });
  answers.set('static.test', ['127.0.0.1']);
  assert.equal((await resolveWith(fixed, 'static.test')).err?.code, 'SENTINEL_TARGET_ADDRESS_REFUSED');

  const text = await services.metrics.render();
  const count = (reason: string) => Number(new RegExp(`sentinel_upstream_connect_addresses_refused_total\\{upstream="u",reason="${reason}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
  assert.deepEqual([count('not_allowed'), count('link_local'), count('own_listener')], [2 + 2, 2, 1], 'per refused address, per resolution (127.0.0.1 is outside the allow networks before it is an own listener)');
  await g.close();
});
