// Session 29 audit (audit29): HTTP/2 takes any token as `:method`, up to the header-size limit, and
// an unknown method is refused 501 at the front door, but the refused request's method went whole
// into the access log line and the trace span (and the `blocked` audit event of a request over a
// header limit, which carries the same value): 2,000 characters of a
// client's choosing per request, in every sink. Now a method past 32 characters is cut and marked
// (registered methods are at most 17; a longer one is never routed). The raw HTTP/1.1 request line
// of a parse error was already cut (2,048 bytes read, the target to 1,024).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { until } from '../../helpers/until.ts';

const dir = mkdtempSync(join(tmpdir(), 'log-bounds-'));
const accessFile = join(dir, 'access.log');
let up: TestUpstream;
let gw: Gateway;

before(async () => {
  up = await startUpstream();
  gw = (
    await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "h2c" { address "127.0.0.1:0"; protocol "h2" } }
routes { route "main" { matches { path-prefix "/" }; upstream "app" } }
upstreams { upstream "app" { target "${up.address}" } }
observability { logging { level "error"; access-log { file "${accessFile}"; format "json" } } }
`)
  ).gw;
});

after(async () => {
  await gw.close();
  await up.close();
});

function h2(method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`);
    c.on('error', reject);
    const s = c.request({ ':method': method, ':path': path }, { endStream: true });
    s.on('response', (h) => {
      s.resume();
      s.on('end', () => {
        c.close();
        resolve(Number(h[':status']));
      });
    });
    s.on('error', (err) => {
      c.close();
      reject(err);
    });
  });
}

const flush = () => (gw as unknown as { accessLog?: { flush?(): void } }).accessLog?.flush?.();
const lineOf = (file: string, mark: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').find((l) => l.includes(mark)) : undefined);

test('an unknown HTTP/2 method of 2,000 characters is refused and logged cut to 32', async () => {
  const method = 'X'.repeat(2000);
  assert.equal(await h2(method, '/long-method'), 501);
  assert.equal(up.seen.length, 0);
  let access: string | undefined;
  await until('the access log line of /long-method', () => {
    flush();
    access = lineOf(accessFile, '/long-method');
    return access !== undefined;
  });
  assert.equal((JSON.parse(access!) as { method: string }).method, `${'X'.repeat(32)}...`);
  assert.ok(access!.length < 1000, `the access line is ${access!.length} characters`);
  // a registered method is logged as sent
  assert.equal(await h2('PROPFIND', '/short-method'), 200);
  await until('the access log line of /short-method', () => {
    flush();
    return lineOf(accessFile, '/short-method') !== undefined;
  });
  assert.equal((JSON.parse(lineOf(accessFile, '/short-method')!) as { method: string }).method, 'PROPFIND');
});
