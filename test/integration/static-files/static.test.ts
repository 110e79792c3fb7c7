// Static files through a real gateway: validators, conditional requests, ranges, precompressed
// siblings, on-the-fly compression, directories, SPA fallback, and every traversal spelling,
// symlink escape and dotfile refused. Files live in a temporary folder made per run.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, mkdirSync, readlinkSync, readdirSync, rmSync, symlinkSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { rawExchange } from '../../helpers/raw-http.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { requestBytes, type BytesReply } from '../../helpers/http.ts';
import { until } from '../../helpers/until.ts';

/** curl's stdout. Asynchronous: the gateway runs in this process, a synchronous child would block it. */
function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('curl', args, { encoding: 'utf8', maxBuffer: 1 << 20 }, (err, stdout) =>
      err ? reject(new Error(`curl ${args.join(' ')}: ${err.message} (curl is installed by scripts/setup.sh)`)) : resolve(stdout),
    ),
  );
}

const base = mkdtempSync(join(tmpdir(), 'sentinel-static-'));
const www = join(base, 'www');
const SECRET = 'TOP-SECRET-OUTSIDE-ROOT';
const CSS = `body { color: red; }\n`.repeat(200); // 4 KiB, compressible
const MTIME = new Date('2026-01-02T03:04:05Z');

function put(rel: string, content: string | Buffer): void {
  writeFileSync(join(www, rel), content);
  utimesSync(join(www, rel), MTIME, MTIME);
}

let gw: Gateway;
let url: (listener?: string) => string;
let port: number;

before(async () => {
  mkdirSync(join(www, 'sub'), { recursive: true });
  mkdirSync(join(www, 'noindex'));
  mkdirSync(join(www, 'list'));
  mkdirSync(join(www, '.well-known'));
  mkdirSync(join(www, 'spa'));
  writeFileSync(join(base, 'secret.txt'), SECRET);
  put('hello.txt', 'hello, world\n');
  put('index.html', '<h1>root index</h1>\n');
  put('sub/index.html', '<h1>sub index</h1>\n');
  put('noindex/file.txt', 'x');
  put('app.js', 'console.log("identity");\n');
  put('app.js.br', 'BROTLI-BYTES');
  put('app.js.gz', 'GZIP-BYTES');
  put('style.css', CSS);
  put('digits.txt', '0123456789');
  put('empty.txt', '');
  put('.env', 'DB_PASSWORD=hunter2');
  put('.well-known/acme', 'challenge-token');
  put('spa/index.html', '<h1>spa shell</h1>\n');
  for (const name of ['<img src=x onerror=alert(1)>.txt', 'a"b&c.txt', "it's.txt"]) put(`list/${name}`, 'x');
  mkdirSync(join(www, 'list', '<b>dir<b>'));
  for (const ext of ['html', 'css', 'js', 'json', 'svg', 'png', 'woff2', 'wasm', 'mp4', 'unknownext']) put(`t.${ext}`, 'x');
  // symlinks: one leaving the root (file and directory), one staying inside
  symlinkSync(join(base, 'secret.txt'), join(www, 'leak.txt'));
  symlinkSync(base, join(www, 'escape'));
  symlinkSync(join(www, 'hello.txt'), join(www, 'alias.txt'));
  const kdl = `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes {
  route "list" { matches { path-prefix "/list" }; static-files { root "${www}"; directory-listing #true } }
  route "spa" {
    matches { path-prefix "/spa" }
    static-files { root "${www}/spa"; fallback "index.html"; cache-control "no-cache" }
  }
  route "dot" { matches { path-prefix "/dot" }; static-files { root "${www}/.."; serve-dotfiles #true } }
  route "plain" { matches { path-prefix "/plain" }; static-files { root "${www}"; compress #false } }
  route "files" { matches { path-prefix "/" }; static-files { root "${www}" } }
}
`;
  ({ gw, url } = await gatewayFrom(kdl));
  port = gw.address('http').port;
});

after(async () => {
  await gw?.close();
});

type Got = BytesReply;
const get = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> => requestBytes(url() + path, { method, headers });

test('the feature is registered for static-files routes', () => {
  assert.ok(gw.current.features.includes('static-files'));
});

test('GET: body, Content-Type, strong ETag, Last-Modified, Content-Length, Accept-Ranges, Cache-Control', async () => {
  const r = await get('/hello.txt');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'hello, world\n');
  assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
  assert.match(r.headers.etag!, /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.equal(r.headers['last-modified'], MTIME.toUTCString());
  assert.equal(r.headers['content-length'], '13');
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.equal(r.headers['cache-control'], 'public, max-age=3600');
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  const empty = await get('/empty.txt');
  assert.equal(empty.status, 200);
  assert.equal(empty.headers['content-length'], '0');
  assert.equal(empty.body.length, 0);
});

test('HEAD: the GET headers without a body; other methods 405 with Allow', async () => {
  const r = await get('/hello.txt', {}, 'HEAD');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-length'], '13');
  assert.equal(r.body.length, 0);
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const m = await get('/hello.txt', {}, method);
    assert.equal(m.status, 405, method);
    assert.equal(m.headers.allow, 'GET, HEAD');
  }
});

test('Content-Type by extension', async () => {
  const want: Record<string, string> = {
    html: 'text/html; charset=utf-8',
    css: 'text/css; charset=utf-8',
    js: 'text/javascript; charset=utf-8',
    json: 'application/json; charset=utf-8',
    svg: 'image/svg+xml',
    png: 'image/png',
    woff2: 'font/woff2',
    wasm: 'application/wasm',
    mp4: 'video/mp4',
    unknownext: 'application/octet-stream',
  };
  for (const [ext, type] of Object.entries(want)) {
    const r = await get(`/plain/../t.${ext}`.replace('/plain/..', ''));
    assert.equal(r.headers['content-type'], type, ext);
  }
});

test('conditional requests: If-None-Match and If-Modified-Since -> 304, If-Match / If-Unmodified-Since -> 412', async () => {
  const { headers } = await get('/hello.txt');
  const etag = headers.etag!;
  for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
    const r = await get('/hello.txt', { 'if-none-match': inm });
    assert.equal(r.status, 304, inm);
    assert.equal(r.headers.etag, etag);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['cache-control'], 'public, max-age=3600');
  }
  assert.equal((await get('/hello.txt', { 'if-none-match': '"other"' })).status, 200);
  assert.equal((await get('/hello.txt', { 'if-modified-since': MTIME.toUTCString() })).status, 304);
  assert.equal((await get('/hello.txt', { 'if-modified-since': new Date(MTIME.getTime() + 60_000).toUTCString() })).status, 304);
  assert.equal((await get('/hello.txt', { 'if-modified-since': new Date(MTIME.getTime() - 60_000).toUTCString() })).status, 200);
  // If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
  assert.equal((await get('/hello.txt', { 'if-none-match': '"other"', 'if-modified-since': MTIME.toUTCString() })).status, 200);
  assert.equal((await get('/hello.txt', { 'if-match': '"other"' })).status, 412);
  assert.equal((await get('/hello.txt', { 'if-match': `W/${etag}` })).status, 412, 'If-Match compares strongly');
  assert.equal((await get('/hello.txt', { 'if-match': etag })).status, 200);
  assert.equal((await get('/hello.txt', { 'if-unmodified-since': new Date(MTIME.getTime() - 60_000).toUTCString() })).status, 412);
  // HEAD is conditional too
  assert.equal((await get('/hello.txt', { 'if-none-match': etag }, 'HEAD')).status, 304);
});

test('Range: one range -> 206, several -> 200, unsatisfiable -> 416 with Content-Range, malformed ignored', async () => {
  const cases: [string, number, string | undefined, string][] = [
    ['bytes=0-3', 206, 'bytes 0-3/10', '0123'],
    ['bytes=4-', 206, 'bytes 4-9/10', '456789'],
    ['bytes=-3', 206, 'bytes 7-9/10', '789'],
    ['bytes=8-100', 206, 'bytes 8-9/10', '89'],
    ['bytes=-100', 206, 'bytes 0-9/10', '0123456789'],
    ['bytes=0-1,4-5', 200, undefined, '0123456789'],
    ['bytes=0-1, 0-1, 0-1', 200, undefined, '0123456789'],
    ['bytes=5-2', 200, undefined, '0123456789'],
    ['items=0-1', 200, undefined, '0123456789'],
    ['bytes=abc', 200, undefined, '0123456789'],
  ];
  for (const [range, status, contentRange, body] of cases) {
    const r = await get('/digits.txt', { range });
    assert.equal(r.status, status, range);
    assert.equal(r.headers['content-range'], contentRange, range);
    assert.equal(r.body.toString(), body, range);
    assert.equal(r.headers['content-length'], String(body.length), range);
  }
  for (const range of ['bytes=10-', 'bytes=100-200', 'bytes=-0']) {
    const r = await get('/digits.txt', { range });
    assert.equal(r.status, 416, range);
    assert.equal(r.headers['content-range'], 'bytes */10', range);
  }
});

test('If-Range: a matching strong ETag or the exact Last-Modified keeps the range; anything else gets the whole file', async () => {
  const etag = (await get('/digits.txt')).headers.etag!;
  assert.equal((await get('/digits.txt', { range: 'bytes=0-1', 'if-range': etag })).status, 206);
  assert.equal((await get('/digits.txt', { range: 'bytes=0-1', 'if-range': MTIME.toUTCString() })).status, 206);
  const stale = await get('/digits.txt', { range: 'bytes=0-1', 'if-range': '"old"' });
  assert.equal(stale.status, 200);
  assert.equal(stale.body.toString(), '0123456789');
  assert.equal((await get('/digits.txt', { range: 'bytes=0-1', 'if-range': `W/${etag}` })).status, 200, 'a weak validator never matches');
  assert.equal((await get('/digits.txt', { range: 'bytes=0-1', 'if-range': new Date(MTIME.getTime() - 1000).toUTCString() })).status, 200);
  // If-Range that does not match also turns an unsatisfiable range into the full file
  assert.equal((await get('/digits.txt', { range: 'bytes=50-', 'if-range': '"old"' })).status, 200);
});

test('precompressed .br/.gz siblings chosen by Accept-Encoding q-values, with Vary and per-variant ETags', async () => {
  const cases: [string | undefined, string | undefined, string][] = [
    ['br, gzip', 'br', 'BROTLI-BYTES'],
    ['gzip', 'gzip', 'GZIP-BYTES'],
    ['gzip;q=1, br;q=0.5', 'gzip', 'GZIP-BYTES'],
    ['br;q=0, gzip', 'gzip', 'GZIP-BYTES'],
    ['*', 'br', 'BROTLI-BYTES'],
    ['*;q=0.5, br;q=0', 'gzip', 'GZIP-BYTES'],
    ['identity', undefined, 'console.log("identity");\n'],
    ['deflate', undefined, 'console.log("identity");\n'],
    [undefined, undefined, 'console.log("identity");\n'],
  ];
  const etags = new Set<string>();
  for (const [ae, enc, body] of cases) {
    const r = await get('/app.js', ae === undefined ? {} : { 'accept-encoding': ae });
    assert.equal(r.status, 200, String(ae));
    assert.equal(r.headers['content-encoding'], enc, String(ae));
    assert.equal(r.body.toString(), body, String(ae));
    assert.equal(r.headers.vary, 'Accept-Encoding', String(ae));
    assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(r.headers['content-length'], String(body.length));
    etags.add(`${enc}:${r.headers.etag}`);
  }
  assert.equal(new Set([...etags].map((e) => e.split(':')[1])).size, 3, 'identity, br and gzip have distinct ETags');
  // the sibling's ETag validates the sibling
  const br = await get('/app.js', { 'accept-encoding': 'br' });
  assert.equal((await get('/app.js', { 'accept-encoding': 'br', 'if-none-match': br.headers.etag! })).status, 304);
  // a range applies to the chosen sibling's bytes
  const part = await get('/app.js', { 'accept-encoding': 'gzip', range: 'bytes=0-3' });
  assert.equal(part.status, 206);
  assert.equal(part.body.toString(), 'GZIP');
  // compress #false: no sibling lookup, no Vary
  const plain = await get('/plain/../app.js'.replace('/plain/..', '/plain'), { 'accept-encoding': 'br' });
  assert.equal(plain.status, 404, 'the plain route serves /plain/... under its root');
});

test('compress #false serves identity bytes only', async () => {
  // the "plain" route's root is www, and the request path is resolved under it as a whole
  mkdirSync(join(www, 'plain'), { recursive: true });
  put('plain/style.css', CSS);
  put('plain/style.css.gz', gzipSync(CSS));
  const r = await get('/plain/style.css', { 'accept-encoding': 'gzip, br' });
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(r.headers.vary, undefined);
  assert.equal(r.body.toString(), CSS);
});

test('compress #true without a sibling: compressed while streaming (weak ETag, no Content-Length); ranges stay identity', async () => {
  const gz = await get('/style.css', { 'accept-encoding': 'gzip' });
  assert.equal(gz.status, 200);
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(gz.headers['content-length'], undefined);
  assert.match(gz.headers.etag!, /^W\/"/);
  assert.equal(gz.headers.vary, 'Accept-Encoding');
  assert.equal(gunzipSync(gz.body).toString(), CSS);
  assert.ok(gz.body.length < CSS.length / 4);
  // the weak ETag still validates a GET (If-None-Match compares weakly)
  assert.equal((await get('/style.css', { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.etag! })).status, 304);
  const br = await get('/style.css', { 'accept-encoding': 'br;q=1, gzip;q=0.8' });
  assert.equal(br.headers['content-encoding'], 'br');
  const ranged = await get('/style.css', { 'accept-encoding': 'gzip', range: 'bytes=0-3' });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers['content-encoding'], undefined);
  assert.equal(ranged.body.toString(), 'body');
  // small files and non-text types are sent as they are
  assert.equal((await get('/hello.txt', { 'accept-encoding': 'gzip' })).headers['content-encoding'], undefined);
  assert.equal((await get('/t.png', { 'accept-encoding': 'gzip' })).headers['content-encoding'], undefined);
});

test('directories: redirect to the trailing slash (query kept), index file, 403 without index, listing escapes every name', async () => {
  const redirect = await get('/sub?x=1');
  assert.equal(redirect.status, 301);
  assert.equal(redirect.headers.location, '/sub/?x=1');
  const idx = await get('/sub/');
  assert.equal(idx.status, 200);
  assert.equal(idx.body.toString(), '<h1>sub index</h1>\n');
  assert.equal(idx.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal((await get('/')).body.toString(), '<h1>root index</h1>\n');
  assert.equal((await get('/noindex/')).status, 403);
  assert.equal((await get('/hello.txt/')).status, 404, 'a file asked for as a directory');
  const list = await get('/list/');
  assert.equal(list.status, 200);
  const html = list.body.toString();
  assert.ok(!html.includes('<img'), 'no raw markup from file names');
  assert.ok(!html.includes('<b>'), 'no raw markup from directory names');
  assert.ok(html.includes('&lt;img src=x onerror=alert(1)&gt;.txt'));
  assert.ok(html.includes('a&quot;b&amp;c.txt'));
  assert.ok(html.includes('it&#39;s.txt'));
  assert.ok(html.includes('href="%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.txt"'));
  assert.ok(html.includes('&lt;b&gt;dir&lt;b&gt;/'));
  // a listed name can be fetched by its link
  assert.equal((await get('/list/a%22b%26c.txt')).status, 200);
});

test('SPA fallback: a miss serves the fallback file; hits, dotfiles and traversal do not', async () => {
  const miss = await get('/spa/some/client/route');
  // the spa route's root is www/spa and the whole path is resolved under it: /spa/... is a miss there
  assert.equal(miss.status, 200);
  assert.equal(miss.body.toString(), '<h1>spa shell</h1>\n');
  assert.equal(miss.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(miss.headers['cache-control'], 'no-cache');
  const trav = await rawExchange(port, 'GET /spa/%2e%2e/%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.ok(!trav.text.includes(SECRET));
  assert.equal((await get('/nothing-here')).status, 404, 'no fallback configured on the files route');
});

/** Every spelling of "go up out of the root" we know, sent as raw bytes (clients would normalise some). */
const TRAVERSALS = [
  '/../secret.txt',
  '/../../secret.txt',
  '/%2e%2e/secret.txt',
  '/%2E%2E/secret.txt',
  '/.%2e/secret.txt',
  '/%2e./secret.txt',
  '/..%2fsecret.txt',
  '/..%2Fsecret.txt',
  '/%2e%2e%2fsecret.txt',
  '/%252e%252e/secret.txt',
  '/%252e%252e%252fsecret.txt',
  '/..%5csecret.txt',
  '/..%5Csecret.txt',
  '/..\\secret.txt',
  '/%2e%2e%5csecret.txt',
  '/%c0%ae%c0%ae/secret.txt',
  '/%c0%af../secret.txt',
  '/sub/../../secret.txt',
  '/sub/%2e%2e/%2e%2e/secret.txt',
  '//../secret.txt',
  '/./../secret.txt',
  '/..;/secret.txt',
  '/hello.txt%00.html',
  '/%00/../secret.txt',
  '/escape/secret.txt',
  '/leak.txt',
];

test('traversal: every spelling is refused (400/404) and never shows the file outside the root', async () => {
  for (const p of TRAVERSALS) {
    const r = await rawExchange(port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.ok(!r.text.includes(SECRET), `${p} leaked the secret`);
    assert.ok(r.statuses.length === 1 && (r.statuses[0] === 400 || r.statuses[0] === 404), `${p}: ${r.statuses.join(',')}`);
  }
});

test('symlinks: inside the root are followed, leaving the root are 404', async () => {
  assert.equal((await get('/alias.txt')).body.toString(), 'hello, world\n');
  assert.equal((await get('/leak.txt')).status, 404);
  assert.equal((await get('/escape/secret.txt')).status, 404);
  assert.equal((await get('/escape/')).status, 404);
});

test('a file changed, replaced by a symlink or removed right after it was served: the next answer matches the file as it is now', async () => {
  // (resolved paths are reused for up to a second: every read checks the file is still the one resolved)
  put('changing.txt', 'a'.repeat(100));
  const first = await get('/changing.txt');
  assert.equal(first.body.toString(), 'a'.repeat(100));
  // another length
  writeFileSync(join(www, 'changing.txt'), 'b'.repeat(300));
  const longer = await get('/changing.txt');
  assert.equal(longer.body.toString(), 'b'.repeat(300));
  assert.equal(longer.headers['content-length'], '300');
  assert.notEqual(longer.headers.etag, first.headers.etag);
  // the same length, another mtime: new bytes come with new validators
  writeFileSync(join(www, 'changing.txt'), 'c'.repeat(300));
  const later = new Date(MTIME.getTime() + 60_000);
  utimesSync(join(www, 'changing.txt'), later, later);
  const same = await get('/changing.txt');
  assert.equal(same.body.toString(), 'c'.repeat(300));
  assert.equal(same.headers['last-modified'], later.toUTCString());
  assert.notEqual(same.headers.etag, longer.headers.etag);
  // replaced by a symlink leaving the root
  rmSync(join(www, 'changing.txt'));
  symlinkSync(join(base, 'secret.txt'), join(www, 'changing.txt'));
  const swapped = await get('/changing.txt');
  assert.equal(swapped.status, 404);
  assert.ok(!swapped.body.toString().includes(SECRET));
  // removed
  rmSync(join(www, 'changing.txt'));
  assert.equal((await get('/changing.txt')).status, 404);
});

test('dotfiles: hidden by default (404, also in listings), .well-known served, serve-dotfiles #true serves them', async () => {
  assert.equal((await get('/.env')).status, 404);
  assert.equal((await get('/%2eenv')).status, 404);
  assert.equal((await get('/.well-known/acme')).body.toString(), 'challenge-token');
  // route "dot": root is the parent of www, so /dot/... is not a path there; /www/.env is
  const list = await get('/list/');
  assert.ok(!list.body.toString().includes('.env'));
});

test('a route with serve-dotfiles #true serves names starting with a dot', async () => {
  mkdirSync(join(www, 'dot'), { recursive: true });
  put('dot/.hidden', 'visible on request');
  // the "dot" route's root is www/.. and the path /dot/.hidden resolves under it to base/dot/.hidden
  mkdirSync(join(base, 'dot'), { recursive: true });
  writeFileSync(join(base, 'dot', '.hidden'), 'served');
  const r = await get('/dot/.hidden');
  assert.equal(r.status, 200);
  assert.equal(r.body.toString(), 'served');
});

test('a large file streams with bounded memory, and a client leaving mid-body closes the file', async () => {
  const size = 64 * 1024 * 1024;
  writeFileSync(join(www, 'big.bin'), Buffer.alloc(size, 'abcdefgh'));
  // Bounded memory means backpressure: while the client reads nothing, the gateway stops reading
  // the file. What this process holds during such a stall is set against the file's size. (A peak
  // sampled while bytes flow counts chunks the GC has not collected yet: it failed twice on a
  // loaded CI machine at 32.9 MiB with no leak. During a stall only the loopback socket buffers'
  // worth, a few MiB, can be in flight; without backpressure the whole 64 MiB would be queued.)
  const held = () => {
    const m = process.memoryUsage();
    return m.arrayBuffers + m.heapUsed;
  };
  const before = held();
  let received = 0;
  let grownWhileStalled = 0;
  await new Promise<void>((resolve, reject) => {
    const req = http.get(url() + '/big.bin', { agent: false }, (res) => {
      res.on('error', reject);
      res.once('data', (first: Buffer) => {
        received += first.length;
        res.pause();
        setTimeout(() => {
          grownWhileStalled = held() - before;
          res.on('data', (chunk: Buffer) => (received += chunk.length));
          res.once('end', resolve);
          res.resume();
        }, 500);
      });
    });
    req.on('error', reject);
  });
  assert.equal(received, size);
  assert.ok(
    grownWhileStalled < 24 * 1024 * 1024,
    `memory grew by ${(grownWhileStalled / 1048576).toFixed(1)} MiB while a client of a 64 MiB file read nothing`,
  );

  const openFds = () => readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).endsWith('big.bin');
    } catch {
      return false;
    }
  }).length;
  // a client that reads one chunk and leaves
  await new Promise<void>((resolve, reject) => {
    const req = http.get(url() + '/big.bin', { agent: false }, (res) => {
      res.once('data', () => {
        assert.equal(openFds(), 1, 'the file is open while its body streams');
        req.destroy();
        resolve();
      });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
  });
  await until('the file handle to be closed after the client left', () => openFds() === 0);
});

test('curl --compressed decodes a compressed static file end to end', async () => {
  const out = await curl(['-s', '--compressed', url() + '/style.css']);
  assert.equal(out, CSS);
  const headers = await curl(['-s', '--compressed', '-o', '/dev/null', '-D', '-', url() + '/style.css']);
  assert.match(headers, /content-encoding: (gzip|br|deflate)/i);
});

test('a root that does not exist stops the gateway from starting, naming the route', async () => {
  await assert.rejects(
    gatewayFrom(`listeners { listener "http" { address "127.0.0.1:0" } }\nroutes { route "gone" { matches { path-prefix "/" }; static-files { root "${base}/does-not-exist" } } }`),
    /route "gone" > static-files: .*does not exist/,
  );
});
