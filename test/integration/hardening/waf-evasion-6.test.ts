// WAF evasion, sixth round (docs/security.md, "Session 28 WAF evasion audit"): names a backend reads
// apart from the WAF when an operator excluded one field from the SQLi rules: `;` as a query and
// form separator (Rack 2.2, Perl's CGI.pm and Plack), cookies split on `,` and blanks (ASP.NET
// Core, Python's SimpleCookie). Real gateways on loopback with the in-process WAF (CRS PL1), a
// recording upstream, exact bytes over a socket. Every probe was also sent to nginx + ModSecurity
// 3.0.9 with the same CRS and exclusions (all forwarded there, 200), and to the backends' parsers.
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { leakedProbes, probeRequest as req, startProbeGateway as start, wafConfig as config } from '../../helpers/waf-probes.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';

const union = "1' UNION SELECT password FROM users--";
const enc = encodeURIComponent;
const FORM = 'Content-Type: application/x-www-form-urlencoded';
/** The same SQLi without blanks, `,`, `;`, `"` or `\`: a cookie value every reader keeps whole. */
const tight = "1'/**/UNION/**/SELECT/**/password/**/FROM/**/users--";

/** `a` and the cookie `c` excluded from the SQLi rules, as `sentinel-waf tune` writes it. */
const EXCLUSIONS =
  'SecRule REQUEST_FILENAME "@beginsWith /" "id:10100,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetByTag=attack-sqli;ARGS:a,ctl:ruleRemoveTargetByTag=attack-sqli;REQUEST_COOKIES:c"\n';

describe('WAF evasion, sixth round', () => {
  let upstream: TestUpstream;
  let excluded: { port: number; close: () => Promise<void> };
  const tmp = mkdtempSync(join(tmpdir(), 'waf-evasion-6-'));

  before(async () => {
    upstream = await startUpstream();
    const file = join(tmp, 'exclusions.conf');
    writeFileSync(file, EXCLUSIONS);
    excluded = await start(config(upstream.address, `exclusions-file "${file}"`));
  });

  after(async () => {
    await excluded?.close();
    await upstream?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the exclusions work as meant: `a` and the cookie `c` carry SQL', async () => {
    const probes: [string, Buffer][] = [
      ['query a', req('GET', `/x?a=${enc(union)}`, [])],
      ['form a', req('POST', '/x', [FORM], `a=${enc(union)}`)],
      ['cookie c', req('GET', '/x', [`Cookie: c=${tight}`])],
    ];
    assert.deepEqual(await leakedProbes(excluded.port, upstream, probes), probes.map(([name]) => `${name}: 200 (forwarded)`));
  });

  test('`;` separates to Rack 2.2 (query), CGI.pm and Plack (query and form): `a=1;q=<sqli>` is the field q there', async () => {
    // forwarded (200) before: the WAF read one argument `a` = `1;q=...`, excluded
    const probes: [string, Buffer][] = [
      ['query a=1;q=', req('GET', `/x?a=1;q=${enc(union)}`, [])],
      ['query a=1;+q= (Rack: the field ` q`)', req('GET', `/x?a=1;+q=${enc(union)}`, [])],
      ['query b=2&a=1;q=', req('GET', `/x?b=2&a=1;q=${enc(union)}`, [])],
      ['form a=1;q=', req('POST', '/x', [FORM], `a=1;q=${enc(union)}`)],
    ];
    assert.deepEqual(await leakedProbes(excluded.port, upstream, probes), []);
  });

  test('cookies split on `,` (ASP.NET Core) and blanks (SimpleCookie: Bottle, aiohttp): `c=1 q=<sqli>` is the cookie q there', async () => {
    // forwarded (200) before: the WAF read one cookie `c` = `1 q=...`, excluded
    const probes: [string, Buffer][] = [
      ['c=1,q=', req('GET', '/x', [`Cookie: c=1,q=${tight}`])],
      ['c=1, q=', req('GET', '/x', [`Cookie: c=1, q=${tight}`])],
      ['c=1 q= (SimpleCookie)', req('GET', '/x', [`Cookie: c=1 q=${tight}`])],
      ['c="1" q= (SimpleCookie)', req('GET', '/x', [`Cookie: c="1" q=${tight}`])],
      ['c=1\\q= (ASP.NET Core reads on past what it cannot)', req('GET', '/x', [`Cookie: c=1\\q=${tight}`])],
    ];
    assert.deepEqual(await leakedProbes(excluded.port, upstream, probes), []);
  });

  test('benign queries and cookies with `;`, `,` and blanks still pass', async () => {
    const benign: [string, Buffer][] = [
      ['a matrix-like query', req('GET', '/x?sort=name;desc&filter=a=1;b=2', [])],
      ['cookies with blanks, commas and quotes', req('GET', '/x', ['Cookie: _ga=GA1.2.1234.5678; c=hello world; pref="a,b"; list=1,2,3; sid=abc=='])],
    ];
    for (const [name, bytes] of benign) assert.deepEqual(await leakedProbes(excluded.port, upstream, [[name, bytes]]), [`${name}: 200 (forwarded)`]);
  });
});
