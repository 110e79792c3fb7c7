// Builds the production package the way a user gets it and installs it with --omit=dev into
// an empty folder: scripts/build.mjs into a staging copy of the package (never the checkout's
// dist/, which concurrent tests may be running), `npm pack`, `npm install --omit=dev <tarball>`.
// The re2 native addon is taken from the checkout's own build (same re2 version and Node):
// compiling it again from source takes minutes on this machine.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { request } from './http.ts';

const run = promisify(execFile);
export const repoRoot = resolve(import.meta.dirname, '..', '..');

export interface PackedInstall {
  /** Folder holding node_modules/ with the installed package. */
  appDir: string;
  /** The installed package's root (node_modules/sentinel-gateway). */
  pkgDir: string;
  tarball: string;
}

const npm = (args: string[], cwd: string, timeoutMs: number) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, timeout: timeoutMs, maxBuffer: 16 << 20 });

export async function installPackedBuild(tmp: string): Promise<PackedInstall> {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { name: string; files: string[] };
  const stage = join(tmp, 'stage');
  mkdirSync(stage, { recursive: true });
  await run(process.execPath, [join(repoRoot, 'scripts', 'build.mjs'), '--out-dir', join(stage, 'dist')], { cwd: repoRoot, timeout: 300_000 });
  cpSync(join(repoRoot, 'package.json'), join(stage, 'package.json'));
  for (const f of pkg.files) if (f !== 'dist/' && existsSync(join(repoRoot, f))) cpSync(join(repoRoot, f), join(stage, f), { recursive: true });
  // --ignore-scripts: prepack would build again, into the staging folder's own dist/ (done above).
  const packed = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], stage, 120_000);
  const tarball = join(tmp, (JSON.parse(packed.stdout) as { filename: string }[])[0]!.filename);
  const appDir = join(tmp, 'app');
  mkdirSync(appDir);
  writeFileSync(join(appDir, 'package.json'), '{ "name": "app", "private": true }\n');
  await npm(['install', '--omit=dev', '--ignore-scripts', '--prefer-offline', tarball], appDir, 300_000);
  const re2 = (dir: string) => (JSON.parse(readFileSync(join(dir, 'node_modules', 're2', 'package.json'), 'utf8')) as { version: string }).version;
  if (re2(appDir) !== re2(repoRoot)) throw new Error(`re2 ${re2(appDir)} installed, the checkout has ${re2(repoRoot)}: cannot reuse its addon`);
  cpSync(join(repoRoot, 'node_modules', 're2', 'build'), join(appDir, 'node_modules', 're2', 'build'), { recursive: true });
  return { appDir, pkgDir: join(appDir, 'node_modules', pkg.name), tarball };
}

export interface Proc {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

/** Spawns a program of the installed package and collects its output (for failure messages). */
export function startProc(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Proc {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `url` until it answers `status` (bounded by `timeoutMs`); throws with the process output. */
export async function waitForStatus(url: string, status: number, proc: Proc, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`process exited with ${proc.child.exitCode} before ${url} answered:\n${proc.output()}`);
    try {
      const r = await request(url, { timeoutMs: 2000 });
      if (r.status === status) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer ${status} in ${timeoutMs} ms (last: ${last}):\n${proc.output()}`);
}

/** Waits until `proc` prints `text` (bounded). */
export async function waitForOutput(proc: Proc, text: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes(text)) {
    if (proc.child.exitCode !== null) throw new Error(`process exited with ${proc.child.exitCode} before printing "${text}":\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`no "${text}" in ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
