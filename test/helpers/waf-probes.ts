// Shared by the WAF probe suites (parser-differentials.test.ts, waf-evasion.test.ts): a gateway with
// the in-process WAF (CRS PL1) on a catch-all route, exact request bytes, and the leak check.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

import { gatewayFrom, simpleConfig } from './gateway.ts';
import { rawRequest } from './raw-http.ts';
import { h2Once } from './http.ts';
import { NO_WALL_BOUND, notHungTurning, START_MS } from './until.ts';
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
    // The gateway runs in this process: a wall-clock timer would count the time the loop spent on
    // its work or the machine gave to others (ci23: 20 s without an answer at load 17-28, see
    // startProbeGateway); this bound counts event-loop time only, so a hang still fails.
    return (await notHungTurning('a probe', rawRequest(port, bytes, { timeoutMs: NO_WALL_BOUND }), START_MS)).status;
  } catch {
    return 0;
  }
}

/** Starts a gateway from KDL; its HTTP listener's port and a close, once its in-process agents answer (see untilInProcessAgentsBuilt). */
export async function startProbeGateway(kdl: string): Promise<{ port: number; close: () => Promise<void> }> {
  const g = await gatewayFrom(kdl);
  const port = Number(new URL(g.url()).port);
  try {
    await untilInProcessAgentsBuilt(port, g.gw.config.listeners.find((l) => l.id === 'http')?.protocol === 'h2');
  } catch (err) {
    await g.gw.close();
    throw err;
  }
  return { port, close: () => g.gw.close() };
}

/** The gateways the evasion suites compare: the CRS as shipped (`strict`), with RELAXED_RULES off,
 * with `extra-rules "all"`, behind a fail-open filter (bodies of types outside `content-types` skip
 * it), and the shipped CRS on an h2c listener. */
export async function startProbeGatewaySet(upstream: string): Promise<Record<'strict' | 'relaxed' | 'extra' | 'open' | 'h2', { port: number; close: () => Promise<void> }>> {
  return {
    strict: await startProbeGateway(wafConfig(upstream, '')),
    relaxed: await startProbeGateway(wafConfig(upstream, `disabled-rules ${RELAXED_RULES}`)),
    extra: await startProbeGateway(wafConfig(upstream, 'extra-rules "all"')),
    open: await startProbeGateway(wafConfig(upstream, '').replace('failure-mode "closed"', 'failure-mode "open"')),
    h2: await startProbeGateway(wafConfig(upstream, '', { listener: 'protocol "h2"' })),
  };
}

/**
 * Waits for a benign GET through a fresh gateway's in-process WAF to be answered 200 (its
 * catch-all route to the upstream). An in-process agent is built after the gateway listens: the
 * engine is imported and the CRS compiled (~1 s of CPU, the first time with a cold JIT) on this
 * process's event loop, and the agent's first call waits for it. A suite that starts three such
 * gateways and then probes had its first probe wait for all three builds: 5 s at load 4-8, 25.6 s
 * under a 7% CPU quota (load ~28 on 2 cores), past the 20 s the probe's timer allowed (ci23: an
 * unanswered first probe, read as a leak). Here the builds happen at start, one gateway at a time,
 * and the wait counts event-loop time only (notHungTurning); a build that fails (503 fail-closed)
 * or never ends (the agent's timeout-ms) still fails the start with the answer it got.
 */
export async function untilInProcessAgentsBuilt(port: number, h2 = false): Promise<void> {
  const what = `the first answer of the gateway on port ${port} through its in-process WAF (the CRS compiled)`;
  const ask = () => notHungTurning(what, h2 ? h2Status(port) : rawRequest(port, probeRequest('GET', '/', []), { timeoutMs: NO_WALL_BOUND }).then((r) => r.status), START_MS);
  let status = await ask();
  // 408: the gateway's own client-header-timeout (10 s, wall clock) ran out while the compile blocked
  // its loop with this request unread (seen under a 3% CPU quota); it did not reach the WAF: once more
  if (status === 408) status = await ask();
  if (status !== 200) throw new Error(`${what}: ${status}, not 200`);
}

/** The status of a benign GET over h2c (prior knowledge); a reset stream throws. */
async function h2Status(port: number): Promise<number> {
  const r = await h2Once(port, { ':method': 'GET', ':path': '/', 'user-agent': BROWSER_UA.slice('User-Agent: '.length), accept: 'text/html' });
  if (r.status === undefined) throw new Error(`h2 GET /: stream reset (code ${r.rstCode})`);
  return r.status;
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

/** sentinel-waf as its own process on a Unix socket, with the CRS as shipped (PL1): `stop()` ends it. */
export interface WafAgentProcess {
  readonly proc: ChildProcess;
  /** Its stdout lines so far (the audit lines), complete lines only. */
  readonly stdout: string[];
  /** Its stderr so far (start-up, reload and worker messages). */
  stderr(): string;
  stop(): Promise<void>;
}

/** Starts bin/sentinel-waf.mjs on `socket` (CRS PL1, then `extraArgs`: a later `--paranoia-level` wins) and resolves once it says it listens (rejects with its stderr if it exits first). */
export async function startWafAgentProcess(socket: string, extraArgs: string[] = []): Promise<WafAgentProcess> {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'sentinel-waf.mjs');
  const proc = spawn(process.execPath, [bin, '--socket', socket, '--crs-dir', crsDir, '--paranoia-level', '1', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  let partial = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    stdout.push(...lines);
  });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    proc.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('listening on')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`sentinel-waf exited ${code}: ${stderr}`)));
  });
  return {
    proc,
    stdout,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
