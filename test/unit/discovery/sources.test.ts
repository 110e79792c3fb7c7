// Source behaviour that needs no network: static never refreshes; file re-reads only on change.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDiscoverySource } from '../../../src/upstream/discovery/index.ts';
import { UpstreamGroup } from '../../helpers/upstream-group.ts';
import type { RawUpstream } from '../../../src/config/schema.ts';
import { fakeServices } from '../../integration/upstreams/helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-sources-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('static: resolved once (no interval), its backends join the static targets', async () => {
  const src = createDiscoverySource({ kind: 'static', backends: ['10.0.0.2:80', '10.0.0.3:80'] }, dir)!;
  assert.equal(src.intervalMs, undefined);
  const g = new UpstreamGroup({
    id: 's',
    config: { id: 's', target: [{ address: '10.0.0.1:80', weight: 1 }], discovery: { kind: 'static', backends: ['10.0.0.2:80', '10.0.0.3:80'] } } as RawUpstream,
    baseDir: dir,
    services: fakeServices(),
  });
  await g.ready();
  assert.deepEqual(g.targets.map((t) => t.address), ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80']);
  await g.close();
});

test('file: relative to the config directory, defaults to a 5 s watch, re-read only when mtime/size change', async () => {
  const file = join(dir, 'targets.txt');
  writeFileSync(file, '10.0.0.1:80\n');
  const src = createDiscoverySource({ kind: 'file', path: 'targets.txt' }, dir)!;
  assert.equal(src.intervalMs, 5000);
  const first = await src.resolve(AbortSignal.timeout(1000));
  assert.deepEqual(first.map((t) => t.address), ['10.0.0.1:80']);
  assert.equal(await src.resolve(AbortSignal.timeout(1000)), first, 'unchanged file: the same answer object, nothing parsed');
  writeFileSync(file, '10.0.0.2:80 4\n');
  utimesSync(file, new Date(), new Date(Date.now() + 5000));
  const second = await src.resolve(AbortSignal.timeout(1000));
  assert.deepEqual(second.map((t) => `${t.address}/${t.weight}`), ['10.0.0.2:80/4']);
  rmSync(file);
  await assert.rejects(src.resolve(AbortSignal.timeout(1000)), /ENOENT/);
});

test('dns-srv / dns: intervals from refresh-interval (seconds or duration), default 30 s', () => {
  assert.equal(createDiscoverySource({ kind: 'dns', hostname: 'a', port: 80 }, dir)!.intervalMs, 30_000);
  assert.equal(createDiscoverySource({ kind: 'dns-srv', service: '_x._tcp.a', 'refresh-interval': '2s' }, dir)!.intervalMs, 2000);
  assert.equal(createDiscoverySource({ kind: 'dns', hostname: 'a', port: 80, 'refresh-interval': 0.5 }, dir)!.intervalMs, 500);
});
