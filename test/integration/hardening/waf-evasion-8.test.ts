// WAF evasion, eighth round (docs/security.md, "Session 30 WAF evasion audit (wafaudit30)"):
// a multipart boundary another parser finds elsewhere in the Content-Type (PHP's rfc1867 takes the
// first "boundary" anywhere, Go's mime.ParseMediaType lets RFC 2231's `boundary*` override
// `boundary=`), so the WAF reads one set of parts and the application another; and parameter
// pollution, a payload split across one name's values that ASP.NET and Node's array toString join
// with ',' (the opt-in `hpp` extra rule set). Real gateways on loopback (the in-process WAF, CRS
// PL1: as shipped, with the protocol rules relaxed, with `extra-rules "hpp"`) and sentinel-waf as
// its own process, a recording upstream, exact bytes over a socket. Every probe was also sent to
// nginx + ModSecurity 3.0.9 with the same CRS: the boundaries 400 there, the split 200.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  RELAXED_RULES,
  leakedProbes,
  probeRequest as req,
  probeStatus,
  startProbeGateway as start,
  startWafAgentProcess,
  wafConfig as config,
  type WafAgentProcess,
} from '../../helpers/waf-probes.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

const enc = encodeURIComponent;
const crlf = (...lines: string[]): string => lines.join('\r\n');
const FORM = 'Content-Type: application/x-www-form-urlencoded';

// The SQLi field q as PHP or Go reads the body (boundary BBB); to a reader of boundary=AAA it is
// the content of the file a.txt, which the CRS does not read.
const hidden = crlf('--AAA', 'Content-Disposition: form-data; name="x"; filename="a.txt"', 'Content-Type: text/plain', '', '--BBB', 'Content-Disposition: form-data; name="q"', '', "1' UNION SELECT password FROM users--", '--BBB--', '', '--AAA--', '');
const boundaryProbes: [string, Buffer][] = [
  'multipart/form-data; xboundary=BBB; boundary=AAA', // PHP: BBB (measured, PHP 8.2)
  'multipart/form-data; foo=boundary=BBB; boundary=AAA', // PHP: BBB
  "multipart/form-data; boundary=AAA; boundary*=utf-8''BBB", // Go: BBB (measured, Go 1.19)
  'multipart/form-data; boundary*0=BB; boundary*1=B; boundary=AAA', // Go: BBB
  'multipart/form-data; boundary=AAA,BBB', // PHP and Rack end the value at ','
].map((ct) => [ct, req('POST', '/upload', [`Content-Type: ${ct}`], hidden)]);

// Each value is benign to the CRS (and to ModSecurity with the same CRS: 200); the join is what
// ASP.NET's Request.QueryString["q"] / StringValues.ToString() and `${req.query.q}` in Node give.
const splits: [string, string][] = [
  ["1' OR/*", '*/1=1--'],
  ['1; DROP/*', '*/TABLE users--'],
  ["1' WAITFOR/*", "*/DELAY '0:0:5'--"],
  ["1' GROUP BY/*", '*/username,password HAVING 1=1--'],
];
const hppProbes: [string, Buffer][] = splits.flatMap(([a, b]): [string, Buffer][] => [
  [`query q=${a}&q=${b}`, req('GET', `/search?q=${enc(a)}&q=${enc(b)}`, [])],
  [`query q[]= (qs) ${a}`, req('GET', `/search?q[]=${enc(a)}&q[]=${enc(b)}`, [])],
  [`form ${a}`, req('POST', '/search', [FORM], `q=${enc(a)}&q=${enc(b)}`)],
  [`query and form (Request.Params) ${a}`, req('POST', `/search?q=${enc(a)}`, [FORM], `q=${enc(b)}`)],
  [`JSON array ${a}`, req('POST', '/search', ['Content-Type: application/json'], JSON.stringify({ q: [a, b] }))],
]);

describe('WAF evasion, eighth round', () => {
  let upstream: TestUpstream;
  let strict: { port: number; close: () => Promise<void> };
  let relaxed: { port: number; close: () => Promise<void> };
  let hpp: { port: number; close: () => Promise<void> };
  let agent: WafAgentProcess;
  let viaAgent: { port: number; close: () => Promise<void> };
  const tmp = mkdtempSync(join(tmpdir(), 'waf-evasion-8-'));

  before(async () => {
    upstream = await startUpstream();
    strict = await start(config(upstream.address, ''));
    relaxed = await start(config(upstream.address, `disabled-rules ${RELAXED_RULES}`));
    hpp = await start(config(upstream.address, 'extra-rules "hpp"'));
    const socket = join(tmp, 'waf.sock');
    agent = await startWafAgentProcess(socket, ['--extra-rules', 'hpp']);
    viaAgent = await start(config(upstream.address, '').replace(/in-process "sentinel-waf"\s*config \{[^}]*\}/, `unix-socket "${socket}"`));
  });

  after(async () => {
    await viaAgent?.close();
    await agent?.stop();
    await hpp?.close();
    await relaxed?.close();
    await strict?.close();
    await upstream?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('a multipart boundary PHP or Go reads elsewhere in the Content-Type: refused, never forwarded (relaxed, as shipped, sentinel-waf)', async () => {
    assert.deepEqual(await leakedProbes(relaxed.port, upstream, boundaryProbes), []);
    assert.deepEqual(await leakedProbes(strict.port, upstream, boundaryProbes), []);
    assert.deepEqual(await leakedProbes(viaAgent.port, upstream, boundaryProbes), []);
  });

  test('benign uploads: Firefox\'s geckoformboundary, Chrome\'s WebKitFormBoundary, BOUNDARY= in capitals', async () => {
    for (const [b, name] of [['----geckoformboundary3f9a1c0d2e', 'boundary'], ['----WebKitFormBoundary7MA4YWxkTrZu0gW', 'boundary'], ['x9Qz81', 'BOUNDARY']] as const) {
      const body = crlf(`--${b}`, 'Content-Disposition: form-data; name="note"', '', 'Hello, see you at 5', `--${b}`, 'Content-Disposition: form-data; name="f"; filename="a.txt"', 'Content-Type: text/plain', '', 'text', `--${b}--`, '');
      for (const port of [strict.port, relaxed.port]) {
        const seen = upstream.seen.length;
        assert.equal(await probeStatus(port, req('POST', '/upload', [`Content-Type: multipart/form-data; ${name}=${b}`], body)), 200, b);
        assert.equal(upstream.seen.length, seen + 1);
      }
    }
  });

  test('parameter pollution: each value benign to the CRS, the joined value refused by the hpp set (in-process and sentinel-waf)', async () => {
    // The CRS alone reads each value alone and forwards every probe (else the probes prove nothing).
    for (const [name, bytes] of hppProbes) {
      const seen = upstream.seen.length;
      assert.equal(await probeStatus(strict.port, bytes), 200, name);
      assert.equal(upstream.seen.length, seen + 1, name);
    }
    assert.deepEqual(await leakedProbes(hpp.port, upstream, hppProbes), []);
    const viaAgentProbes = hppProbes.filter(([name]) => name.startsWith('query q=') || name.startsWith('form'));
    assert.deepEqual(await leakedProbes(viaAgent.port, upstream, viaAgentProbes), []);
  });

  test('parameter pollution, benign: repeated filters, tags, ids, names with quotes pass the hpp set', async () => {
    const benign = [
      req('GET', `/shop?tag=red&tag=blue&size=42&size=43&sort=name&sort=-date&id=1&id=2&id=3&color[]=navy&color[]=off-white`, []),
      req('GET', `/search?q=${enc("O'Neil")}&q=${enc("D'Arcy")}&note=${enc('see you -- thanks')}&note=${enc("it's late")}`, []),
      req('POST', '/checkout', [FORM], `item=${enc('SKU-1')}&item=${enc('gift wrap')}&note=${enc("it's a gift")}&note=${enc('after 5 pm')}`),
      req('POST', '/checkout', ['Content-Type: application/json'], JSON.stringify({ items: ['SKU-1', 'SKU-2'], notes: ["it's a gift", 'deliver after 5 pm'], ids: [1, 2, 3] })),
    ];
    for (const bytes of benign) {
      const seen = upstream.seen.length;
      assert.equal(await probeStatus(hpp.port, bytes), 200, bytes.toString('latin1').split('\r\n')[0]);
      assert.equal(upstream.seen.length, seen + 1);
    }
  });
});
