// Shared by the WAF probe suites (parser-differentials.test.ts, waf-evasion.test.ts): a gateway with
// the in-process WAF (CRS PL1) on a catch-all route, exact request bytes, and the leak check.
import { gatewayFrom, simpleConfig } from './gateway.ts';
import { rawRequest } from './raw-http.ts';
import { START_MS } from './until.ts';
import type { TestUpstream } from './upstream.ts';
import { crsDir } from '../unit/waf-regex/crs-rules.ts';

/**
 * The CRS protocol rules that refuse odd framing, types, charsets and headers outright (920420
 * content type, 920450 restricted headers, 920480 charset, 920470 Content-Type syntax,
 * 920340/920640 missing Content-Type, 922120 Content-Transfer-Encoding, 920120 multipart file names,
 * 920270 NUL bytes, 920250 UTF-8 validation), as operators relax them: the body processors must
 * then find an attack themselves.
 */
export const RELAXED_RULES = '"920420" "920450" "920480" "920470" "920340" "920640" "922120" "920120" "920270" "920250"';

/** A gateway config: the in-process WAF with `wafConfig` in its agent config, fail-closed, on every request. */
export function wafConfig(upstream: string, wafConfig: string, extra: { top?: string; listener?: string } = {}): string {
  return simpleConfig(upstream, {
    route: 'filters "waf"',
    listener: extra.listener ?? '',
    top: `
agents {
  agent "waf" {
    in-process "sentinel-waf"
    config { crs-dir "${crsDir}"; paranoia-level 1; ${wafConfig} }
    events "request_headers" "request_body"
    timeout-ms 60000
  }
}
filters { filter "waf" { type "agent"; agent "waf"; failure-mode "closed" } }
${extra.top ?? ''}
`,
  });
}

export const BROWSER_UA = 'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0';

/** Request bytes with a browser's User-Agent and Accept, `Connection: close` and (unless told not to) a Content-Length. */
export function probeRequest(method: string, target: string, headers: string[], body: Buffer | string = '', opts: { length?: boolean } = {}): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'latin1') : body;
  const all = ['Host: localhost', BROWSER_UA, 'Accept: text/html', 'Connection: close', ...headers];
  if (b.length > 0 && opts.length !== false) all.push(`Content-Length: ${b.length}`);
  return Buffer.concat([Buffer.from(`${method} ${target} HTTP/1.1\r\n${all.map((h) => h + '\r\n').join('')}\r\n`, 'latin1'), b]);
}

/** The answer's status; 0 when the gateway closed without one (what matters then is that nothing was forwarded). */
export async function probeStatus(port: number, bytes: Buffer): Promise<number> {
  try {
    // START_MS (and the agent's timeout-ms 60000): a fresh gateway's first probe twice got no
    // answer within 20 s under load (load average 17-28, session 23) and read as a leak; a hang still fails
    return (await rawRequest(port, bytes, { timeoutMs: START_MS })).status;
  } catch {
    return 0;
  }
}

/** Starts a gateway from KDL; its HTTP listener's port and a close. */
export async function startProbeGateway(kdl: string): Promise<{ port: number; close: () => Promise<void> }> {
  const g = await gatewayFrom(kdl);
  return { port: Number(new URL(g.url()).port), close: () => g.gw.close() };
}

/** Sends each probe; the ones answered other than 4xx or forwarded to `upstream`, described. */
export async function leakedProbes(port: number, upstream: TestUpstream, probes: Iterable<readonly [name: string, bytes: Buffer]>): Promise<string[]> {
  const leaked: string[] = [];
  for (const [name, bytes] of probes) {
    const seen = upstream.seen.length;
    const s = await probeStatus(port, bytes);
    const forwarded = upstream.seen.length !== seen;
    if (forwarded || !(s >= 400 && s < 500)) leaked.push(`${name}: ${s}${forwarded ? ' (forwarded)' : ''}`);
  }
  return leaked;
}
