// Carries out a Dockerfile without a Docker engine (test/integration/ship/image.test.ts). Each
// stage is an overlay over this machine's root (standing for the base image: Node 20 on Debian
// bookworm) with its own upper layer: WORKDIR and COPY write into the layer, RUN runs its command
// verbatim in a private mount namespace chrooted into the stage (so /src, /out, /app are the
// Dockerfile's own paths), except for the fragments the caller substitutes (and says why). A
// container is a fresh copy of the runtime stage's layer with a private network namespace, the
// image's USER, WORKDIR, ENV and ENTRYPOINT/CMD, and `-v` bind mounts. Needs root (mount, chroot).
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readlinkSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { startProc, type Proc } from './packed.ts';
import type { Missing } from './needs.ts';
import { START_MS, until } from './until.ts';

const run = promisify(execFile);

export interface Instruction {
  line: number;
  op: string;
  args: string;
}

/** Instructions with continuation lines joined, comments and blank lines dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = `${line.slice(0, -1)} ${lines[++i]!.trim()}`;
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile line ${start}: cannot parse "${line}"`);
    out.push({ line: start, op: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

/** .dockerignore: the patterns this helper understands (top-level names and `*` globs). */
export function parseDockerignore(text: string): RegExp[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((p) => {
      if (/[!?[\]]|\*\*|\//.test(p)) throw new Error(`.dockerignore pattern "${p}": this helper only understands top-level names and * globs`);
      return new RegExp(`^${p.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    });
}

export interface Stage {
  name: string;
  /** the stage's layer (files the Dockerfile added, at their image paths) */
  upper: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  expose: number[];
  stopsignal?: string;
  healthcheck?: string[];
  entrypoint?: string[];
  cmd?: string[];
}

/** A RUN fragment replaced by what the test can do here, and why (every one must match). */
export interface Substitution {
  from: string;
  to: string;
  why: string;
}

/** PATH of the node images; HOME of root during the build. */
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Why this machine cannot carry out a Dockerfile, if it cannot. */
export async function imageHostMissing(): Promise<Missing | undefined> {
  const how = 'run the test as root on Linux with overlayfs (CI does: .ci/run runs as root)';
  if (process.getuid?.() !== 0) return { what: 'root (mount namespaces, overlayfs, chroot) to carry out the Dockerfile', how };
  try {
    await run('unshare', ['-m', '-n', '--propagation', 'private', 'true']);
  } catch (e) {
    return { what: `mount and network namespaces (unshare: ${(e as Error).message.split('\n')[0]})`, how };
  }
  return undefined;
}

/** Mounts the overlay of `layer` over / at `merged` and execs `chroot ...args` (argv after the script). */
const ENTER = `set -e
layer=$1 work=$2 merged=$3 ro=$4; shift 4
mount -t overlay overlay -o "lowerdir=/,upperdir=$layer,workdir=$work" "$merged"
mount --rbind /dev "$merged/dev"
mount --rbind /proc "$merged/proc"
# mount points are made and resolved inside the root: an absolute symlink there (/var/run -> /run)
# must not lead out of it
inside() { chroot "$merged" readlink -f "$1"; }
while [ "$1" = --bind ]; do
  if [ -d "$2" ]; then chroot "$merged" mkdir -p "$3"; else chroot "$merged" sh -c 'mkdir -p "$(dirname "$1")" && touch "$1"' sh "$3"; fi
  mount --bind "$2" "$merged$(inside "$3")"; shift 3
done
while [ "$1" = --tmpfs ]; do chroot "$merged" mkdir -p "$2"; mount -t tmpfs -o mode=1777 tmpfs "$merged$(inside "$2")"; shift 2; done
[ "$ro" = ro ] && mount -o remount,ro,bind "$merged" || true
ip link set lo up 2>/dev/null || true
exec chroot "$@"
`;

export class DockerBuild {
  readonly stages = new Map<string, Stage>();
  private args = new Map<string, string>();
  private n = 0;
  /** what each RUN ran, for the test to report */
  readonly ran: { line: number; command: string }[] = [];
  private used = new Set<Substitution>();

  constructor(
    private readonly root: string,
    private readonly context: string,
    private readonly ignore: RegExp[],
    private readonly substitutions: Substitution[],
  ) {}

  /** Carries out every instruction; the last stage is the image. */
  async build(instructions: Instruction[]): Promise<Stage> {
    let stage: Stage | undefined;
    for (const ins of instructions) {
      const where = `Dockerfile line ${ins.line} (${ins.op} ${ins.args})`;
      if (ins.op === 'ARG') {
        const [k, v] = ins.args.split('=');
        this.args.set(k!, v ?? '');
        continue;
      }
      if (ins.op === 'FROM') {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
        if (!m) throw new Error(where);
        const name = m[2] ?? `stage${this.stages.size}`;
        const upper = join(this.root, 'stages', name);
        mkdirSync(upper, { recursive: true });
        stage = { name, upper, workdir: '/', env: {}, expose: [] };
        this.stages.set(name, stage);
        continue;
      }
      if (!stage) throw new Error(`${where}: before any FROM`);
      switch (ins.op) {
        case 'WORKDIR':
          stage.workdir = posix.resolve(stage.workdir, ins.args);
          mkdirSync(join(stage.upper, stage.workdir), { recursive: true });
          break;
        case 'ENV':
          for (const kv of ins.args.split(/\s+/)) {
            const eq = kv.indexOf('=');
            if (eq < 1) throw new Error(`${where}: only ENV k=v is understood`);
            stage.env[kv.slice(0, eq)] = kv.slice(eq + 1);
          }
          break;
        case 'COPY':
          this.copy(stage, ins.args, where);
          break;
        case 'RUN':
          await this.runStep(stage, ins);
          break;
        case 'USER':
          stage.user = ins.args;
          break;
        case 'EXPOSE':
          stage.expose.push(...ins.args.split(/\s+/).map((p) => Number(p.replace(/\/tcp$/, ''))));
          break;
        case 'STOPSIGNAL':
          stage.stopsignal = ins.args;
          break;
        case 'HEALTHCHECK': {
          const m = /\bCMD\s+(\[.*\])$/.exec(ins.args);
          if (!m) throw new Error(`${where}: only the exec form (CMD [...]) is understood`);
          stage.healthcheck = JSON.parse(m[1]!) as string[];
          break;
        }
        case 'ENTRYPOINT':
        case 'CMD': {
          if (!ins.args.startsWith('[')) throw new Error(`${where}: only the exec form is understood (a shell form needs /bin/sh in the image)`);
          const argv = JSON.parse(ins.args) as string[];
          if (ins.op === 'ENTRYPOINT') stage.entrypoint = argv;
          else stage.cmd = argv;
          break;
        }
        default:
          throw new Error(`${where}: this helper does not know ${ins.op}; teach it (test/helpers/image.ts)`);
      }
    }
    const unused = this.substitutions.filter((s) => !this.used.has(s));
    if (unused.length) throw new Error(`substitutions that match no RUN (the Dockerfile changed?): ${unused.map((s) => s.from).join(' | ')}`);
    return stage!;
  }

  private copy(stage: Stage, args: string, where: string): void {
    const words = args.split(/\s+/);
    const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : undefined;
    if (words.some((w) => w.startsWith('--'))) throw new Error(`${where}: COPY flags other than --from are not understood`);
    const dest = posix.resolve(stage.workdir, words.pop()!);
    const intoDir = words.length > 1 || args.endsWith('/');
    for (const src of words) {
      let source: string;
      if (from) {
        const other = this.stages.get(from);
        if (!other) throw new Error(`${where}: no stage ${from}`);
        source = join(other.upper, src);
      } else {
        const top = src.replace(/^\.\//, '').split('/')[0]!;
        if (this.ignore.some((re) => re.test(top))) throw new Error(`${where}: ${src} is excluded by .dockerignore, so docker build would not find it`);
        source = join(this.context, src);
      }
      if (!existsSync(source)) throw new Error(`${where}: ${src} does not exist${from ? ` in stage ${from}` : ' in the context'}`);
      const isDir = readdirSafe(source) !== undefined;
      // a directory's contents go into dest; a file goes into dest/ (a folder) or becomes dest
      const target = join(stage.upper, isDir ? dest : intoDir ? posix.join(dest, posix.basename(src)) : dest);
      mkdirSync(isDir ? target : dirname(target), { recursive: true });
      cpSync(source, target, { recursive: true, verbatimSymlinks: true });
    }
  }

  private async runStep(stage: Stage, ins: Instruction): Promise<void> {
    let command = ins.args;
    for (const s of this.substitutions) {
      if (!command.includes(s.from)) continue;
      command = command.replace(s.from, s.to);
      this.used.add(s);
    }
    this.ran.push({ line: ins.line, command });
    const env = { PATH: IMAGE_PATH, HOME: '/root', ...stage.env };
    const { work, merged } = this.scratch();
    try {
      await run('unshare', ['-m', '--propagation', 'private', 'bash', '-c', ENTER, 'enter', stage.upper, work, merged, 'rw', merged, '/usr/bin/env', '-i', `--chdir=${stage.workdir}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), '/bin/sh', '-c', command], {
        timeout: 600_000,
        maxBuffer: 64 << 20,
      });
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      throw new Error(`RUN at Dockerfile line ${ins.line} failed: ${command}\n${err.stderr ?? ''}${err.stdout ?? ''}`, { cause: e });
    }
  }

  private scratch(): { work: string; merged: string } {
    const base = join(this.root, 'mnt', String(this.n++));
    mkdirSync(join(base, 'work'), { recursive: true });
    mkdirSync(join(base, 'merged'), { recursive: true });
    return { work: join(base, 'work'), merged: join(base, 'merged') };
  }

  /** A container of `image`: a copy of its layer, own network, the image's user and env. */
  async container(image: Stage, o: ContainerOptions = {}): Promise<Container> {
    const { work, merged } = this.scratch();
    const layer = `${work}-layer`;
    await run('cp', ['-al', image.upper, layer]);
    const env = { PATH: IMAGE_PATH, HOME: '/', HOSTNAME: 'sentinel', ...image.env, ...o.env };
    const user = o.user ?? image.user;
    const argv = [...(o.command ?? image.entrypoint ?? []), ...(o.args ?? image.cmd ?? [])];
    const mounts = [...(o.binds ?? []).flatMap(([host, path]) => ['--bind', host, path]), ...(o.tmpfs ?? []).flatMap((p) => ['--tmpfs', p])];
    const chroot = [...(user ? [`--userspec=${user}`] : []), merged, '/usr/bin/env', '-i', `--chdir=${image.workdir}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];
    const enter = ['unshare', '-m', '--propagation', 'private', 'bash', '-c', ENTER, 'enter', layer, work, merged, o.readOnlyRoot ? 'ro' : 'rw', ...mounts, ...chroot];
    // a pod's containers share the first one's network namespace
    const [cmd, ...args] = o.netOf ? ['nsenter', `--net=/proc/${o.netOf.pid}/ns/net`, ...enter] : [enter[0]!, enter[1]!, '-n', ...enter.slice(2)];
    const proc = startProc(cmd!, args, { cwd: this.root });
    // Started once its process has chrooted (after its namespaces and mounts). Before that its
    // /proc/PID/ns/net and root are this machine's: a request or an exec would reach the host (seen:
    // a gateway on the host's 127.0.0.1:8080 answered a container's first /_/health).
    await until(
      () => `container ${argv.join(' ')} to enter its root:\n${proc.output()}`,
      () => {
        if (proc.child.exitCode !== null) throw new Error(`container ${argv.join(' ')} exited with ${proc.child.exitCode} before entering its root:\n${proc.output()}`);
        const root = rootOf(proc.child.pid!);
        return root !== undefined && root !== '/';
      },
      START_MS,
      5,
    );
    return new Container(proc, image, env, user);
  }
}

export interface ContainerOptions {
  /** replaces the ENTRYPOINT (Kubernetes `command`) */
  command?: string[];
  /** replaces the CMD (docker run's arguments, Kubernetes `args`) */
  args?: string[];
  env?: Record<string, string>;
  user?: string;
  /** [host path, container path] (docker run -v) */
  binds?: [string, string][];
  /** container paths given an empty tmpfs (an emptyDir) */
  tmpfs?: string[];
  readOnlyRoot?: boolean;
  /** join this container's network namespace (one pod) */
  netOf?: Container;
}

/** The root directory of process `pid` (its chroot), or undefined while it cannot be read. */
function rootOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/root`);
  } catch {
    return undefined;
  }
}

function readdirSafe(path: string): string[] | undefined {
  try {
    return readdirSync(path);
  } catch {
    return undefined;
  }
}

export class Container {
  constructor(
    readonly proc: Proc,
    private readonly image: Stage,
    private readonly env: Record<string, string>,
    private readonly user: string | undefined,
  ) {}

  get pid(): number {
    return this.proc.child.pid!;
  }

  /** `docker exec`: `argv` in the container's root, network, working dir, user and env. */
  async exec(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const [uid, gid] = (this.user ?? '0:0').split(':');
    const args = ['-t', String(this.pid), '-m', '-n', '-r', '-w', '-S', uid!, '-G', gid ?? uid!, '/usr/bin/env', '-i', ...Object.entries(this.env).map(([k, v]) => `${k}=${v}`), ...argv];
    return run('nsenter', args, { timeout: 30_000 }).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
  }

  /** A program of this machine (not the image) run in the container's network namespace. */
  inNet(cmd: string, args: string[]): Proc {
    return startProc('nsenter', [`--net=/proc/${this.pid}/ns/net`, cmd, ...args], { cwd: '/' });
  }

  /** An HTTP request from the pod's network (as the kubelet's probes come): status and body. */
  async request(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, string> }> {
    const script = `const r = await fetch(process.argv[1], { headers: JSON.parse(process.argv[2]), signal: AbortSignal.timeout(5000) }); console.log(JSON.stringify({ status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() }));`;
    const { stdout } = await run('nsenter', [`--net=/proc/${this.pid}/ns/net`, process.execPath, '--input-type=module', '-e', script, url, JSON.stringify(headers)], { timeout: 30_000 });
    return JSON.parse(stdout) as { status: number; body: string; headers: Record<string, string> };
  }

  /** Polls `url` from the pod's network until it answers `status` (bounded). */
  async waitFor(url: string, status: number, timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (this.proc.child.exitCode !== null) throw new Error(`the container exited with ${this.proc.child.exitCode} before ${url} answered:\n${this.proc.output()}`);
      try {
        const r = await this.request(url);
        if (r.status === status) return;
        last = `HTTP ${r.status}`;
      } catch (e) {
        last = (e as Error).message.split('\n')[0]!;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${url} did not answer ${status} in ${timeoutMs} ms (last: ${last}):\n${this.proc.output()}`);
  }

  /** docker stop: the image's STOPSIGNAL, then the exit code. */
  async stop(): Promise<number | null> {
    const signal = (this.image.stopsignal ?? 'SIGTERM') as NodeJS.Signals;
    if (this.proc.child.exitCode !== null) return this.proc.child.exitCode;
    const exited = new Promise<void>((r) => this.proc.child.once('exit', () => r()));
    this.proc.child.kill(signal);
    const timer = setTimeout(() => this.proc.child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
    return this.proc.child.exitCode;
  }
}

/** Files under `dir`, relative, sorted (for comparing a layer with a tarball's list). */
export function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

