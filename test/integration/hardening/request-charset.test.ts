// Open finding of the session 16 audit, closed in session 17 (docs/security.md, "Parser
// differentials", "Open findings"): an inspected request body in a charset whose bytes are not the
// characters the agents match. The in-process WAF (CRS at PL1, with 920480, the CRS charset rule,
// relaxed as an operator whose application needs another charset would) reads EBCDIC or UTF-7
// bytes as sent, while .NET / IIS / Java decode `charset=ibm037` into the attack. The gateway
// refuses such a body 415 before any agent sees it; the readable charsets pass as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { gatewayFrom, simpleConfig } from '../../helpers/gateway.ts';
import { rawRequest } from '../../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { crsDir } from '../../unit/waf-regex/crs-rules.ts';

const dir = mkdtempSync(join(tmpdir(), 'swcs-'));
const auditLog = join(dir, 'audit.log');
let upstream: TestUpstream;
let gw: Awaited<ReturnType<typeof gatewayFrom>>;
let port: number;

// IBM037 (EBCDIC, US): enough of the table for the probes
const EBCDIC: Record<string, number> = { ' ': 0x40, '.': 0x4b, '<': 0x4c, '(': 0x4d, '+': 0x4e, '&': 0x50, ')': 0x5d, ';': 0x5e, '-': 0x60, '/': 0x61, ',': 0x6b, '%': 0x6c, _: 0x6d, '>': 0x6e, '?': 0x6f, ':': 0x7a, "'": 0x7d, '=': 0x7e, '"': 0x7f };
for (let i = 0; i < 26; i++) {
  const l = String.fromCharCode(97 + i);
  const off = i < 9 ? 0x81 + i : i < 18 ? 0x91 + i - 9 : 0xa2 + i - 18;
  EBCDIC[l] = off;
  EBCDIC[l.toUpperCase()] = off + 0x40;
}
for (let d = 0; d < 10; d++) EBCDIC[String(d)] = 0xf0 + d;
const ibm037 = (s: string) => Buffer.from([...s].map((c) => EBCDIC[c] ?? assert.fail(`no EBCDIC for ${c}`)));

const sqli = "1' OR '1'='1' UNION SELECT password FROM users--";

function post(contentType: string, body: Buffer): Buffer {
  const head = `POST /x HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\nAccept: text/html\r\nConnection: close\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

before(async () => {
  upstream = await startUpstream();
  gw = await gatewayFrom(
    simpleConfig(upstream.address, {
      route: 'filters "waf"',
      top: `
agents {
  agent "waf" {
    in-process "sentinel-waf"
    config { crs-dir "${crsDir}"; paranoia-level 1; disabled-rules "920480" }
    events "request_headers" "request_body"
    timeout-ms 20000
  }
}
filters { filter "waf" { type "agent"; agent "waf"; failure-mode "closed" } }
observability { logging { level "error"; audit-log { file "${auditLog}" } } }
`,
    }),
  );
  port = Number(new URL(gw.url()).port);
});

after(async () => {
  await gw?.gw.close();
  await upstream?.close();
});

test('an EBCDIC or UTF-7 form with an attack is refused 415 and never reaches the upstream', async () => {
  const FORM = 'application/x-www-form-urlencoded';
  const probes: [string, Buffer][] = [
    [`${FORM}; charset=ibm037`, ibm037(`q=${sqli}`)],
    [`${FORM}; charset=IBM037`, ibm037(`q=${sqli}`)],
    [`${FORM}; charset="cp037"`, ibm037(`q=${sqli}`)],
    [`${FORM}; charset=utf-8; charset=ibm037`, ibm037(`q=${sqli}`)],
    [`${FORM}; charset=utf-7`, Buffer.from("q=1+ACc- OR +ACc-1+ACc-=+ACc-1+ACc- UNION SELECT password FROM users--")],
    [`${FORM}; charset=utf-16le`, Buffer.from(`q=${sqli}`, 'utf16le')],
    ['application/json; charset=utf-16', Buffer.from(JSON.stringify({ q: sqli }), 'utf16le')],
    ['text/plain; charset=ibm037', ibm037(`q=${sqli}`)],
  ];
  const before = upstream.seen.length;
  for (const [ct, body] of probes) {
    const r = await rawRequest(port, post(ct, body), { timeoutMs: 20_000 });
    assert.equal(r.status, 415, ct);
  }
  assert.equal(upstream.seen.length, before, 'nothing forwarded');
  assert.match(await gw.gw.metrics.render(), /sentinel_blocked_requests_total\{reason="unsupported_charset"\} 8/);
});

test('the readable charsets pass as before, byte for byte', async () => {
  const before = upstream.seen.length;
  for (const cs of ['utf-8', 'UTF-8', 'us-ascii', 'iso-8859-1', 'latin1', 'windows-1252', 'iso-8859-15']) {
    const body = Buffer.from('name=alice&city=Z%C3%BCrich', 'latin1');
    const r = await rawRequest(port, post(`application/x-www-form-urlencoded; charset=${cs}`, body), { timeoutMs: 20_000 });
    assert.equal(r.status, 200, cs);
    assert.deepEqual(upstream.seen.at(-1)!.body, body);
  }
  assert.equal(upstream.seen.length, before + 7);
  // and the attack in a readable charset is still the WAF's
  assert.equal((await rawRequest(port, post('application/x-www-form-urlencoded; charset=utf-8', Buffer.from(`q=${encodeURIComponent(sqli)}`)), { timeoutMs: 20_000 })).status, 403);
});

test('each refusal is a blocked audit event naming the reason and the filter', async () => {
  await gw.gw.close(); // flushes the audit log
  type Entry = Record<string, unknown>;
  const blocked = readFileSync(auditLog, 'utf8')
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => JSON.parse(l) as Entry)
    .filter((e) => e.event_type === 'blocked' && e.reason === 'unsupported_charset');
  assert.equal(blocked.length, 8);
  assert.equal(blocked[0]!.status_code, 415);
  assert.equal(blocked[0]!.filter, 'waf');
  assert.equal(blocked[0]!.route_id, 'main');
});
