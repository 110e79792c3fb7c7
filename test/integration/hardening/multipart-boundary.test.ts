// A multipart boundary given as an RFC 2231 parameter (session 19 audit): `boundary*=utf-8''B`,
// continued `boundary*0=`/`boundary*1=`, or beside a plain `boundary=A`. Parsers that decode RFC
// 2231 parameters (werkzeug's parse_options_header, Python's email get_param) split the body on
// B, while the WAF's parser and the gateway's form charset scan read `boundary=` only: with both,
// the WAF saw one uploaded file (content the CRS does not inspect as ARGS) holding the B-parts an
// application reads as fields. The CRS as shipped refused it (920470, the Content-Type format);
// with the protocol rules relaxed as the session 16 audit's set-up does (an operator whose
// application needs odd types), the SQLi in the B-part reached the upstream (200). Such a
// Content-Type is now refused 415 on inspected routes; no browser or common client writes one.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { post, sqli, startCharsetWafGateway, type CharsetWafGateway } from '../../helpers/charset-waf.ts';
import { rawRequest } from '../../helpers/raw-http.ts';

let g: CharsetWafGateway;

before(async () => {
  // the CRS protocol rules an operator relaxes for odd types (parser-differentials.test.ts)
  g = await startCharsetWafGateway({ disabledRules: ['920420', '920450', '920480', '920470', '920340', '920640', '922120', '920120', '920270', '920250'] });
});

after(() => g?.close());

const A = 'outerBoundary1';
const B = 'innerBoundary2';
const fieldsOn = (b: string) => `--${b}\r\nContent-Disposition: form-data; name="q"\r\n\r\n${sqli}\r\n--${b}--\r\n`;
// to a `boundary=A` reader: one file part whose content is the B form
const asFile = `--${A}\r\nContent-Disposition: form-data; name="doc"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n${fieldsOn(B)}\r\n--${A}--\r\n`;

test('an RFC 2231 boundary parameter on an inspected multipart body: 415, never forwarded', async () => {
  const probes: [string, string, string][] = [
    ['boundary= then boundary*=', `multipart/form-data; boundary=${A}; boundary*=utf-8''${B}`, asFile],
    ['boundary*= then boundary=', `multipart/form-data; boundary*=utf-8''${B}; boundary=${A}`, asFile],
    ['boundary*= alone', `multipart/form-data; boundary*=utf-8''${B}`, fieldsOn(B)],
    ['continued boundary*0= boundary*1=', `multipart/form-data; boundary=${A}; boundary*0=inner; boundary*1=Boundary2`, asFile],
    ['upper case BOUNDARY*', `multipart/form-data; boundary=${A}; BOUNDARY*=''${B}`, asFile],
  ];
  const seen = g.upstream.seen.length;
  for (const [what, ct, body] of probes) {
    const r = await rawRequest(g.port, post(ct, Buffer.from(body, 'latin1')), { timeoutMs: 20_000 });
    assert.equal(r.status, 415, `${what}: ${r.status} ${r.body}`);
  }
  assert.equal(g.upstream.seen.length, seen, 'nothing forwarded');
  assert.match(await g.gw.gw.metrics.render(), /sentinel_blocked_requests_total\{reason="multipart_boundary"\} 5/);
});

test('a plain boundary still passes byte for byte, an uploaded file too', async () => {
  const ct = `multipart/form-data; boundary=${A}`;
  for (const body of [Buffer.from(`--${A}\r\nContent-Disposition: form-data; name="q"\r\n\r\nhello\r\n--${A}--\r\n`, 'latin1'), Buffer.from(asFile.replace(sqli, 'hello'), 'latin1')]) {
    const r = await rawRequest(g.port, post(ct, body), { timeoutMs: 20_000 });
    assert.equal(r.status, 200, `${ct}: ${r.body}`);
    assert.deepEqual(g.upstream.seen.at(-1)!.body, body);
  }
});

// A multipart type other than form-data (session 19 audit, the session 16 audit's open finding
// "types with no WAF body processor"): Commons FileUpload (Spring, servlet containers) and Go's
// Request.MultipartReader read form-data parts of any multipart/ type as fields; the WAF parses
// only multipart/form-data as a form. With 920420 (the content-type policy) relaxed the SQLi
// field reached the upstream (200). Such a body with a form-data part is refused 415.
test('form-data parts inside multipart/related or multipart/mixed: 415; an MTOM-style body without them passes', async () => {
  const form = `--${A}\r\nContent-Disposition: form-data; name="q"\r\n\r\n${sqli}\r\n--${A}--\r\n`;
  const seen = g.upstream.seen.length;
  for (const type of ['multipart/related', 'multipart/mixed', 'Multipart/Alternative']) {
    const r = await rawRequest(g.port, post(`${type}; boundary=${A}`, Buffer.from(form, 'latin1')), { timeoutMs: 20_000 });
    assert.equal(r.status, 415, `${type}: ${r.status} ${r.body}`);
  }
  assert.equal(g.upstream.seen.length, seen, 'nothing forwarded');
  const mtom = Buffer.from(`--${A}\r\nContent-Type: application/xop+xml; type="text/xml"\r\nContent-ID: <root>\r\n\r\n<Envelope/>\r\n--${A}\r\nContent-Type: application/octet-stream\r\nContent-ID: <a1>\r\n\r\nbinary\r\n--${A}--\r\n`, 'latin1');
  const r = await rawRequest(g.port, post(`multipart/related; type="application/xop+xml"; boundary=${A}`, mtom), { timeoutMs: 20_000 });
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(g.upstream.seen.at(-1)!.body, mtom);
});
