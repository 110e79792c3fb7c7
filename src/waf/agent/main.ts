// sentinel-waf: the OWASP CRS agent program (bin/sentinel-waf.mjs launches this).
// Loads the rules once at start, serves the Sentinel agent protocol v2 on a Unix socket,
// and rebuilds the rule set when a Configure event changes the configuration.
import { runAgent } from '../../agent-sdk/index.ts';
import { existsSync } from 'node:fs';
import { ConfigError, configFromCli, configFromJson, usageText, type WafAgentConfig } from './config.ts';
import { locateCrs } from './crs-location.ts';
import { buildWaf, WafService } from './service.ts';

function fail(message: string): never {
  process.stderr.write(`sentinel-waf: ${message}\n`);
  process.exit(2);
}

const argv = process.argv.slice(2);
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
    config = next;
    process.stderr.write(`sentinel-waf: reconfigured (paranoia ${config.paranoiaLevel}, ${config.mode})\n`);
  },
  onRequestHeaders: (ev) => service.onRequestHeaders(ev),
  onRequestBodyChunk: (ev) => service.onRequestBodyChunk(ev),
  onResponseHeaders: (ev) => service.onResponseHeaders(ev),
  onResponseBodyChunk: (ev) => service.onResponseBodyChunk(ev),
  onRequestComplete: (ev) => service.onRequestComplete(ev),
});
process.stderr.write(`sentinel-waf: listening on ${agent.socketPath}\n`);

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    void agent.close().then(() => process.exit(0));
  });
}
