// The proxies under test. Each starts as one foreground process on 127.0.0.1, pinned to the
// proxy core, and is ready once GET /small answers 200 through it.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

export const TARGETS: Target[] = [
  {
    name: 'sentinel',
    description: 'Sentinel (node bin/sentinel.mjs run -c bench/configs/sentinel-passthrough.kdl)',
    async unavailable(repoRoot) {
      if (!existsSync(join(repoRoot, 'bin', 'sentinel.mjs'))) return 'not available yet: bin/sentinel.mjs is missing (the CLI has not landed)';
      return null;
    },
    async start(ctx) {
      const config =
        ctx.sentinelConfig ??
        renderPassthrough(ctx.repoRoot, { listen: `127.0.0.1:${ctx.port}`, origin: `127.0.0.1:${ctx.originPort}`, metrics: `127.0.0.1:${ctx.metricsPort}` });
      const file = join(ctx.tmpDir, 'sentinel.kdl');
      writeFileSync(file, config);
      const proc = spawnPinned('sentinel', ctx.cpu, process.execPath, [join(ctx.repoRoot, 'bin', 'sentinel.mjs'), 'run', '-c', file], {
        cwd: ctx.repoRoot,
        env: { ...process.env, NODE_ENV: 'production' },
      });
      return ready(proc, ctx, 30_000);
    },
  },
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
