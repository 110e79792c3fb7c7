// WAF evasion (docs/security.md, "Session 23 WAF evasion audit"): attacks the CRS blocks in their
// plain shape, re-shaped so the WAF might read the request differently from the upstream. Real
// gateways on loopback with the in-process WAF (CRS PL1), a recording upstream, exact bytes over a
// socket (node:http2 for HTTP/2 bodies without content-length).
//
// Set-ups as in parser-differentials.test.ts: `strict` is the CRS as shipped; `relaxed` disables
// the CRS protocol rules that refuse odd framing, types, charsets and headers outright, so the
// body processors must find the attack themselves.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';

import { BROWSER_UA, leakedProbes, probeRequest as req, probeStatus as status, RELAXED_RULES, startProbeGateway as start, wafConfig as config } from '../../helpers/waf-probes.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

const sqli = "1' OR '1'='1' UNION SELECT password FROM users--";
const MP = 'Content-Type: multipart/form-data; boundary=BND';
const FORM = 'Content-Type: application/x-www-form-urlencoded';
const JS = 'Content-Type: application/json';
/** one form-data part named q with `params` after its name, then the final delimiter */
const mp = (params: string, value: string, headers = ''): string => `--BND\r\nContent-Disposition: form-data; name="q"${params}\r\n${headers}\r\n${value}\r\n--BND--\r\n`;

/** Each must be refused (4xx) and never reach the upstream, under both set-ups. */
function attacks(): [string, Buffer][] {
  const a: [string, Buffer][] = [];
  const add = (name: string, bytes: Buffer) => a.push([name, bytes]);
  add('multipart field (the plain shape)', req('POST', '/x', [MP], mp('', sqli)));
  // busboy (multer, @fastify/multipart) and Go's ParseMultipartForm read these as fields: fixed
  add('multipart filename=""', req('POST', '/x', [MP], mp('; filename=""', sqli)));
  add('multipart filename="" with a part Content-Type', req('POST', '/x', [MP], mp('; filename=""', sqli, 'Content-Type: text/plain\r\n')));
  add('multipart filename= (unquoted, empty)', req('POST', '/x', [MP], mp('; filename=', sqli)));
  add("multipart filename=\"a.txt\"; filename*=utf-8'' (Go reads filename* over filename)", req('POST', '/x', [MP], mp(`; filename="a.txt"; filename*=utf-8''`, sqli)));
  add("multipart filename*=ibm037'' alone (Go does not decode it)", req('POST', '/x', [MP], mp(`; filename*=ibm037''a.txt`, sqli)));
  add('multipart filename*= not an ext-value', req('POST', '/x', [MP], mp('; filename*=a.txt', sqli)));
  add('multipart filename="" in base64', req('POST', '/x', [MP], mp('; filename=""', Buffer.from(sqli).toString('base64'), 'Content-Transfer-Encoding: base64\r\n')));
  // held
  add('multipart CR-only line ends', req('POST', '/x', [MP], mp('', sqli).replace(/\r\n/g, '\r')));
  add('multipart attack in the preamble', req('POST', '/x', [MP], `${sqli}\r\n--BND\r\nContent-Disposition: form-data; name="a"\r\n\r\nok\r\n--BND--\r\n`));
  add('multipart attack in the epilogue', req('POST', '/x', [MP], `--BND\r\nContent-Disposition: form-data; name="a"\r\n\r\nok\r\n--BND--\r\n${sqli}`));
  add('multipart part without Content-Disposition', req('POST', '/x', [MP], `--BND\r\nContent-Type: text/plain\r\n\r\n${sqli}\r\n--BND--\r\n`));
  add('multipart/mixed nested in a field', req('POST', '/x', [MP], `--BND\r\nContent-Disposition: form-data; name="files"\r\nContent-Type: multipart/mixed; boundary=IN\r\n\r\n--IN\r\nContent-Disposition: file; filename="a.txt"\r\n\r\n${sqli}\r\n--IN--\r\n\r\n--BND--\r\n`));
  add('multipart boundary in another case than the body', req('POST', '/x', ['Content-Type: multipart/form-data; boundary=bnd'], mp('', sqli)));
  add('multipart delimiter with transport padding', req('POST', '/x', [MP], mp('', sqli).replace('--BND\r\n', '--BND \t\r\n')));
  add("multipart name*= only", req('POST', '/x', [MP], `--BND\r\nContent-Disposition: form-data; name*=utf-8''q\r\n\r\n${sqli}\r\n--BND--\r\n`));
  add('form: a percent escape that is not one', req('POST', '/x', [FORM], `q=%zz${encodeURIComponent(sqli)}`));
  add('form: overlong UTF-8', req('POST', '/x', [FORM], 'q=%C0%A7%20OR%20%C0%A71%C0%A7=%C0%A71'));
  add('form: charset=utf-16', req('POST', '/x', ['Content-Type: application/x-www-form-urlencoded; charset=utf-16'], `q=${encodeURIComponent(sqli)}`));
  add('form: a benign q in the query, the attack in the body', req('POST', '/x?q=1', [FORM], `q=${encodeURIComponent(sqli)}`));
  add('JSON: a top-level string', req('POST', '/x', [JS], JSON.stringify(sqli)));
  add('JSON: every character \\u-escaped', req('POST', '/x', [JS], `{"q":"${[...sqli].map((c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')).join('')}"}`));
  add('JSON: a lone surrogate in the key', req('POST', '/x', [JS], `{"\\ud800q":${JSON.stringify(sqli)}}`));
  add('JSON: 1e999999', req('POST', '/x', [JS], `{"n":1e999999,"q":${JSON.stringify(sqli)}}`));
  add('JSON: 1001 deep', req('POST', '/x', [JS], '['.repeat(1001) + JSON.stringify(sqli) + ']'.repeat(1001)));
  add('JSON: two documents under application/json', req('POST', '/x', [JS], `{"a":1}\n${JSON.stringify({ q: sqli })}\n`));
  add('JSON: application/merge-patch+json', req('POST', '/x', ['Content-Type: application/merge-patch+json'], JSON.stringify({ q: sqli })));
  add('JSON: text/json; charset=utf-8', req('POST', '/x', ['Content-Type: text/json; charset=utf-8'], JSON.stringify({ q: sqli })));
  // JSON Lines: the sniff reads each line that parses alone (relaxed: 920420 no longer refuses the type): fixed
  add('JSON Lines as application/x-ndjson', req('POST', '/x', ['Content-Type: application/x-ndjson'], `{"a":1}\n${JSON.stringify({ q: sqli })}\n`));
  add('JSON Lines as text/plain', req('POST', '/x', ['Content-Type: text/plain'], `{"a":1}\r\n${JSON.stringify({ q: sqli })}`));
  add('JSON: application/json-seq (RS prefix)', req('POST', '/x', ['Content-Type: application/json-seq'], '\x1e' + JSON.stringify({ q: sqli }) + '\n'));
  return a;
}

describe('WAF evasion: attacks re-shaped against the body processors', () => {
  let upstream: TestUpstream;
  const gws: Record<'strict' | 'relaxed' | 'h2', { port: number; close: () => Promise<void> }> = {} as never;

  before(async () => {
    upstream = await startUpstream();
    gws.strict = await start(config(upstream.address, ''));
    gws.relaxed = await start(config(upstream.address, `disabled-rules ${RELAXED_RULES}`));
    // the CRS as shipped on an h2c listener
    gws.h2 = await start(config(upstream.address, '', { listener: 'protocol "h2"' }));
  });

  after(async () => {
    for (const g of Object.values(gws)) await g?.close();
    await upstream?.close();
  });

  for (const setup of ['strict', 'relaxed'] as const) {
    test(`${setup}: every shape is refused and never reaches the upstream`, async () => {
      const leaked = await leakedProbes(gws[setup].port, upstream, attacks());
      assert.deepEqual(leaked, []);
    });
  }

  test('uploads a browser sends still pass: an empty file input (filename="", no content) and a named file', async () => {
    const seen = upstream.seen.length;
    const empty = '--BND\r\nContent-Disposition: form-data; name="avatar"; filename=""\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--BND--\r\n';
    const file = mp('; filename="notes.txt"', 'plain text notes', 'Content-Type: text/plain\r\n');
    for (const setup of ['strict', 'relaxed'] as const) {
      assert.equal(await status(gws[setup].port, req('POST', '/x', [MP], empty)), 200, `${setup} empty file input`);
      assert.equal(await status(gws[setup].port, req('POST', '/x', [MP], file)), 200, `${setup} named file`);
    }
    assert.equal(upstream.seen.length, seen + 4);
    assert.equal(upstream.seen.at(-1)!.body.toString('latin1'), file);
  });

  test('HTTP/2 bodies without content-length, in several DATA frames, are inspected whole', async () => {
    const session = http2.connect(`http://127.0.0.1:${gws.h2.port}`);
    try {
      // chunks [] ends the stream with the HEADERS frame (no body)
      const post = (contentType: string, chunks: string[], path = '/x') =>
        new Promise<number>((resolve, reject) => {
          const s = session.request({ ':method': 'POST', ':path': path, 'content-type': contentType, 'user-agent': BROWSER_UA.slice('User-Agent: '.length), accept: 'text/html' }, { endStream: chunks.length === 0 });
          s.on('response', (h) => resolve(Number(h[':status'])));
          s.on('error', reject);
          s.resume();
          for (const c of chunks.slice(0, -1)) s.write(c);
          if (chunks.length > 0) s.end(chunks.at(-1));
        });
      const seen = upstream.seen.length;
      const form = `a=1&q=${encodeURIComponent(sqli)}`;
      assert.equal(await post('application/x-www-form-urlencoded', [form.slice(0, 9), form.slice(9)]), 403);
      const part = mp('; filename=""', sqli);
      assert.equal(await post('multipart/form-data; boundary=BND', [part.slice(0, 60), part.slice(60)]), 403);
      assert.equal(await post('application/json', [JSON.stringify({ q: sqli })]), 403);
      // a POST whose HEADERS end the stream: the query is still inspected
      assert.equal(await post('application/x-www-form-urlencoded', [], `/x?q=${encodeURIComponent(sqli)}`), 403);
      assert.equal(upstream.seen.length, seen, 'nothing forwarded');
      assert.equal(await post('application/x-www-form-urlencoded', ['a=1&', 'q=hello']), 200);
      assert.equal(upstream.seen.at(-1)!.body.toString(), 'a=1&q=hello');
      assert.equal(upstream.seen.at(-1)!.headers['content-length'], '11');
      assert.equal(upstream.seen.at(-1)!.headers['transfer-encoding'], undefined);
      assert.equal(await post('application/x-www-form-urlencoded', [], '/x?q=hello'), 200);
      assert.equal(upstream.seen.length, seen + 2);
    } finally {
      session.destroy();
    }
  });
});
