// auto-reload and included files (session 22 audit, open since session 21): the watcher took the
// config file and the TLS files only, so an edit to an included file alone (routes kept in
// `conf.d/*.kdl`, the usual split) was never seen until SIGHUP or an edit of the main file. Now every
// file a load read is watched (its folder, as for the main file), and the set is rebuilt after each
// reload, so an include added by a reload is watched too. Session 23 audit: a file that NEWLY
// matches a glob include (a new `conf.d/20-admin.kdl`) was not seen until another event; now the
// folders a glob looked in are watched for names its pattern matches, a folder the pattern names
// that does not exist yet too (its parent is watched for it).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { request } from '../../helpers/http.ts';
import { until } from '../../helpers/until.ts';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-include-watch-'));
const main = join(dir, 'sentinel.kdl');
let gw: Gateway;
let base: string;

const route = (id: string, path: string) => `routes { route "${id}" { matches { path "${path}" }; builtin-handler "health" } }\n`;

before(async () => {
  mkdirSync(join(dir, 'conf.d'));
  mkdirSync(join(dir, 'more'));
  writeFileSync(join(dir, 'conf.d', 'routes.kdl'), route('a', '/a'));
  writeFileSync(
    main,
    `system { auto-reload #true; graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
include "conf.d/*.kdl"
`,
  );
  gw = await startGateway({ configPath: main, logLevel: 'silent' });
  base = `http://127.0.0.1:${gw.address('http').port}`;
});

after(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

const status = async (path: string) => (await request(`${base}${path}`)).status;

test('an edit to an included file alone is reloaded', async () => {
  assert.equal(await status('/a'), 200);
  assert.equal(await status('/b'), 404);
  writeFileSync(join(dir, 'conf.d', 'routes.kdl'), route('a', '/a') + route('b', '/b'));
  await until('the include edit to be reloaded (/b served)', async () => (await status('/b')) === 200);
});

test('an include a reload added (in another folder) is watched from then on', async () => {
  writeFileSync(join(dir, 'more', 'extra.kdl'), route('c', '/c'));
  writeFileSync(main, `system { auto-reload #true; graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
include "conf.d/*.kdl"
include "more/extra.kdl"
`);
  await until('the main file edit to be reloaded (/c served)', async () => (await status('/c')) === 200);
  writeFileSync(join(dir, 'more', 'extra.kdl'), route('c', '/c') + route('d', '/d'));
  await until('the edit to the new include to be reloaded (/d served)', async () => (await status('/d')) === 200);
});

test('a new file that matches a glob include is reloaded with no other event (session 23)', async () => {
  assert.equal(await status('/e'), 404);
  writeFileSync(join(dir, 'conf.d', '20-new.kdl'), route('e', '/e'));
  await until('the new conf.d file to be reloaded (/e served)', async () => (await status('/e')) === 200);
  // a name the pattern does not match is no include: no reload is needed, and none shows
  writeFileSync(join(dir, 'conf.d', 'notes.txt'), 'not config');
});

test('a glob whose folder does not exist yet: the folder and then its file are seen (session 23)', async () => {
  writeFileSync(main, `system { auto-reload #true; graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
include "conf.d/*.kdl"
include "more/extra.kdl"
include "later/*.kdl"
`);
  await until('the main file edit to be reloaded (its generation)', async () => gw.config.includeLookups.some((g) => g.dir === dir && g.name === '^later$'));
  mkdirSync(join(dir, 'later'));
  await until('the new folder to be watched', async () => gw.config.includeLookups.some((g) => g.dir === join(dir, 'later')));
  writeFileSync(join(dir, 'later', 'f.kdl'), route('f', '/f'));
  await until('the file in the new folder to be reloaded (/f served)', async () => (await status('/f')) === 200);
});
