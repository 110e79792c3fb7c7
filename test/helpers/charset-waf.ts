// The setup of the charset refusal tests (415 `unsupported_charset`): IBM037 (EBCDIC) bytes, an
// SQLi, a browser-like POST, and a gateway whose one route is inspected by the in-process WAF
// (CRS at PL1, failure mode closed) with the CRS charset rules the caller names relaxed, as an
// operator whose application needs another charset would.
import assert from 'node:assert/strict';
import { gatewayFrom, simpleConfig } from './gateway.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';
import { untilInProcessAgentsBuilt } from './waf-probes.ts';
import { crsDir } from '../unit/waf-regex/crs-rules.ts';

// IBM037 (EBCDIC, US): enough of the table for the probes
const EBCDIC: Record<string, number> = { ' ': 0x40, '.': 0x4b, '<': 0x4c, '(': 0x4d, '+': 0x4e, '&': 0x50, ')': 0x5d, ';': 0x5e, '-': 0x60, '/': 0x61, ',': 0x6b, '%': 0x6c, _: 0x6d, '>': 0x6e, '?': 0x6f, ':': 0x7a, "'": 0x7d, '=': 0x7e, '"': 0x7f };
for (let i = 0; i < 26; i++) {
  const l = String.fromCharCode(97 + i);
  const off = i < 9 ? 0x81 + i : i < 18 ? 0x91 + i - 9 : 0xa2 + i - 18;
  EBCDIC[l] = off;
  EBCDIC[l.toUpperCase()] = off + 0x40;
}
for (let d = 0; d < 10; d++) EBCDIC[String(d)] = 0xf0 + d;
export const ibm037 = (s: string): Buffer => Buffer.from([...s].map((c) => EBCDIC[c] ?? assert.fail(`no EBCDIC for ${c}`)));

export const sqli = "1' OR '1'='1' UNION SELECT password FROM users--";

/** A raw `POST /x` with a browser's User-Agent and Accept (so only the body is the CRS's concern). */
export function post(contentType: string, body: Buffer): Buffer {
  const head = `POST /x HTTP/1.1\r\nHost: localhost\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\nAccept: text/html\r\nConnection: close\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

export interface CharsetWafGateway {
  upstream: TestUpstream;
  gw: Awaited<ReturnType<typeof gatewayFrom>>;
  port: number;
  close(): Promise<void>;
}

export async function startCharsetWafGateway(opts: { disabledRules: readonly string[]; auditLog?: string }): Promise<CharsetWafGateway> {
  const upstream = await startUpstream();
  const audit = opts.auditLog ? `; audit-log { file "${opts.auditLog}" }` : '';
  const gw = await gatewayFrom(
    simpleConfig(upstream.address, {
      route: 'filters "waf"',
      top: `
agents {
  agent "waf" {
    in-process "sentinel-waf"
    config { crs-dir "${crsDir}"; paranoia-level 1${opts.disabledRules.length > 0 ? `; disabled-rules ${opts.disabledRules.map((r) => `"${r}"`).join(' ')}` : ''} }
    events "request_headers" "request_body"
    timeout-ms 20000
  }
}
filters { filter "waf" { type "agent"; agent "waf"; failure-mode "closed" } }
observability { logging { level "error"${audit} } }
`,
    }),
  );
  const port = Number(new URL(gw.url()).port);
  try {
    await untilInProcessAgentsBuilt(port);
  } catch (err) {
    await gw.gw.close();
    await upstream.close();
    throw err;
  }
  return {
    upstream,
    gw,
    port,
    close: async () => {
      await gw.gw.close();
      await upstream.close();
    },
  };
}
