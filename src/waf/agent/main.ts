// sentinel-waf: the OWASP CRS agent program (bin/sentinel-waf.mjs launches this).
// Loads the rules once at start, serves the Sentinel agent protocol v2 on a Unix socket,
// and rebuilds the rule set when a Configure event changes the configuration.
import cluster from 'node:cluster';
import { existsSync, unwatchFile, watchFile } from 'node:fs';
import { availableParallelism } from 'node:os';

import { runAgent } from '../../agent-sdk/index.ts';
import { resolveWorkerCount } from '../../cluster/policy.ts';
import { ConfigError, configFromCli, configFromJson, usageText, type WafAgentConfig } from './config.ts';
import { locateCrs } from './crs-location.ts';
import { wafHandlers } from './in-process.ts';
import { buildWaf, WafService } from './service.ts';
import { runTune } from './tune-cli.ts';
import { runWafPrimary, WORKER_READY } from './workers.ts';

function fail(message: string): never {
  process.stderr.write(`sentinel-waf: ${message}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
if (argv[0] === 'tune') process.exit(runTune(argv.slice(1)));
if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(usageText());
  process.exit(0);
}

let config: WafAgentConfig;
try {
  config = configFromCli(argv, process.env);
} catch (e) {
  fail(e instanceof ConfigError ? e.message : String(e));
}
const crs = locateCrs(config, existsSync);
if (!crs.ok) fail(crs.message);
config.crsDir = crs.crsDir;

const workers = resolveWorkerCount(config.workers, undefined, availableParallelism());
if (workers > 1 && cluster.isPrimary) await runWafPrimary({ workers, socketPath: config.socketPath });
else await serve();

async function serve(): Promise<void> {
  const started = Date.now();
  let service: WafService;
  try {
    const waf = buildWaf(config);
    service = new WafService(waf, config);
    process.stderr.write(
      `sentinel-waf: ${waf.ruleCount} rules loaded in ${Date.now() - started} ms (paranoia ${config.paranoiaLevel}, ${config.mode})\n`,
    );
  } catch (e) {
    fail(`cannot load rules: ${(e as Error).message}`);
  }

  const agent = await runAgent({
    socketPath: config.socketPath,
    name: 'sentinel-waf',
    version: '0.1.0',
    maxConcurrency: 100,
    onConfigure(json) {
      const next = configFromJson(config, json);
      if (next.socketPath !== config.socketPath) throw new ConfigError('the socket path cannot change at run time');
      service.reconfigure(buildWaf(next), next);
      if (next.exclusionsFile !== config.exclusionsFile) {
        if (config.exclusionsFile) unwatchFile(config.exclusionsFile);
        watchExclusions(next.exclusionsFile);
      }
      config = next;
      process.stderr.write(`sentinel-waf: reconfigured (paranoia ${config.paranoiaLevel}, ${config.mode})\n`);
    },
    ...wafHandlers(service),
    sharedListener: cluster.isWorker,
  });
  if (cluster.isWorker) {
    process.send?.(WORKER_READY);
    // The primary is gone (killed): nobody routes connections here any more.
    process.on('disconnect', () => process.exit(0));
  } else process.stderr.write(`sentinel-waf: listening on ${agent.socketPath}\n`);

  /** Rebuilds the rule set with the current config (exclusions file re-read); a broken file keeps the old rules. */
  function reload(why: string): void {
    const t0 = Date.now();
    try {
      service.reconfigure(buildWaf(config), config);
      process.stderr.write(`sentinel-waf: rules reloaded (${why}) in ${Date.now() - t0} ms\n`);
    } catch (e) {
      process.stderr.write(`sentinel-waf: reload (${why}) failed, the previous rules stay: ${(e as Error).message}\n`);
    }
  }

  function watchExclusions(file: string | undefined): void {
    // Polling (1 s) survives editors and `tune --out` replacing the file by rename.
    if (file) watchFile(file, { interval: 1000 }, (cur, prev) => cur.mtimeMs !== prev.mtimeMs && reload(`${file} changed`));
  }
  watchExclusions(config.exclusionsFile);
  process.on('SIGHUP', () => reload('SIGHUP'));

  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void agent.close().then(() => process.exit(0));
    });
  }
}
