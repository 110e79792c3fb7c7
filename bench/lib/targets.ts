// The proxies under test. Each starts as one foreground process on 127.0.0.1, pinned to the
// proxy core, and is ready once GET /small answers 200 through it.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCommand, runPinned, spawnPinned, waitReady, type Proc } from './processes.ts';
import { haproxyConf, nginxProxyConf, SMALL_PATH } from './configs.ts';

export interface TargetContext {
  repoRoot: string;
  /** A temp dir for this start's files. */
  tmpDir: string;
  originPort: number;
  port: number;
  metricsPort: number;
  cpu: number | null;
  /** Sentinel only: the KDL to run (default: the passthrough config). */
  sentinelConfig?: string;
  /** Readiness probe; default GET /small over http. */
  readyPath?: string;
  readyScheme?: 'http' | 'https';
}

export interface Target {
  name: string;
  description: string;
  /** Not in the default set (keeps a default run near 10 minutes); run it with --targets. */
  optIn?: boolean;
  /** null when the target can run here; otherwise the reason it is left out (printed). */
  unavailable(repoRoot: string): Promise<string | null>;
  start(ctx: TargetContext): Promise<Proc>;
}

const READY_MS = 15_000;

async function ready(proc: Proc, ctx: TargetContext, timeoutMs = READY_MS): Promise<Proc> {
  await waitReady(proc, ctx.port, ctx.readyPath ?? SMALL_PATH, timeoutMs, ctx.readyScheme ?? 'http');
  return proc;
}

/** bench/configs/sentinel-passthrough.kdl with its {{listen}}, {{origin}} and {{metrics}} filled in. */
export function renderPassthrough(repoRoot: string, vars: { listen: string; origin: string; metrics: string }): string {
  const template = readFileSync(join(repoRoot, 'bench', 'configs', 'sentinel-passthrough.kdl'), 'utf8');
  return template.replace(/\{\{(listen|origin|metrics)\}\}/g, (_, k: 'listen' | 'origin' | 'metrics') => vars[k]);
}

function nodePeer(name: string, file: string, description: string, needsPeerDeps: boolean, optIn = false): Target {
  return {
    name,
    description,
    optIn,
    async unavailable(repoRoot) {
      return needsPeerDeps ? ensurePeerDeps(repoRoot) : null;
    },
    async start(ctx) {
      const proc = spawnPinned(name, ctx.cpu, process.execPath, ['--import', 'tsx', join('bench', 'peers', file), '--port', String(ctx.port), '--upstream', `http://127.0.0.1:${ctx.originPort}`], {
        cwd: ctx.repoRoot,
        env: { ...process.env, NODE_ENV: 'production' },
      });
      return ready(proc, ctx);
    },
  };
}

let peerDeps: Promise<string | null> | undefined;

/** Installs bench/peers/package.json's pinned peers (fast-gateway, http-proxy) once, with npm ci. */
export function ensurePeerDeps(repoRoot: string): Promise<string | null> {
  peerDeps ??= (async () => {
    const dir = join(repoRoot, 'bench', 'peers');
    const installed = ['fast-gateway', 'http-proxy'].every((p) => existsSync(join(dir, 'node_modules', p, 'package.json')));
    if (installed) return null;
    console.log('installing the bench peers (bench/peers/package.json) with npm ci ...');
    try {
      await runPinned('npm ci', null, 'npm', ['ci', '--prefix', dir, '--no-audit', '--no-fund', '--ignore-scripts'], 300_000);
      return null;
    } catch (err) {
      return `npm ci in bench/peers failed: ${(err as Error).message.slice(0, 500)}`;
    }
  })();
  return peerDeps;
}

const sentinelBuilds = new Map<string, Promise<string>>();

/**
 * Compiles Sentinel once per bench run (tsc, tsconfig.build.json) into .tmp/bench/dist and returns
 * the CLI entry. The bench measures what production runs: plain JavaScript, no tsx loader (tsx's
 * esbuild output wraps every function expression in a `__name` helper, and the loader itself
 * costs ~40 MiB of RSS). `sentinel-tsx` measures the from-source launcher.
 */
export function buildSentinel(repoRoot: string, opts: { ownDir?: boolean } = {}): Promise<string> {
  const key = `${repoRoot}\0${opts.ownDir ? 'own' : ''}`;
  let build = sentinelBuilds.get(key);
  build ??= (async () => {
    // ownDir: a directory of this run's own (removed at exit), so that another bench rebuilding
    // the shared .tmp/bench/dist of the same checkout (a --baseline tree several runs use) cannot
    // pull the files from under a run that starts fresh gateways for many minutes
    const outDir = join(repoRoot, '.tmp', 'bench', opts.ownDir ? `dist-${process.pid}` : 'dist');
    if (opts.ownDir) process.on('exit', () => rmSync(outDir, { recursive: true, force: true }));
    rmSync(outDir, { recursive: true, force: true });
    console.log('compiling Sentinel for the bench (tsc -p tsconfig.build.json) ...');
    await runPinned('tsc', null, process.execPath, [join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(repoRoot, 'tsconfig.build.json'), '--outDir', outDir], 300_000);
    return join(outDir, 'src', 'cli', 'main.js');
  })();
  sentinelBuilds.set(key, build);
  return build;
}

/**
 * `sentinel-baseline` (opt-in): the same compiled Sentinel built from another checkout, given as
 * SENTINEL_BASELINE=<dir> (a git worktree of the commit to compare, with node_modules), so a
 * change is measured against its parent in the same run: `git worktree add /tmp/base <commit> &&
 * cp -a node_modules /tmp/base/ && SENTINEL_BASELINE=/tmp/base npm run bench -- --targets sentinel,sentinel-baseline`.
 */
function baselineRoot(): string | undefined {
  return process.env.SENTINEL_BASELINE || undefined;
}

function sentinelTarget(name: string, fromSource: boolean, root?: () => string | undefined): Target {
  return {
    name,
    description: fromSource
      ? 'Sentinel from source (node bin/sentinel.mjs: tsx loader)'
      : 'Sentinel compiled (tsc build, node dist/src/cli/main.js: what production runs)',
    optIn: fromSource || root !== undefined,
    async unavailable(ownRoot) {
      const repoRoot = root ? root() : ownRoot;
      if (repoRoot === undefined) return 'set SENTINEL_BASELINE to the checkout to compare against';
      if (!existsSync(join(repoRoot, 'bin', 'sentinel.mjs'))) return 'not available yet: bin/sentinel.mjs is missing (the CLI has not landed)';
      if (fromSource) return null;
      try {
        await buildSentinel(repoRoot);
        return null;
      } catch (err) {
        return `the TypeScript build failed: ${(err as Error).message.slice(0, 500)}`;
      }
    },
    async start(ctx) {
      const config =
        ctx.sentinelConfig ??
        renderPassthrough(ctx.repoRoot, { listen: `127.0.0.1:${ctx.port}`, origin: `127.0.0.1:${ctx.originPort}`, metrics: `127.0.0.1:${ctx.metricsPort}` });
      const file = join(ctx.tmpDir, 'sentinel.kdl');
      writeFileSync(file, config);
      const repoRoot = root?.() ?? ctx.repoRoot;
      const entry = fromSource ? join(repoRoot, 'bin', 'sentinel.mjs') : await buildSentinel(repoRoot);
      const proc = spawnPinned(name, ctx.cpu, process.execPath, [entry, 'run', '-c', file], {
        cwd: repoRoot,
        env: { ...process.env, NODE_ENV: 'production' },
      });
      return ready(proc, ctx, 30_000);
    },
  };
}

export const TARGETS: Target[] = [
  sentinelTarget('sentinel', false),
  sentinelTarget('sentinel-tsx', true),
  sentinelTarget('sentinel-baseline', false, baselineRoot),
  {
    name: 'nginx',
    description: 'nginx (apt), 1 process, keep-alive upstream pool',
    async unavailable() {
      return hasCommand('nginx') ? null : 'nginx is not installed: apt-get install -y nginx';
    },
    async start(ctx) {
      const conf = join(ctx.tmpDir, 'nginx-proxy.conf');
      writeFileSync(conf, nginxProxyConf(ctx.port, ctx.originPort, ctx.tmpDir));
      return ready(spawnPinned('nginx', ctx.cpu, 'nginx', ['-e', 'stderr', '-p', ctx.tmpDir, '-c', conf]), ctx);
    },
  },
  {
    name: 'haproxy',
    description: 'HAProxy (apt), 1 thread, http-reuse always',
    async unavailable() {
      return hasCommand('haproxy') ? null : 'haproxy is not installed: apt-get install -y haproxy';
    },
    async start(ctx) {
      const conf = join(ctx.tmpDir, 'haproxy.cfg');
      writeFileSync(conf, haproxyConf(ctx.port, ctx.originPort));
      return ready(spawnPinned('haproxy', ctx.cpu, 'haproxy', ['-db', '-f', conf]), ctx);
    },
  },
  nodePeer('raw', 'raw-forwarder.ts', 'node:http + undici Pool, hand-written (bench/peers/raw-forwarder.ts)', false),
  nodePeer('fastify-http-proxy', 'fastify-http-proxy.ts', '@fastify/http-proxy (reply-from, undici)', false),
  nodePeer('fast-gateway', 'fast-gateway.ts', 'fast-gateway 3.4.7 (5.0.1 needs fast-proxy-lite@^1.1.3, missing from the registry)', true),
  nodePeer('node-http-proxy', 'node-http-proxy.ts', 'http-proxy 1.18.1 with a keep-alive agent', true, true),
];
