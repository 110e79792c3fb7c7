// `sentinel [run] [-c FILE]`, `sentinel test -c FILE [--dump]`, `sentinel lint -c FILE`, --help, --version.
import { existsSync } from 'node:fs';
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { VERSION } from '../metrics/registry.ts';
import { ConfigError, formatDiagnostic, type Diagnostic } from '../config/diagnostics.ts';
import { DEFAULT_CONFIG_PATH } from '../config/load.ts';
import { loadAny, startGateway } from '../server/gateway.ts';
import { FEATURES } from '../features.ts';
import { configView } from '../config/view.ts';
import { parseWorkersFlag, resolveWorkerCount } from '../cluster/policy.ts';
import { writePidFile } from './pid-file.ts';

const HELP = `sentinel ${VERSION} — security-first reverse proxy and API gateway (KDL config)

Usage:
  sentinel [run] [-c FILE]      run the gateway (default: $SENTINEL_CONFIG, else the embedded default config)
  sentinel run --workers N      run N worker processes sharing the listeners (0 = one per CPU)
  sentinel test -c FILE         validate FILE (and its includes, TLS files); exit 1 on any error
  sentinel test -c FILE --dump  validate, then print the compiled config as JSON (secrets redacted)
  sentinel lint -c FILE         validate and print every warning (unknown keys, deprecated spellings); exit 0 unless invalid
  sentinel -t -c FILE           same as test (so are: --test, sentinel validate -c FILE)
  sentinel explain -c FILE [METHOD] URL [-H|--header 'Name: value']... [--listener ID] [--client-ip IP] [--json]
                                which route a request takes and why (each candidate in evaluation order
                                and the condition that failed), then its filters, agents, limits, cache,
                                upstream and balancing; exit 0 matched, 1 no route, 2 config error
  sentinel migrate -c FILE [--write]
                                rewrite deprecated forms (server -> system, legacy keys and spellings) into
                                current ones and print a unified diff; --write (-w) saves it; exit 2 when FILE
                                cannot be loaded (e.g. a schema-version newer than this gateway reads)

Options:
  -c, --config FILE   configuration file (.kdl); also --config=FILE
  --log-level LEVEL   override observability.logging.level (trace|debug|info|warn|error)
  --workers N         override system { worker-threads } (also --workers=N): 1 = one process,
                      N > 1 = a primary and N workers (cluster), 0 = one worker per CPU
  -h, --help          this help
  -v, --version       print the version

Signals: SIGHUP reloads the configuration; SIGTERM/SIGINT drain and stop (in cluster mode send
them to the primary: it validates once and coordinates every worker).
`;

interface Args {
  command: 'run' | 'test' | 'lint' | 'help' | 'version';
  config?: string;
  logLevel?: string;
  workers?: number;
  /** `test --dump`: print the compiled config's JSON view after a successful test */
  dump?: boolean;
}

export function parseArgs(argv: string[]): Args {
  const args: Args = { command: 'run' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === 'run' || a === 'test' || a === 'lint' || a === 'validate') args.command = a === 'validate' ? 'test' : a;
    else if (a === '-t' || a === '--test') args.command = 'test';
    else if (a === '-h' || a === '--help' || a === 'help') args.command = 'help';
    else if (a === '-v' || a === '--version' || a === 'version') args.command = 'version';
    else if (a === '-c' || a === '--config') {
      const v = argv[++i];
      if (!v) throw new Error(`${a} needs a file argument`);
      args.config = v;
    } else if (a.startsWith('--config=')) args.config = a.slice(9);
    else if (a === '--log-level') args.logLevel = argv[++i];
    else if (a === '--dump') args.dump = true;
    else if (a === '--workers') args.workers = parseWorkersFlag(argv[++i]);
    else if (a.startsWith('--workers=')) args.workers = parseWorkersFlag(a.slice(10));
    else throw new Error(`unknown argument "${a}" (see sentinel --help)`);
  }
  if (args.config === undefined && process.env.SENTINEL_CONFIG) args.config = process.env.SENTINEL_CONFIG;
  if (args.dump && args.command !== 'test') throw new Error('--dump goes with "sentinel test"');
  return args;
}

function printDiagnostics(list: readonly Diagnostic[]): void {
  for (const d of list) console.error(formatDiagnostic(d));
}

export async function main(argv: string[]): Promise<number> {
  // commands with their own arguments
  if (argv[0] === 'explain') return (await import('./explain/index.ts')).explainCommand(argv.slice(1));
  if (argv[0] === 'migrate') return (await import('./migrate/index.ts')).migrateCommand(argv.slice(1));
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    console.error(`sentinel: ${(err as Error).message}`);
    return 2;
  }
  if (args.command === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (args.command === 'version') {
    console.log(`sentinel ${VERSION}`);
    return 0;
  }
  if (args.config !== undefined && !existsSync(args.config)) {
    console.error(`sentinel: configuration file not found: ${args.config}`);
    return 1;
  }
  if (args.command === 'test' || args.command === 'lint') {
    const file = args.config ?? DEFAULT_CONFIG_PATH;
    try {
      const config = loadAny(args.config ? { configPath: args.config } : {});
      // checks that need I/O (TLS files, plugin filter modules), by the features the config uses
      for (const f of FEATURES) {
        const errors = f.uses(config) && f.check ? await f.check(config) : [];
        if (errors.length > 0) throw new Error(errors.join('\n'));
      }
      if (args.command === 'lint') printDiagnostics(config.warnings);
      else if (config.warnings.length > 0) console.error(`${config.warnings.length} warning(s); run "sentinel lint -c ${file}" to see them`);
      // the dump on stdout alone (it pipes into jq), the verdict on stderr
      if (args.dump) {
        console.log(JSON.stringify(configView(config), null, 2));
        console.error(`configuration file ${file} test is successful`);
      } else console.log(`configuration file ${file} test is successful`);
      return 0;
    } catch (err) {
      if (err instanceof ConfigError) printDiagnostics(err.diagnostics.filter((d) => d.severity === 'error' || args.command === 'lint'));
      else console.error(`error: ${(err as Error).message}`);
      console.error(`configuration file ${file} test failed`);
      return 1;
    }
  }
  const gatewayOpts = { ...(args.config ? { configPath: args.config } : {}), ...(args.logLevel ? { logLevel: args.logLevel } : {}) };
  if (cluster.isWorker) {
    const { runWorker } = await import('../cluster/worker.ts');
    await runWorker(gatewayOpts);
    return -1;
  }
  // `--workers 1` goes straight to the single process; otherwise the config decides, and in
  // cluster mode it is validated here, before anything is forked.
  let config;
  if (args.workers !== 1) {
    try {
      config = loadAny(gatewayOpts);
    } catch (err) {
      if (err instanceof ConfigError) printDiagnostics(err.diagnostics);
      else console.error(`sentinel: failed to start: ${(err as Error).message}`);
      return 1;
    }
  }
  const workers = config ? resolveWorkerCount(config.system['worker-threads'], args.workers, availableParallelism()) : 1;
  if (config && workers > 1) {
    const { runPrimary } = await import('../cluster/primary.ts');
    // A failing start stops the workers and exits 1 by itself (after they are gone).
    const started = await runPrimary({ ...gatewayOpts, workers, config }).then(
      () => true,
      (err: unknown) => (console.error(`sentinel: failed to start: ${(err as Error).message}`), false),
    );
    if (started && config.system['pid-file']) writePidFile(config.system['pid-file'], config.baseDir);
    return -1;
  }
  try {
    const gw = await startGateway({ ...gatewayOpts, handleSignals: true });
    if (gw.config.system['pid-file']) writePidFile(gw.config.system['pid-file'], gw.config.baseDir);
    return -1; // keep running
  } catch (err) {
    if (err instanceof ConfigError) printDiagnostics(err.diagnostics);
    else console.error(`sentinel: failed to start: ${(err as Error).message}`);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
if (code >= 0) process.exit(code);
