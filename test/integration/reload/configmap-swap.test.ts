// auto-reload against a folder shaped like a mounted Kubernetes ConfigMap / TLS Secret:
// config.kdl -> ..data/config.kdl, ..data -> ..<timestamp>/, updated by writing a new timestamped
// folder and renaming a fresh ..data symlink over the old one (what the kubelet does). The
// gateway runs as its own process (bin/sentinel.mjs), as in a pod.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../helpers/redis.ts';
import { request } from '../../helpers/http.ts';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { Pki, type TestCa } from '../../helpers/pki.ts';
import { repoRoot, startProc, waitForStatus, type Proc } from '../../helpers/packed.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sentinel-cm-reload-'));
let swaps = 0;

/** A mounted-volume-shaped folder holding `files`; returns the visible paths' folder. */
function mountVolume(name: string, files: Record<string, string>): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const first = writeVersion(dir, files);
  symlinkSync(first, join(dir, '..data'));
  for (const f of Object.keys(files)) symlinkSync(join('..data', f), join(dir, f));
  return dir;
}

function writeVersion(dir: string, files: Record<string, string>): string {
  const version = `..2026_12_04_10_00_${String(swaps++).padStart(2, '0')}.${process.pid}`;
  mkdirSync(join(dir, version));
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, version, f), text);
  return version;
}

/** The kubelet's update: new folder, new ..data symlink renamed over the old one, old folder removed. */
function swapVolume(dir: string, files: Record<string, string>): void {
  const old = readlinkSync(join(dir, '..data'));
  const next = writeVersion(dir, files);
  symlinkSync(next, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  rmSync(join(dir, old), { recursive: true, force: true });
}

let port: number;
let tlsPort: number;
let metricsPort: number;
let upstream: TestUpstream;
let pki: Pki;
let ca: TestCa;
let gw: Proc;
let configDir: string;
let tlsDir: string;

const config = (routes: string[]) => `system { worker-threads 1; auto-reload #true; graceful-shutdown-timeout-secs 2 }
listeners {
    listener "http" { address "127.0.0.1:${port}"; protocol "http" }
    listener "https" {
        address "127.0.0.1:${tlsPort}"
        protocol "https"
        tls { cert-file "${tlsDir}/tls.crt"; key-file "${tlsDir}/tls.key" }
    }
}
routes {
${routes.map((r) => `    route "${r}" { matches { path-prefix "/${r}" }; upstream "app" }`).join('\n')}
}
upstreams { upstream "app" { target "127.0.0.1:${upstream.port}" } }
observability { metrics { address "127.0.0.1:${metricsPort}" } }
`;

async function reloads(result: 'success' | 'failure'): Promise<number> {
  const text = (await request(`http://127.0.0.1:${metricsPort}/metrics`)).body;
  const m = new RegExp(`^sentinel_config_reloads_total\\{result="${result}"\\} (\\d+)`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Requests `path` until `done` holds (bounded in count and time); every answer must be 200. */
async function loadUntil(path: string, done: () => Promise<boolean>, what: string): Promise<number> {
  const deadline = Date.now() + 20_000;
  for (let n = 1; n <= 5000; n++) {
    const r = await request(`http://127.0.0.1:${port}${path}`);
    assert.equal(r.status, 200, `request ${n} to ${path} failed with ${r.status} during the swap`);
    if (n % 10 === 0 && (await done())) return n;
    if (Date.now() > deadline) break;
  }
  throw new Error(`${what} did not happen within the bounded loop:\n${gw.output()}`);
}

const hex = (serial: string) => BigInt(`0x${serial}`).toString(16);

function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: tlsPort, servername: 'app.test', rejectUnauthorized: false }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(hex(serial));
    });
    s.on('error', reject);
  });
}

describe('auto-reload with a mounted ConfigMap and TLS Secret', { timeout: 180_000 }, () => {
  before(async () => {
    [port, tlsPort, metricsPort] = await Promise.all([freePort(), freePort(), freePort()]);
    upstream = await startUpstream((req, res) => res.end(`app saw ${req.url}`));
    pki = await Pki.create();
    ca = await pki.ca('ca');
    const leaf = await ca.issue('one', { cn: 'app.test', dns: ['app.test'] });
    tlsDir = mountVolume('tls', { 'tls.crt': readFileSync(leaf.cert, 'utf8'), 'tls.key': readFileSync(leaf.key, 'utf8') });
    configDir = mountVolume('config', { 'config.kdl': config(['old']) });
    gw = startProc(process.execPath, [join(repoRoot, 'bin', 'sentinel.mjs'), 'run', '-c', join(configDir, 'config.kdl')], { cwd: tmp });
    await waitForStatus(`http://127.0.0.1:${port}/old`, 200, gw);
    // the metrics listener opens after the gateway's own (ci24a: the first reloads() was refused)
    await waitForStatus(`http://127.0.0.1:${metricsPort}/metrics`, 200, gw);
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
    await pki?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('serves the new routes after a ..data swap, with no failed request', async () => {
    assert.equal((await request(`http://127.0.0.1:${port}/new`)).status, 404);
    const before = await reloads('success');
    swapVolume(configDir, { 'config.kdl': config(['old', 'new']) });
    await loadUntil('/old', async () => (await request(`http://127.0.0.1:${port}/new`)).status === 200, 'serving /new');
    assert.equal((await request(`http://127.0.0.1:${port}/new`)).body, 'app saw /new');
    assert.equal(await reloads('success'), before + 1, 'one debounced reload for one swap');
  });

  it('a broken ConfigMap keeps the running routes, and says why in the log and the metric', async () => {
    const failures = await reloads('failure');
    swapVolume(configDir, { 'config.kdl': config(['old', 'new']).replace('upstream "app" }', 'upstream "missing" }') });
    // the metric can count the failure before the (asynchronous) log line is written: wait for both
    const logged = /config reload failed; continuing with the previous configuration/;
    await loadUntil('/new', async () => (await reloads('failure')) === failures + 1 && logged.test(gw.output()), 'a failed reload and its log line');
    assert.match(gw.output(), logged);
    assert.match(gw.output(), /missing/);
    assert.equal((await request(`http://127.0.0.1:${port}/new`)).status, 200);
    assert.equal((await request(`http://127.0.0.1:${port}/old`)).status, 200);
    // Fixed again: the next swap is picked up as usual.
    const ok = await reloads('success');
    swapVolume(configDir, { 'config.kdl': config(['old', 'new', 'newer']) });
    await loadUntil('/new', async () => (await request(`http://127.0.0.1:${port}/newer`)).status === 200, 'serving /newer');
    assert.equal(await reloads('success'), ok + 1);
  });

  it('serves the new certificate after a TLS Secret swap', async () => {
    const first = await servedSerial();
    const next = await ca.issue('two', { cn: 'app.test', dns: ['app.test'] });
    assert.notEqual(hex(next.serialHex), first);
    swapVolume(tlsDir, { 'tls.crt': readFileSync(next.cert, 'utf8'), 'tls.key': readFileSync(next.key, 'utf8') });
    await loadUntil('/old', async () => (await servedSerial()) === hex(next.serialHex), 'serving the new certificate');
  });
});
