// Plugin filters (`type "plugin"`): user-written Fastify plugins loaded from the config, through
// the real gateway and a real upstream. The example (examples/plugin.kdl + header-stamp.mjs),
// load/validation errors (start, reload and `sentinel test`), failure modes and timeouts at
// request time, a body transform, and the filter's own metrics.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { request } from '../../helpers/http.ts';

const examples = fileURLToPath(new URL('../../../examples/', import.meta.url));
const bin = fileURLToPath(new URL('../../../bin/sentinel.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sentinel-plugin-filter-'));
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

async function upstream(): Promise<TestUpstream> {
  const up = await startUpstream((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end('hello from upstream');
  });
  cleanups.push(() => up.close());
  return up;
}

async function gateway(configText: string, baseDir = dir): Promise<{ gw: Gateway; url: string }> {
  const gw = await startGateway({ configText, baseDir, logLevel: 'silent' });
  cleanups.push(() => gw.close());
  return { gw, url: `http://127.0.0.1:${gw.address('http').port}` };
}

async function calls(gw: Gateway, labels: Record<string, string>): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric('sentinel_plugin_filter_calls_total');
  const values = m ? (await m.get()).values : [];
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

/** A config with one plugin filter on the catch-all route. */
function config(up: TestUpstream, filter: string, route = ''): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
filters { filter "p" { type "plugin"; ${filter} } }
routes { route "main" { matches { path-prefix "/" }; upstream "app"; filters "p"; ${route} } }
upstreams { upstream "app" { target "127.0.0.1:${up.port}" } }
`;
}

function module(name: string, source: string): string {
  writeFileSync(join(dir, name), source);
  return `./${name}`;
}

test('examples/plugin.kdl: header-stamp stamps the request and the response, blocks, counts', async () => {
  const up = await upstream();
  const text = readFileSync(join(examples, 'plugin.kdl'), 'utf8').replaceAll('127.0.0.1:8080', '127.0.0.1:0').replaceAll('127.0.0.1:3000', `127.0.0.1:${up.port}`);
  const { gw, url } = await gateway(text, examples);
  assert.ok(gw.current.features.includes('plugin-filter'));
  const r = await request(`${url}/a`);
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, 'hello from upstream');
  assert.equal(r.headers['x-stamp'], 'v1');
  assert.equal(up.seen.at(-1)?.headers['x-stamp'], 'v1');
  const blocked = await request(`${url}/b`, { headers: { 'x-stamp-block': '1' } });
  assert.equal(blocked.status, 403);
  assert.equal(blocked.body, 'Blocked by header-stamp');
  assert.equal(up.seen.length, 1, 'the blocked request never reached the upstream');
  assert.equal(await calls(gw, { filter: 'stamp', phase: 'request', result: 'ok' }), 1);
  assert.equal(await calls(gw, { filter: 'stamp', phase: 'request', result: 'blocked' }), 1);
  assert.equal(await calls(gw, { filter: 'stamp', phase: 'response', result: 'ok' }), 1);
  const blockedMetric = (await gw.metrics.registry.getSingleMetric('sentinel_blocked_requests_total')!.get()).values.find((v) => v.labels.reason === 'header_stamp');
  assert.equal(blockedMetric?.value, 1);
});

test('sentinel test loads and validates the module: the example passes, a bad one fails naming it', () => {
  const ok = spawnSync(process.execPath, [bin, 'test', '-c', join(examples, 'plugin.kdl')], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(ok.status, 0, ok.stderr);
  const bad = join(dir, 'bad.kdl');
  writeFileSync(bad, readFileSync(join(examples, 'plugin.kdl'), 'utf8').replace('./plugins/header-stamp.mjs', `${join(examples, 'plugins', 'header-stamp.mjs')}`).replace('value "v1"', 'value ""'));
  const r = spawnSync(process.execPath, [bin, 'test', '-c', bad], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /filters > filter "stamp" > module ".*header-stamp\.mjs": invalid config: value: a non-empty string is required/);
  assert.match(r.stderr, /test failed/);
});

test('a module that is missing, does not load, has no plugin or fails to register is a config error naming it', async () => {
  const up = await upstream();
  const cases: [string, RegExp][] = [
    ['module "./nope.mjs"', /filter "p" > module "\.\/nope\.mjs": cannot read .*nope\.mjs: ENOENT/],
    [`module "${module('syntax.mjs', 'export default async function (app, opts) { ')}"`, /filter "p" > module "\.\/syntax\.mjs": failed to load/],
    [`module "${module('noplugin.mjs', 'export const x = 1;')}"`, /module "\.\/noplugin\.mjs": the module must export a Fastify plugin as its default export/],
    [`module "${module('throws.mjs', 'export default async function () { throw new Error("no db"); }')}"`, /module "\.\/throws\.mjs": registration failed: no db/],
    [`module "${module('nofilter.mjs', 'export default async function () {}')}"`, /module "\.\/nofilter\.mjs": the plugin did not define its filter/],
    ['config { }', /filter "p": a plugin filter needs module "<path>"/],
  ];
  for (const [filter, message] of cases) {
    await assert.rejects(startGateway({ configText: config(up, filter), baseDir: dir, logLevel: 'silent' }), message, filter);
  }
  // a reload to a broken module is refused; the running filter keeps serving
  module('ok.mjs', 'export default async function (app, opts) { opts.filter({ onRequest(ctx) { ctx.upstreamHeaders["x-ok"] = "1"; } }); }');
  const { gw, url } = await gateway(config(up, 'module "./ok.mjs"'));
  await assert.rejects(gw.reload(config(up, 'module "./nofilter.mjs"')), /did not define its filter/);
  assert.equal((await request(`${url}/x`)).status, 200);
  assert.equal(up.seen.at(-1)?.headers['x-ok'], '1');
});

test('a hook that throws or times out follows the failure mode (filter, else route)', async () => {
  const up = await upstream();
  const m = module(
    'flaky.mjs',
    `export default async function (app, opts) {
      opts.filter({
        async onRequest(ctx) {
          if (ctx.path === '/throw') throw new Error('boom');
          if (ctx.path === '/slow') await new Promise((r) => setTimeout(r, 500));
          ctx.upstreamHeaders['x-flaky'] = opts.failureMode(ctx.routeId);
        },
        onResponse(ctx, res) {
          if (ctx.path === '/throw-response') throw new Error('bad response hook');
        },
      });
    }`,
  );
  const closed = await gateway(config(up, `module "${m}"; timeout-ms 100`, 'policies { failure-mode "closed" }'));
  assert.equal((await request(`${closed.url}/throw`)).status, 503);
  assert.equal((await request(`${closed.url}/slow`)).status, 504);
  assert.equal((await request(`${closed.url}/throw-response`)).status, 502);
  const fine = await request(`${closed.url}/fine`);
  assert.equal(fine.status, 200);
  assert.equal(up.seen.at(-1)?.headers['x-flaky'], 'closed');
  assert.equal(await calls(closed.gw, { filter: 'p', phase: 'request', result: 'error' }), 1);
  assert.equal(await calls(closed.gw, { filter: 'p', phase: 'request', result: 'timeout' }), 1);
  assert.equal(await calls(closed.gw, { filter: 'p', phase: 'response', result: 'error' }), 1);

  const seenBefore = up.seen.length;
  const open = await gateway(config(up, `module "${m}"; timeout-ms 100`, 'policies { failure-mode "open" }'));
  for (const path of ['/throw', '/slow', '/throw-response']) {
    const r = await request(`${open.url}${path}`);
    assert.equal(r.status, 200, path);
    assert.equal(r.body, 'hello from upstream');
  }
  assert.equal(up.seen.length, seenBefore + 3);
  // the filter's own failure-mode wins over the route's
  const own = await gateway(config(up, `module "${m}"; timeout-ms 100; failure-mode "closed"`, 'policies { failure-mode "open" }'));
  assert.equal((await request(`${own.url}/throw`)).status, 503);
});

test('onResponseBody: a plugin rewrites the response body through the same contract', async () => {
  const up = await upstream();
  const m = module(
    'upper.mjs',
    `export default async function (app, opts) {
      opts.filter({
        onResponseBody(ctx, res) {
          const held = [];
          return {
            holdHeaders: true,
            onChunk(chunk, isLast) {
              held.push(chunk);
              if (!isLast) return Buffer.alloc(0);
              return Buffer.from(Buffer.concat(held).toString().toUpperCase());
            },
          };
        },
      });
    }`,
  );
  const { gw, url } = await gateway(config(up, `module "${m}"`));
  const r = await request(`${url}/u`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'HELLO FROM UPSTREAM');
  assert.equal(await calls(gw, { filter: 'p', phase: 'response_body', result: 'ok' }), 1);
});

test('an answer that is never written (an invalid response header) still gives back what it holds (onSent)', async () => {
  const up = await upstream();
  // What a cache hit does: its answer holds memory until onSent. Here a response header the
  // filter set is invalid, so the gateway fails before writing the answer: onSent must still run.
  const released: string[] = [];
  (globalThis as { sentinelTestReleased?: string[] }).sentinelTestReleased = released;
  const m = module(
    'bad-header.mjs',
    `export default async function (app, opts) {
      opts.filter({
        onRequest(ctx) {
          ctx.responseHeaders['x-bad'] = 'a\\nb';
          return { status: 200, body: 'held', onSent: () => globalThis.sentinelTestReleased.push(ctx.traceId) };
        },
      });
    }`,
  );
  const { url } = await gateway(config(up, `module "${m}"`));
  const r = await request(`${url}/held`);
  assert.equal(r.status, 500, r.body);
  assert.equal(released.length, 1, 'onSent ran once');
  assert.equal(up.seen.length, 0);
});
