import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { StreamingDecoder, contentCodings, decompressBounded, extendedBoundary, formFieldsOutsideFormData, isInspectedContentType, readBody, unreadableCharset, unreadableFormCharset } from '../../../plugins/agents/body-inspection.ts';
import { DEFAULT_INSPECTED_CONTENT_TYPES } from '../../../plugins/agents/definition.ts';

const json = Buffer.from(JSON.stringify({ user: 'alice', items: Array.from({ length: 50 }, (_, i) => ({ id: i, name: `item ${i}` })) }));
const limits = { maxRatio: 100, maxBytes: 10 * 1024 * 1024 };

test('gzip, deflate (zlib and raw) and br decode to the original bytes', async () => {
  const cases: [string, Buffer][] = [
    ['gzip', gzipSync(json)],
    ['x-gzip', gzipSync(json)],
    ['deflate', deflateSync(json)],
    ['deflate', deflateRawSync(json)],
    ['br', brotliCompressSync(json)],
  ];
  for (const [enc, data] of cases) {
    const r = await decompressBounded(data, [enc], limits);
    assert.ok(r.ok, enc);
    assert.deepEqual(r.data, json, enc);
  }
});

test('stacked codings are undone last-applied first', async () => {
  const data = brotliCompressSync(gzipSync(json));
  const r = await decompressBounded(data, contentCodings('gzip, br'), limits);
  assert.ok(r.ok);
  assert.deepEqual(r.data, json);
});

test('a decompression bomb stops at the ratio cap or the absolute cap', async () => {
  const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024)); // ~64 KiB compressed, ratio ~1000
  const byRatio = await decompressBounded(bomb, ['gzip'], { maxRatio: 100, maxBytes: 1024 * 1024 * 1024 });
  assert.deepEqual(byRatio, { ok: false, reason: 'ratio_exceeded', encoding: 'gzip' });
  const bySize = await decompressBounded(bomb, ['gzip'], { maxRatio: 1e9, maxBytes: 1024 * 1024 });
  assert.deepEqual(bySize, { ok: false, reason: 'size_exceeded', encoding: 'gzip' });
});

test('corrupt and unsupported encodings are reported', async () => {
  assert.deepEqual(await decompressBounded(Buffer.from('not gzip at all'), ['gzip'], limits), { ok: false, reason: 'corrupt', encoding: 'gzip' });
  const truncated = gzipSync(json).subarray(0, 20);
  assert.equal((await decompressBounded(truncated, ['gzip'], limits)).ok, false);
  assert.deepEqual(await decompressBounded(json, ['zstd'], limits), { ok: false, reason: 'unsupported', encoding: 'zstd' });
});

test('content codings parse', () => {
  assert.deepEqual(contentCodings(undefined), []);
  assert.deepEqual(contentCodings('identity'), []);
  assert.deepEqual(contentCodings('GZIP'), ['gzip']);
  assert.deepEqual(contentCodings(['gzip', 'br']), ['br', 'gzip']);
});

test('content-type allowlist matches by prefix, ignoring parameters and case', () => {
  const table: [string | undefined, boolean][] = [
    ['application/json', true],
    ['Application/JSON; charset=utf-8', true],
    ['application/x-www-form-urlencoded', true],
    ['multipart/form-data; boundary=x', true],
    ['text/xml', true],
    ['application/xml', true],
    ['image/png', false],
    ['text/plain', false],
    [undefined, false],
    // structured-syntax suffixes with their base type listed (session 24 WAF evasion audit)
    ['application/vnd.api+json', true],
    ['application/cloudevents+json; charset=utf-8', true],
    ['Application/SOAP+XML', true],
    ['application/atom+xml', true],
    ['image/svg+xml', false],
    ['application/+json', false],
    ['application/x+json+zip', false],
  ];
  for (const [ct, want] of table) assert.equal(isInspectedContentType(ct, DEFAULT_INSPECTED_CONTENT_TYPES), want, String(ct));
  assert.equal(isInspectedContentType('application/vnd.api+json', ['multipart/form-data']), false, 'only when the base type is listed');
});

test('readBody buffers everything, stops past the limit, and lets stream mode see chunks', async () => {
  const parts = [Buffer.from('ab'), Buffer.from('cd'), Buffer.from('ef')];
  const seen: string[] = [];
  const ok = await readBody(Readable.from(parts), 100, new AbortController().signal, async (c) => {
    seen.push(c.toString());
  });
  assert.deepEqual(ok, { ok: true, body: Buffer.from('abcdef') });
  // small chunks that arrive together (one socket read) are seen as one (session 24 audit)
  assert.deepEqual(seen, ['abcdef']);
  seen.length = 0;
  const apart = Readable.from((async function* () {
    for (const p of parts) {
      yield p;
      await new Promise((r) => setTimeout(r, 1));
    }
  })());
  assert.deepEqual(await readBody(apart, 100, new AbortController().signal, async (c) => void seen.push(c.toString())), { ok: true, body: Buffer.from('abcdef') });
  assert.deepEqual(seen, ['ab', 'cd', 'ef']);
  const large = Buffer.alloc(1024, 'x');
  seen.length = 0;
  assert.equal((await readBody(Readable.from([Buffer.from('a'), large, Buffer.from('b')]), 2000, new AbortController().signal, async (c) => void seen.push(c.toString()))).ok, true);
  assert.deepEqual(seen, [`a${large.toString()}`, 'b'], 'what was gathered goes with the next chunk that fills SMALL_CHUNK');
  const big = await readBody(Readable.from(parts), 3, new AbortController().signal);
  assert.deepEqual(big, { ok: false, reason: 'too_large', received: 4 });
  const stopped = await readBody(Readable.from(parts), 100, new AbortController().signal, () => Promise.reject(new Error('blocked')));
  assert.equal(stopped.ok, false);
});

test('StreamingDecoder: chunk by chunk, the decoded pieces add up to the original (gzip, deflate, br)', async () => {
  const big = Buffer.from(JSON.stringify({ rows: Array.from({ length: 2000 }, (_, i) => ({ i, s: `row ${i}` })) }));
  const cases: [string, Buffer][] = [
    ['gzip', gzipSync(big)],
    ['deflate', deflateSync(big)],
    ['br', brotliCompressSync(big)],
  ];
  for (const [enc, data] of cases) {
    const d = StreamingDecoder.for([enc], limits)!;
    const parts: Buffer[] = [];
    const step = Math.ceil(data.length / 5);
    for (let off = 0; off < data.length; off += step) {
      const last = off + step >= data.length;
      const r = await d.push(data.subarray(off, off + step), last);
      assert.ok(r.ok, enc);
      parts.push(r.data);
    }
    assert.ok(parts.slice(0, -1).some((p) => p.length > 0), `${enc}: output before the end`);
    assert.deepEqual(Buffer.concat(parts), big, enc);
  }
});

test('StreamingDecoder: bombs stop at the cap, corrupt input fails, stacked/unknown codings are not streamed', async () => {
  const bomb = gzipSync(Buffer.alloc(32 * 1024 * 1024));
  const d = StreamingDecoder.for(['gzip'], limits)!;
  let r = await d.push(bomb.subarray(0, 4096), false);
  for (let off = 4096; r.ok && off < bomb.length; off += 4096) r = await d.push(bomb.subarray(off, off + 4096), off + 4096 >= bomb.length);
  assert.deepEqual(r, { ok: false, reason: 'ratio_exceeded' });
  const small = StreamingDecoder.for(['gzip'], { maxRatio: 1000, maxBytes: 100_000 })!;
  const s = await small.push(gzipSync(Buffer.alloc(1_000_000)), true);
  assert.deepEqual(s, { ok: false, reason: 'size_exceeded' });
  const bad = StreamingDecoder.for(['gzip'], limits)!;
  assert.deepEqual(await bad.push(Buffer.from('definitely not gzip'), true), { ok: false, reason: 'corrupt' });
  assert.equal(StreamingDecoder.for(['gzip', 'br'], limits), undefined);
  assert.equal(StreamingDecoder.for(['zstd'], limits), undefined);
});

test('unreadableCharset: charsets the agents read as the application does pass, any other is named', () => {
  const cases: [string | undefined, string | undefined][] = [
    [undefined, undefined],
    ['application/x-www-form-urlencoded', undefined],
    ['application/json; charset=utf-8', undefined],
    ['application/json; charset=UTF-8', undefined],
    ['application/json;charset="utf-8"', undefined],
    ['text/plain; charset=us-ascii', undefined],
    ['application/x-www-form-urlencoded; charset=ISO-8859-1', undefined],
    ['application/x-www-form-urlencoded; charset=latin1', undefined],
    ['application/x-www-form-urlencoded; charset=windows-1252', undefined],
    ['application/x-www-form-urlencoded; charset=iso-8859-15', undefined],
    ['multipart/form-data; boundary=x=y', undefined],
    ['application/x-www-form-urlencoded; charset=ibm037', 'ibm037'],
    ['application/x-www-form-urlencoded; charset=IBM500', 'ibm500'],
    ['application/x-www-form-urlencoded; charset=utf-7', 'utf-7'],
    ['application/x-www-form-urlencoded; charset=utf-16', 'utf-16'],
    ['application/json; charset=utf-32le', 'utf-32le'],
    ['application/x-www-form-urlencoded; charset=shift_jis', 'shift_jis'],
    ['application/x-www-form-urlencoded; charset="cp037"', 'cp037'],
    ['application/x-www-form-urlencoded; CHARSET = ibm037', 'ibm037'],
    ['application/x-www-form-urlencoded; charset=', '(empty)'],
    // two charsets: whichever a parser takes, both must be readable
    ['application/x-www-form-urlencoded; charset=utf-8; charset=ibm037', 'ibm037'],
    ['application/x-www-form-urlencoded; charset=ibm037; charset=utf-8', 'ibm037'],
    ["application/x-www-form-urlencoded; charset*=utf-8''ibm037", 'ibm037'],
    ["application/x-www-form-urlencoded; charset*=utf-8''utf-8", undefined],
    // spaces inside the quotes are trimmed; after an RFC 2231 prefix they are not (no parser reads ' utf-8' as UTF-8)
    ['application/x-www-form-urlencoded; charset=" IBM037 "', 'ibm037'],
    ['application/x-www-form-urlencoded; charset=" utf-8 "', undefined],
    ["application/x-www-form-urlencoded; charset*=utf-8'' utf-8", ' utf-8'],
    // RFC 2231 escapes and continuations (Python's email package and werkzeug join the pieces)
    ["application/x-www-form-urlencoded; charset*=utf-8''%69bm037", 'ibm037'],
    ['application/x-www-form-urlencoded; charset*0=ibm; charset*1=037', 'ibm037'],
    ["application/x-www-form-urlencoded; charset*0*=utf-8''utf%2D; charset*1=8", undefined],
    ['application/x-www-form-urlencoded; charset=utf-8; charset*0="utf-16"', 'utf-16'],
    ['application/x-www-form-urlencoded; charsets=ibm037', undefined],
  ];
  for (const [ct, expected] of cases) assert.equal(unreadableCharset(ct), expected, String(ct));
});

test('unreadableFormCharset: part charsets and _charset_ fields, part headers only', () => {
  const mp = (...parts: string[]) => Buffer.from(parts.map((p) => `--b\r\n${p}\r\n`).join('') + '--b--\r\n', 'latin1');
  const MP = 'multipart/form-data; boundary="b"';
  const cases: [string | undefined, Buffer, string | undefined][] = [
    [undefined, mp('Content-Type: text/plain; charset=utf-16\r\n\r\nx'), undefined],
    ['application/json', Buffer.from('{"_charset_":"utf-7"}'), undefined],
    [MP, mp('Content-Disposition: form-data; name="q"\r\n\r\nx'), undefined],
    [MP, mp('Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nx'), undefined],
    [MP, mp('Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain; charset=utf-16\r\n\r\nx'), 'utf-16'],
    [MP, mp('CONTENT-TYPE : text/plain; charset="ibm037"\r\n\r\nx'), 'ibm037'],
    // LF-only lines (a lax parser's reading)
    [MP, Buffer.from('--b\nContent-Type: text/plain; charset=utf-7\n\nx\n--b--\n'), 'utf-7'],
    [MP, mp('Content-Disposition: form-data; name="_charset_"\r\n\r\nShift_JIS'), 'shift_jis'],
    [MP, mp('Content-Disposition: form-data; name=_charset_\r\n\r\n utf-8 '), undefined],
    [MP, mp('Content-Disposition: form-data; name="_charset_x"\r\n\r\nibm037'), undefined],
    // RFC 2231 names (charset'language'percent-encoded, continuations), next to a plain name or not
    [MP, mp("Content-Disposition: form-data; name*=utf-8''_charset_\r\n\r\nibm037"), 'ibm037'],
    [MP, mp("Content-Disposition: form-data; name=\"q\"; NAME*=UTF-8'en'%5Fcharset%5f\r\n\r\nutf-7"), 'utf-7'],
    [MP, mp("Content-Disposition: form-data; name*0*=utf-8''%5Fchar; name*1=set_\r\n\r\nutf-16"), 'utf-16'],
    [MP, mp('Content-Disposition: form-data; name*0="_cha"; name*1="rset_"\r\n\r\nshift_jis'), 'shift_jis'],
    [MP, mp("Content-Disposition: form-data; name*=utf-8''_charset_\r\n\r\nUTF-8"), undefined],
    [MP, mp("Content-Disposition: form-data; name*=utf-8''%5Fcharset%5Fx\r\n\r\nibm037"), undefined],
    [MP, mp("Content-Disposition: form-data; filename*=utf-8''_charset_; name=\"f\"\r\n\r\nibm037"), undefined],
    // folded header lines (obs-fold) continue the header before them
    [MP, mp('Content-Disposition: form-data; name="q"\r\nContent-Type: text/plain;\r\n charset=ibm037\r\n\r\nx'), 'ibm037'],
    [MP, mp('Content-Type: text/plain;\r\n\tcharset=utf-8\r\nContent-Disposition: form-data;\r\n name="_charset_"\r\n\r\nutf-7'), 'utf-7'],
    [MP, mp('Content-Disposition: form-data; name="q"\r\n charset=ibm037\r\n\r\nx'), undefined],
    // content that looks like headers is content
    [MP, mp('Content-Disposition: form-data; name="m"\r\n\r\nContent-Type: text/plain; charset=utf-16'), undefined],
    // no boundary, or unterminated: nothing to read (the WAF refuses a broken multipart)
    ['multipart/form-data', mp('Content-Type: text/plain; charset=utf-16\r\n\r\nx'), undefined],
    // the boundary parameter's name in any case; its value as written (case kept), quoted or not
    ['multipart/form-data; BOUNDARY=b', mp('Content-Type: text/plain; charset=utf-16\r\n\r\nx'), 'utf-16'],
    ['multipart/form-data; charset=utf-8; boundary="B"', mp('Content-Type: text/plain; charset=utf-16\r\n\r\nx'), undefined],
    ['application/x-www-form-urlencoded', Buffer.from('a=1&_charset_=utf-7&b=2'), 'utf-7'],
    ['application/x-www-form-urlencoded; charset=utf-8', Buffer.from('_charset_=UTF-8&q=x'), undefined],
    ['application/x-www-form-urlencoded', Buffer.from('x_charset_=utf-7'), undefined],
    ['application/x-www-form-urlencoded', Buffer.from('_charset_=%ZZ'), '(undecodable)'],
    ['application/x-www-form-urlencoded', Buffer.from('q=1&%5Fcharset%5F=utf%2D7'), 'utf-7'],
    ['application/x-www-form-urlencoded', Buffer.from('a%ZZ=1&q=%41'), undefined],
  ];
  for (const [ct, body, expected] of cases) assert.equal(unreadableFormCharset(ct, body), expected, `${ct} ${body.toString('latin1')}`);
});

test('extendedBoundary: an RFC 2231 boundary parameter on a multipart type (session 19 audit)', () => {
  for (const ct of ["multipart/form-data; boundary*=utf-8''b", "Multipart/Mixed; boundary=a; BOUNDARY*=''b", 'multipart/form-data; boundary=a; boundary*0=b; boundary*1=c', "multipart/form-data; boundary* = utf-8''b"]) {
    assert.equal(extendedBoundary(ct), true, ct);
  }
  for (const ct of [undefined, 'multipart/form-data; boundary=a*b', 'multipart/form-data; boundary="a*b"', "application/json; boundary*=''b", "multipart/form-data; boundary=a; name*=utf-8''x"]) {
    assert.equal(extendedBoundary(ct), false, String(ct));
  }
});

test('formFieldsOutsideFormData: form-data parts under another multipart type (session 19 audit)', () => {
  // one part, these header lines
  const b = (headers: string[]) => Buffer.from(`--x\r\n${headers.join('\r\n')}\r\n\r\nv\r\n--x--\r\n`, 'latin1');
  const field = 'Content-Disposition: form-data; name="q"';
  assert.equal(formFieldsOutsideFormData('multipart/related; boundary=x', b([field])), true);
  assert.equal(formFieldsOutsideFormData('multipart/mixed; boundary=x', b(['Content-Type: text/plain', 'content-disposition:FORM-DATA;name=q'])), true);
  // a folded disposition is one header
  assert.equal(formFieldsOutsideFormData('multipart/mixed; boundary=x', b(['Content-Disposition:', ' form-data; name="q"'])), true);
  assert.equal(formFieldsOutsideFormData('multipart/form-data; boundary=x', b([field])), false);
  assert.equal(formFieldsOutsideFormData('multipart/related; boundary=x', b(['Content-ID: <root>', 'Content-Disposition: attachment; filename="a"'])), false);
  assert.equal(formFieldsOutsideFormData('application/json', b([field])), false);
  // part content that looks like a form-data header is content
  assert.equal(formFieldsOutsideFormData('multipart/mixed; boundary=x', Buffer.from(`--x\r\nContent-Type: message/rfc822\r\n\r\n${field}\r\n--x--\r\n`, 'latin1')), false);
});
