// The compress filter through a real gateway and a real origin: negotiation by q-value, what is
// never compressed (encoded already, no-transform, small, other types, HEAD, 204/206/304), the
// header edits (Vary, weak ETag, no Content-Length), a large streamed body with bounded memory,
// static files on a route with the filter, and curl --compressed end to end.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliDecompressSync, createGunzip, gunzipSync, gzipSync, inflateSync } from 'node:zlib';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import type { Gateway } from '../../../src/server/gateway.ts';
import { loadConfigText } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/config/diagnostics.ts';
import { pluginValidators } from '../../../src/server/validators.ts';
import { requestBytes, type BytesReply } from '../../helpers/http.ts';

const HTML = `<!DOCTYPE html><html><body>${'<p>hello compression</p>\n'.repeat(400)}</body></html>`;
const BIG_CHUNKS = 512;
const BIG_CHUNK = 64 * 1024; // 32 MiB in total

/** Deterministic, moderately compressible text (hex of a simple LCG). */
function bigChunk(i: number): Buffer {
  const b = Buffer.alloc(BIG_CHUNK);
  let x = i * 2654435761 >>> 0;
  for (let j = 0; j < BIG_CHUNK; j++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[j] = '0123456789abcdef'.charCodeAt((x >>> 16) & 15);
  }
  return b;
}

let bigSent = 0;
const BIG_SET = Array.from({ length: 8 }, (_, i) => bigChunk(i));

let origin: TestUpstream;
let gw: Gateway;
let url: (l?: string) => string;
const www = mkdtempSync(join(tmpdir(), 'sentinel-compress-'));

before(async () => {
  origin = await startUpstream((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!.replace(/^\/j\//, '/');
    const send = (status: number, headers: Record<string, string>, body: string | Buffer) => {
      res.writeHead(status, { 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(body);
    };
    switch (path) {
      case '/html':
        if (req.headers['if-none-match'] === '"v1"') return send(304, { etag: '"v1"' }, '');
        return send(200, { 'content-type': 'text/html; charset=utf-8', etag: '"v1"', 'accept-ranges': 'bytes' }, HTML);
      case '/json':
        return send(200, { 'content-type': 'application/json', vary: 'Origin' }, JSON.stringify({ items: Array.from({ length: 300 }, (_, i) => ({ i, name: `item ${i}` })) }));
      case '/small':
        return send(200, { 'content-type': 'text/html' }, '<p>tiny</p>');
      case '/png':
        return send(200, { 'content-type': 'image/png' }, Buffer.alloc(8192, 1));
      case '/encoded':
        return send(200, { 'content-type': 'text/html', 'content-encoding': 'gzip' }, gzipSync(HTML));
      case '/no-transform':
        return send(200, { 'content-type': 'text/html', 'cache-control': 'public, no-transform' }, HTML);
      case '/partial':
        return send(206, { 'content-type': 'text/html', 'content-range': `bytes 0-2047/${HTML.length}` }, HTML.slice(0, 2048));
      case '/empty':
        res.writeHead(204);
        return res.end();
      case '/chunked': {
        res.writeHead(200, { 'content-type': 'text/plain' });
        let i = 0;
        const next = () => {
          if (i === 8) return res.end();
          res.write(HTML.slice(i * 1000, (i + 1) * 1000));
          i++;
          setTimeout(next, 2);
        };
        return next();
      }
      case '/big': {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(BIG_CHUNKS * BIG_CHUNK) });
        let i = 0;
        bigSent = 0;
        const pump = () => {
          while (i < BIG_CHUNKS) {
            // a few distinct chunks, reused: the origin itself allocates nothing while it sends
            const ok = res.write(BIG_SET[i++ % BIG_SET.length]!);
            bigSent += BIG_CHUNK;
            if (!ok) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      default:
        return send(404, { 'content-type': 'text/plain' }, 'no');
    }
  }, { bufferBody: false });
  for (const dir of ['files', 'files-plain']) {
    mkdirSync(join(www, dir));
    writeFileSync(join(www, dir, 'page.html'), HTML);
    writeFileSync(join(www, dir, 'app.js'), HTML);
    writeFileSync(join(www, dir, 'app.js.br'), 'PRECOMPRESSED-BROTLI');
  }
  ({ gw, url } = await gatewayFrom(`
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
filters {
  filter "c" { type "compress"; algorithms "gzip,br,deflate"; min-size 1024; level 5 }
  filter "only-json" { type "compress"; algorithms "br"; content-types "application/json" }
}
routes {
  route "files-plain" { matches { path-prefix "/files-plain" }; static-files { root "${www}"; compress #false }; filters "c" }
  route "files" { matches { path-prefix "/files" }; static-files { root "${www}" }; filters "c" }
  route "json-only" { matches { path-prefix "/j/" }; upstream "origin"; filters "only-json"; policies { request-headers { rename { } } } }
  route "proxy" { matches { path-prefix "/" }; upstream "origin"; filters "c" }
}
upstreams { upstream "origin" { target "${origin.address}" } }
`));
});

after(async () => {
  await gw?.close();
  await origin?.close();
});

type Got = BytesReply;
const get = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> => requestBytes(url() + path, { method, headers });

function decode(r: Got): string {
  const ce = r.headers['content-encoding'];
  if (ce === 'gzip') return gunzipSync(r.body).toString();
  if (ce === 'br') return brotliDecompressSync(r.body).toString();
  if (ce === 'deflate') return inflateSync(r.body).toString();
  return r.body.toString();
}

test('the compress feature is registered when a filter uses it', () => {
  assert.ok(gw.current.features.includes('compress'));
});

test('negotiation table: the coding follows Accept-Encoding q-values and the filter order (gzip,br,deflate)', async () => {
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['identity', undefined],
    ['gzip', 'gzip'],
    ['br', 'br'],
    ['deflate', 'deflate'],
    ['gzip, br', 'gzip'],
    ['br, gzip;q=0.9', 'br'],
    ['gzip;q=0.2, deflate;q=0.5', 'deflate'],
    ['*', 'gzip'],
    ['*;q=0.1, br', 'br'],
    ['gzip;q=0, *', 'br'],
    ['*;q=0', undefined],
    ['identity;q=0', undefined],
    ['identity;q=0, br', 'br'],
    ['zstd', undefined],
    ['x-gzip', 'gzip'],
  ];
  for (const [ae, want] of cases) {
    const r = await get('/html', ae === undefined ? {} : { 'accept-encoding': ae });
    assert.equal(r.status, 200, String(ae));
    assert.equal(r.headers['content-encoding'], want, String(ae));
    assert.equal(r.headers.vary, 'Accept-Encoding', String(ae));
    assert.equal(decode(r), HTML, String(ae));
    if (want) {
      assert.equal(r.headers['content-length'], undefined, 'Content-Length removed');
      assert.equal(r.headers.etag, 'W/"v1"', 'strong ETag made weak');
      assert.equal(r.headers['accept-ranges'], undefined);
      assert.ok(r.body.length < HTML.length / 5);
    } else {
      assert.equal(r.headers['content-length'], String(HTML.length));
      assert.equal(r.headers.etag, '"v1"');
    }
  }
});

test('Vary is merged with the upstream\'s; content-types narrows what is compressed', async () => {
  const r = await get('/json', { 'accept-encoding': 'gzip' });
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.equal(r.headers.vary, 'Origin, Accept-Encoding');
  const onlyJson = await get('/j/json', { 'accept-encoding': 'gzip, br' });
  assert.equal(onlyJson.headers['content-encoding'], 'br');
  const htmlNotListed = await get('/j/html', { 'accept-encoding': 'br' });
  assert.equal(htmlNotListed.status, 200);
});

test('never compressed: already encoded, no-transform, below min-size, other types, 206, 204, 304, HEAD', async () => {
  const ae = { 'accept-encoding': 'gzip, br' };
  const enc = await get('/encoded', ae);
  assert.equal(enc.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(enc.body).toString(), HTML, 'no double compression: one gunzip gives the page');
  assert.equal(enc.headers.vary, undefined);
  const nt = await get('/no-transform', ae);
  assert.equal(nt.headers['content-encoding'], undefined);
  assert.equal(nt.body.toString(), HTML);
  const small = await get('/small', ae);
  assert.equal(small.headers['content-encoding'], undefined);
  assert.equal(small.headers.vary, 'Accept-Encoding', 'eligible type: the answer depends on Accept-Encoding');
  const png = await get('/png', ae);
  assert.equal(png.headers['content-encoding'], undefined);
  assert.equal(png.headers.vary, undefined);
  assert.equal(png.body.length, 8192);
  const partial = await get('/partial', ae);
  assert.equal(partial.status, 206);
  assert.equal(partial.headers['content-encoding'], undefined);
  assert.equal(partial.body.toString(), HTML.slice(0, 2048));
  assert.equal((await get('/empty', ae)).status, 204);
  const nm = await get('/html', { ...ae, 'if-none-match': '"v1"' });
  assert.equal(nm.status, 304);
  assert.equal(nm.headers['content-encoding'], undefined);
  const head = await get('/html', ae, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-encoding'], undefined);
  assert.equal(head.headers.vary, 'Accept-Encoding');
});

test('a chunked upstream body (no Content-Length) is compressed as it streams', async () => {
  const r = await get('/chunked', { 'accept-encoding': 'gzip' });
  assert.equal(r.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(r.body).toString(), HTML.slice(0, 8000));
});

test('a 32 MiB body streams through the encoder: a paused client holds the origin back, memory stays bounded', async () => {
  // live memory, not garbage: collect before measuring (gc exposed at run time)
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage();
  let whilePaused = { originSent: 0, liveBytes: 0 };
  const { decoded, encoded } = await new Promise<{ decoded: number; encoded: number }>((resolve, reject) => {
    http.get(url() + '/big', { agent: false, headers: { 'accept-encoding': 'gzip' } }, (res) => {
      if (res.headers['content-encoding'] !== 'gzip') return reject(new Error('not compressed'));
      let encoded = 0;
      let decoded = 0;
      const gunzip = createGunzip();
      res.once('data', () => {
        // the client stops reading for a while: backpressure must reach the origin
        res.pause();
        // several collected samples while paused, the smallest kept: backing stores of freed
        // buffers are swept concurrently, so one sample can still count garbage
        const samples: number[] = [];
        const sample = () => {
          gc();
          const m = process.memoryUsage();
          samples.push(m.arrayBuffers + m.heapUsed - before.arrayBuffers - before.heapUsed);
          if (samples.length < 4) return void setTimeout(sample, 100);
          whilePaused = { originSent: bigSent, liveBytes: Math.min(...samples) };
          res.resume();
        };
        setTimeout(sample, 500);
      });
      res.on('data', (c: Buffer) => (encoded += c.length));
      gunzip.on('data', (c: Buffer) => (decoded += c.length));
      gunzip.on('end', () => resolve({ decoded, encoded }));
      gunzip.on('error', reject);
      res.pipe(gunzip);
    }).on('error', reject);
  });
  assert.equal(decoded, BIG_CHUNKS * BIG_CHUNK);
  assert.ok(encoded < decoded, 'it was compressed');
  // Not asserted: how much the origin sent. Loopback socket buffers hold several MiB on each of
  // the four hops (twice that in origin bytes after compression), enough for all 32 MiB; the
  // gateway's own live memory is the signal that it did not buffer the body.
  assert.ok(whilePaused.liveBytes < 12 * 1024 * 1024, `live memory grew by ${(whilePaused.liveBytes / 1048576).toFixed(1)} MiB while the client was paused`);
});

test('static files: the filter compresses a file served as identity, never a precompressed sibling or a range', async () => {
  // route "files-plain": static-files compress #false, so the filter does the work
  const plain = await get('/files-plain/page.html', { 'accept-encoding': 'gzip' });
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(plain.body).toString(), HTML);
  assert.match(plain.headers.etag!, /^W\//);
  const plainSib = await get('/files-plain/app.js', { 'accept-encoding': 'br' });
  assert.equal(plainSib.headers['content-encoding'], 'br');
  assert.equal(brotliDecompressSync(plainSib.body).toString(), HTML, 'compress #false ignores siblings; the filter encodes the file');
  // route "files": static-files compress #true picks the sibling; the filter leaves it alone
  const sib = await get('/files/app.js', { 'accept-encoding': 'br, gzip' });
  assert.equal(sib.headers['content-encoding'], 'br');
  assert.equal(sib.body.toString(), 'PRECOMPRESSED-BROTLI', 'the sibling is sent as it is, not compressed again');
  const live = await get('/files/page.html', { 'accept-encoding': 'gzip' });
  assert.equal(live.headers['content-encoding'], 'gzip');
  assert.equal(gunzipSync(live.body).toString(), HTML, 'compressed once (by static-files), not twice');
  const ranged = await get('/files-plain/page.html', { 'accept-encoding': 'gzip', range: 'bytes=0-9' });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers['content-encoding'], undefined);
  assert.equal(ranged.body.toString(), HTML.slice(0, 10));
});

test('curl --compressed through the proxy decodes to the origin bytes', async (t) => {
  const { execFile } = await import('node:child_process');
  const run = (args: string[]) =>
    new Promise<string | undefined>((resolve) => execFile('curl', args, { encoding: 'utf8', maxBuffer: 1 << 22 }, (err, stdout) => resolve(err ? undefined : stdout)));
  if ((await run(['--version'])) === undefined) {
    // as the browser test does: on CI a missing tool is a failure, not a skip that looks like a pass
    assert.ok(!process.env.CI, 'curl is missing (scripts/setup.sh installs it)');
    process.stderr.write('\n*** SKIPPING the curl --compressed test: curl is missing; install it with: apt-get install -y curl (scripts/setup.sh does) ***\n\n');
    t.skip('curl not available');
    return;
  }
  assert.equal(await run(['-s', '--compressed', url() + '/html']), HTML);
  assert.match((await run(['-s', '--compressed', '-o', '/dev/null', '-D', '-', url() + '/html'])) ?? '', /content-encoding: (gzip|br|deflate)/i);
});

test('config: unknown algorithms are errors, zstd a warning, content-types checked', () => {
  const cfg = (filter: string) => `listeners { listener "http" { address "127.0.0.1:0" } }
filters { filter "c" { type "compress"; ${filter} } }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; filters "c" } }
upstreams { upstream "u" { target "127.0.0.1:1" } }`;
  const load = (f: string) => loadConfigText(cfg(f), { validators: pluginValidators });
  assert.throws(() => load('algorithms "gzip,lzma"'), (err: unknown) => err instanceof ConfigError && /unknown algorithm "lzma"/.test(String(err.message)));
  assert.throws(() => load('level 12'), ConfigError);
  assert.throws(() => load('content-types "html"'), (err: unknown) => err instanceof ConfigError && /not a media type/.test(String(err.message)));
  const c = load('algorithms "zstd,brotli,gzip"');
  assert.ok(c.warnings.some((w) => /zstd/.test(w.message)));
  assert.ok(!c.warnings.some((w) => /not implemented/.test(w.message)));
  assert.throws(() => load('algorithms "zstd"'), (err: unknown) => err instanceof ConfigError && /no usable algorithm/.test(String(err.message)));
});
