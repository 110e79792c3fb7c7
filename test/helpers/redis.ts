// Starts a real redis-server on a free loopback port for a test (and the generic bits the
// memcached helper reuses). A missing binary is a failure that says how to install it.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { freePort } from './ports.ts';
import { START_MS, until } from './until.ts';

export function requireBinary(bin: string, aptPackage: string): void {
  const r = spawnSync(bin, ['--version'], { stdio: 'ignore' });
  if (r.error) throw new Error(`${bin} is not installed; install it with: apt-get install -y ${aptPackage}`);
}

export { freePort };

/** Sends `probe` and resolves true when the reply starts with `expect` (one attempt, 500 ms max). */
function probeOnce(port: number, probe: string, expect: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    let buf = '';
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 500);
    sock.on('connect', () => sock.write(probe));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.length >= expect.length) done(buf.startsWith(expect));
    });
    sock.on('error', () => done(false));
  });
}

/** Polls until the service answers (bounded by START_MS: a loaded machine starts processes slowly). */
export async function waitForService(port: number, probe: string, expect: string, name: string): Promise<void> {
  await until(`${name} on 127.0.0.1:${port} to answer`, () => probeOnce(port, probe, expect), START_MS, 50);
}

export interface ManagedService {
  readonly port: number;
  /** start again on the same port (after stop/kill) */
  start(): Promise<void>;
  /** SIGKILL: the abrupt death the fallback must survive */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a service that accepts but never answers (pause resolves once every thread has stopped) */
  pause(): Promise<void>;
  resume(): void;
  stop(): Promise<void>;
}

export function managedService(name: string, port: number, cmd: string, args: string[], probe: string, expect: string): ManagedService {
  let child: ChildProcess | undefined;
  const end = async (signal: NodeJS.Signals) => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGCONT'); // a paused process cannot act on SIGTERM
    c.kill(signal);
    await exited;
  };
  return {
    port,
    async start() {
      if (child) return;
      child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d.toString()));
      const c = child;
      const failed = once(c, 'exit').then(() => {
        throw new Error(`${name} exited at start: ${stderr.trim()}`);
      });
      failed.catch(() => undefined);
      await Promise.race([waitForService(port, probe, expect, name), failed]);
    },
    kill: () => end('SIGKILL'),
    async pause() {
      const pid = child?.pid;
      if (pid === undefined) return;
      child!.kill('SIGSTOP');
      // A multi-threaded server's threads stop one by one after kill() returns: one still running
      // answered a request sent right after it (ci23b: 9 of 10 memcached calls from the fallback).
      await until(`${name} (pid ${pid}) stopped in every thread`, () => stoppedInEveryThread(pid));
    },
    resume() {
      child?.kill('SIGCONT');
    },
    stop: () => end('SIGTERM'),
  };
}

/** Every thread of `pid` in state T (stopped), from /proc/PID/task/TID/stat ("tid (comm) STATE ..."). */
function stoppedInEveryThread(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      return stat[stat.lastIndexOf(')') + 2] === 'T';
    });
  } catch {
    return false; // a thread that exited between the listing and the read: look again
  }
}

export interface RedisServer extends ManagedService {
  readonly url: string;
}

/** `port`: a fixed port (when the caller must name it before the server starts); default a free one. */
export async function startRedis(opts: { port?: number } = {}): Promise<RedisServer> {
  requireBinary('redis-server', 'redis-server');
  const port = opts.port ?? (await freePort());
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no', '--loglevel', 'warning'];
  const svc = managedService('redis-server', port, 'redis-server', args, 'PING\r\n', '+PONG');
  await svc.start();
  return Object.assign(svc, { url: `redis://127.0.0.1:${port}` });
}
