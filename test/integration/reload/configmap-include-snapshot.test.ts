// A config and its includes read across a ConfigMap swap (session 21 audit; docs/security.md,
// "Session 21 audit"): the kubelet renames a new `..data` symlink over the old one at any moment,
// and a load read the main file and each include through the symlinks, so a swap between two
// reads built a generation of the old main file and the new includes, a config neither version
// was. The swap is injected between the two reads through the loader's test seam; the gateway runs
// in-process from the mounted path and answers over loopback from real upstreams.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readlinkSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { loaderHooks } from '../../../src/config/kdl-loader.ts';
import { configFiles } from '../../../src/config/load.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { rawRequest, http1 } from '../../helpers/raw-http.ts';

const mount = mkdtempSync(join(tmpdir(), 'sentinel-cm-snapshot-'));
let versions = 0;
let a: TestUpstream;
let b: TestUpstream;
let gw: Gateway;

// Version 1 routes to upstream "first" = A; version 2 swaps the targets of "first" and "second"
// and routes to "second" = A. Either version whole answers "A"; v1's main file with v2's routes
// (the mix) routes to "second" = B.
const main = (first: TestUpstream, second: TestUpstream) => `system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
include "routes.kdl"
upstreams {
  upstream "first" { target "${first.address}" }
  upstream "second" { target "${second.address}" }
}
`;
const routes = (upstream: string) => `routes { route "all" { matches { path-prefix "/" }; upstream "${upstream}" } }\n`;

function writeVersion(files: Record<string, string>): string {
  const name = `..2026_12_06_20_00_${String(versions++).padStart(2, '0')}.${process.pid}`;
  mkdirSync(join(mount, name));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(mount, name, f), text);
  return name;
}

/** The kubelet's update: a new folder, a new ..data symlink renamed over the old one. */
function swap(files: Record<string, string>): void {
  const next = writeVersion(files);
  symlinkSync(next, join(mount, '..data_tmp'));
  renameSync(join(mount, '..data_tmp'), join(mount, '..data'));
}

before(async () => {
  a = await startUpstream((_req, res) => res.end('A'));
  b = await startUpstream((_req, res) => res.end('B'));
  symlinkSync(writeVersion({ 'sentinel.kdl': main(a, b), 'routes.kdl': routes('first') }), join(mount, '..data'));
  for (const f of ['sentinel.kdl', 'routes.kdl']) symlinkSync(join('..data', f), join(mount, f));
  gw = await startGateway({ configPath: join(mount, 'sentinel.kdl'), logLevel: 'silent' });
});

after(async () => {
  delete loaderHooks.afterRead;
  await gw.close();
  await a.close();
  await b.close();
});

const answer = async () => (await rawRequest(gw.address('http').port, http1('GET', '/x', ['Host: a', 'Connection: close']))).body;

test('a ConfigMap swap between reading the main file and its include never builds a mixed config', async () => {
  assert.equal(await answer(), 'A', 'version 1');
  const before = readlinkSync(join(mount, '..data'));
  let swapped = false;
  loaderHooks.afterRead = (file) => {
    // right after the main file was read, before its include is: the kubelet swaps to version 2
    if (!swapped && file.endsWith('sentinel.kdl')) {
      swapped = true;
      swap({ 'sentinel.kdl': main(b, a), 'routes.kdl': routes('second') });
    }
  };
  await gw.reload();
  delete loaderHooks.afterRead;
  assert.ok(swapped && readlinkSync(join(mount, '..data')) !== before, 'the swap happened mid-load');
  assert.equal(await answer(), 'A', 'the load read version 1 whole (the mix, v1 main + v2 routes, answers B)');
  await gw.reload();
  assert.equal(await answer(), 'A', 'the next load reads version 2 whole');
  assert.deepEqual(configFiles(join(mount, 'sentinel.kdl')), [join(mount, 'sentinel.kdl'), join(mount, 'routes.kdl')], 'files are named by the mounted path (diagnostics, lint), not the version folder');
});

// Session 22 audit: the snapshot also applied to a config file that is a symlink outside the
// Kubernetes shape (stow, Nix, /etc/alternatives: /etc/sentinel/sentinel.kdl -> /opt/cfg/sentinel.kdl),
// so its includes were read from /opt/cfg instead of next to the path given: `include "conf.d/*.kdl"`
// matched no files (a warning only) and the routes in it, with their allow-from, silently vanished.
test('a config file symlinked outside a ConfigMap keeps its includes next to the path given', async () => {
  const root = mkdtempSync(join(tmpdir(), 'sentinel-symlinked-config-'));
  mkdirSync(join(root, 'etc', 'conf.d'), { recursive: true });
  mkdirSync(join(root, 'opt'));
  writeFileSync(join(root, 'opt', 'sentinel.kdl'), `system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
include "conf.d/*.kdl"
upstreams { upstream "first" { target "${a.address}" } }
`);
  writeFileSync(join(root, 'etc', 'conf.d', 'routes.kdl'), routes('first'));
  symlinkSync(join(root, 'opt', 'sentinel.kdl'), join(root, 'etc', 'sentinel.kdl'));
  const g = await startGateway({ configPath: join(root, 'etc', 'sentinel.kdl'), logLevel: 'silent' });
  try {
    const r = await rawRequest(g.address('http').port, http1('GET', '/x', ['Host: a', 'Connection: close']));
    assert.equal(r.body, 'A', `the route of conf.d/routes.kdl is loaded (${r.status})`);
    assert.deepEqual(configFiles(join(root, 'etc', 'sentinel.kdl')), [join(root, 'etc', 'sentinel.kdl'), join(root, 'etc', 'conf.d', 'routes.kdl')]);
  } finally {
    await g.close();
  }
});
