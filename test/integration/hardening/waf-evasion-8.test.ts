// WAF evasion, eighth round (docs/security.md, "Session 30 WAF evasion audit (wafaudit30)"):
// a multipart boundary another parser finds elsewhere in the Content-Type (PHP's rfc1867 takes the
// first "boundary" anywhere, Go's mime.ParseMediaType lets RFC 2231's `boundary*` override
// `boundary=`), so the WAF reads one set of parts and the application another. Real gateways on
// loopback (the in-process WAF, CRS PL1: as shipped, with the protocol rules relaxed) and
// sentinel-waf as its own process, a recording upstream, exact bytes over a socket. Every probe was
// also sent to nginx + ModSecurity 3.0.9 with the same CRS: 400 there.
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

const crlf = (...lines: string[]): string => lines.join('\r\n');

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

describe('WAF evasion, eighth round', () => {
  let upstream: TestUpstream;
  let strict: { port: number; close: () => Promise<void> };
  let relaxed: { port: number; close: () => Promise<void> };
  let agent: WafAgentProcess;
  let viaAgent: { port: number; close: () => Promise<void> };
  const tmp = mkdtempSync(join(tmpdir(), 'waf-evasion-8-'));

  before(async () => {
    upstream = await startUpstream();
    strict = await start(config(upstream.address, ''));
    relaxed = await start(config(upstream.address, `disabled-rules ${RELAXED_RULES}`));
    const socket = join(tmp, 'waf.sock');
    agent = await startWafAgentProcess(socket);
    viaAgent = await start(config(upstream.address, '').replace(/in-process "sentinel-waf"\s*config \{[^}]*\}/, `unix-socket "${socket}"`));
  });

  after(async () => {
    await viaAgent?.close();
    await agent?.stop();
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
});
