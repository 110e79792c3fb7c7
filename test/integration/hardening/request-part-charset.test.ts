// A charset inside an inspected form body (session 18 audit; open finding of the session 17
// audit): the 415 `unsupported_charset` read only the request's own Content-Type, while Apache
// Commons FileUpload (`FileItem.getString()`), servlet containers and others decode a multipart
// part with its own `Content-Type: ...; charset=`, and some servers take a form's charset from a
// `_charset_` field. The in-process WAF (CRS at PL1, with the CRS charset rules 920480, 922100
// and 922110 relaxed, as an operator whose application needs another charset would) read the
// part's EBCDIC or UTF-16 bytes as sent and let the attack through. The gateway now refuses such
// a body 415 before any agent decides; part content that merely looks like headers passes.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { ibm037, post, sqli, startCharsetWafGateway, type CharsetWafGateway } from '../../helpers/charset-waf.ts';
import { rawRequest } from '../../helpers/raw-http.ts';
import type { TestUpstream } from '../../helpers/upstream.ts';

let g: CharsetWafGateway;
let upstream: TestUpstream;
let gw: CharsetWafGateway['gw'];
let port: number;

const B = 'xYzBoundary42';

function part(headers: string[], content: Buffer | string): Buffer {
  return Buffer.concat([Buffer.from(`--${B}\r\n${headers.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(content as Buffer), Buffer.from('\r\n', 'latin1')]);
}
const multipart = (...parts: Buffer[]) => Buffer.concat([...parts, Buffer.from(`--${B}--\r\n`, 'latin1')]);

before(async () => {
  g = await startCharsetWafGateway({ disabledRules: ['920480', '922100', '922110'] });
  ({ upstream, gw, port } = g);
});

after(() => g?.close());

const MP = `multipart/form-data; boundary=${B}`;

test("a multipart part's own charset, or a _charset_ field, that the agents cannot read: 415, never forwarded", async () => {
  const probes: [string, string, Buffer][] = [
    ['part charset=ibm037', MP, multipart(part(['Content-Disposition: form-data; name="q"', 'Content-Type: text/plain; charset=ibm037'], ibm037(sqli)))],
    ['part charset=utf-16le', MP, multipart(part(['Content-Disposition: form-data; name="q"', 'Content-Type: text/plain; charset=UTF-16LE'], Buffer.from(sqli, 'utf16le')))],
    ['part charset, quoted, second header', MP, multipart(part(['content-disposition: form-data; name="a"'], 'x'), part(['Content-Disposition: form-data; name="q"', 'content-type: text/plain;charset="cp037"'], ibm037(sqli)))],
    ['_charset_ field', MP, multipart(part(['Content-Disposition: form-data; name="_charset_"'], 'IBM037'), part(['Content-Disposition: form-data; name="q"'], ibm037(sqli)))],
    // an RFC 2231 name (session 18 audit's open finding): undici's Request.formData() reads `name*`
    // over `name`, so this field is `_charset_` to it and `q` to the WAF's parser
    ['_charset_ field named name*=', MP, multipart(part(["Content-Disposition: form-data; name=\"q\"; name*=utf-8''%5Fcharset%5F"], 'ibm037'), part(['Content-Disposition: form-data; name="q"'], ibm037(sqli)))],
    // a folded part header (obs-fold): Commons FileUpload unfolds it into `charset=ibm037`. The
    // in-process WAF already refused it 400 (multipart header folding is a strict error); agents
    // without that check did not, so the scan unfolds and the answer is the 415 of the others
    ['folded part charset', MP, multipart(part(['Content-Disposition: form-data; name="q"', 'Content-Type: text/plain;', ' charset=ibm037'], ibm037(sqli)))],
    ['urlencoded _charset_', 'application/x-www-form-urlencoded', Buffer.concat([Buffer.from('_charset_=ibm037&q=', 'latin1'), ibm037(sqli)])],
  ];
  const before = upstream.seen.length;
  for (const [what, ct, body] of probes) {
    const r = await rawRequest(port, post(ct, body), { timeoutMs: 20_000 });
    assert.equal(r.status, 415, `${what}: ${r.status} ${r.body}`);
  }
  assert.equal(upstream.seen.length, before, 'nothing forwarded');
  assert.match(await gw.gw.metrics.render(), /sentinel_blocked_requests_total\{reason="unsupported_charset"\} 7/);
});

test('readable part charsets, and part content that only looks like part headers, pass byte for byte', async () => {
  const bodies = [
    multipart(part(['Content-Disposition: form-data; name="q"', 'Content-Type: text/plain; charset=utf-8'], 'hello')),
    multipart(part(['Content-Disposition: form-data; name="_charset_"'], 'UTF-8'), part(['Content-Disposition: form-data; name="q"'], 'hello')),
    // an uploaded e-mail: its own headers are content, not part headers
    multipart(part(['Content-Disposition: form-data; name="mail"; filename="m.eml"', 'Content-Type: message/rfc822'], 'Subject: hi\r\nContent-Type: text/plain; charset=utf-16\r\n\r\nbody')),
  ];
  for (const body of bodies) {
    const r = await rawRequest(port, post(MP, body), { timeoutMs: 20_000 });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(upstream.seen.at(-1)!.body, body);
  }
  assert.equal((await rawRequest(port, post('application/x-www-form-urlencoded', Buffer.from('_charset_=UTF-8&q=hello')), { timeoutMs: 20_000 })).status, 200);
});
