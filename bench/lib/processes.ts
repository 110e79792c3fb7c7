// Child processes of a bench run: spawned pinned to a core, output kept (tail only) for error
// messages, and always stopped, even when the runner is interrupted.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Proc {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Last few KiB of stdout+stderr. */
  output(): string;
  exited(): boolean;
  /** Resolves with the exit code (null when killed by a signal). */
  done: Promise<number | null>;
  stop(): Promise<void>;
}

const live = new Set<Proc>();
const OUTPUT_TAIL = 8192;

export function hasCommand(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Spawns `cmd args` pinned to `cpu` with taskset (when given), in its own process group. */
/** False, with the apt command on stderr, when one of the commands a bench needs is missing. */
export function requireCommands(cmds: readonly string[], aptPackages: string): boolean {
  const missing = cmds.filter((c) => !hasCommand(c));
  if (missing.length) console.error(`missing ${missing.join(', ')}: apt-get install -y ${aptPackages}`);
  return missing.length === 0;
}

export function spawnPinned(name: string, cpu: number | null, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Proc {
  const [file, argv] = cpu == null ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
  const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let hasExited = false;
  const done = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      hasExited = true;
      live.delete(proc);
      resolve(code);
    });
    child.on('error', (err) => {
      hasExited = true;
      live.delete(proc);
      tail += `\n${err.message}`;
      resolve(-1);
    });
  });
  const proc: Proc = {
    name,
    pid: child.pid ?? -1,
    child,
    output: () => tail,
    exited: () => hasExited,
    done,
    async stop(): Promise<void> {
      if (hasExited) return;
      signalGroup(child, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 3000);
      await done;
      clearTimeout(timer);
    },
  };
  live.add(proc);
  return proc;
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid) process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

/** Kills everything still running; used on exit and on Ctrl-C. */
export function killAll(): void {
  for (const p of live) signalGroup(p.child, 'SIGKILL');
  live.clear();
}

/**
 * A scratch directory for one bench run, removed at exit; every child is stopped at exit, and
 * Ctrl-C or SIGTERM (e.g. timeout(1)) exit through the same handler.
 */
export function benchScratchDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => {
    killAll();
    rmSync(dir, { recursive: true, force: true });
  });
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));
  return dir;
}

/** Runs a command to completion, pinned, and returns its stdout (throws with stderr on failure). */
export async function runPinned(name: string, cpu: number | null, cmd: string, args: string[], timeoutMs: number): Promise<string> {
  const [file, argv] = cpu == null ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${name} exited with ${code ?? signal}: ${(err.trim() || out.trim()).slice(-2000)}`));
    });
  });
}

/** A port that was free a moment ago (bind 127.0.0.1:0, read, close). */
// one picker for tests and benches: ports outside the ephemeral range (test/helpers/ports.ts says why)
export { freePort } from '../../test/helpers/ports.ts';

function getStatus(port: number, path: string, scheme: 'http' | 'https'): Promise<number> {
  const request = scheme === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    // Bench listeners use throw-away self-signed certificates: no verification on the probe.
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 1000, rejectUnauthorized: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Waits until GET path answers 200, or fails with the process's output when it dies or times out. */
export async function waitReady(proc: Proc, port: number, path: string, timeoutMs: number, scheme: 'http' | 'https' = 'http'): Promise<void> {
  await waitForStatus200(proc, `127.0.0.1:${port}${path}`, () => getStatus(port, path, scheme), timeoutMs);
}

/** Polls `probe` until it answers 200; fails with the process's output when it dies or times out. */
export async function waitForStatus200(proc: Proc, what: string, probe: () => Promise<number>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc.exited()) throw new Error(`${proc.name} exited during start-up:\n${proc.output().trim()}`);
    try {
      const status = await probe();
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await proc.stop();
  throw new Error(`${proc.name} not ready on ${what} after ${timeoutMs} ms (${last}):\n${proc.output().trim().slice(-1500)}`);
}
