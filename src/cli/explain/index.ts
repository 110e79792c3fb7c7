// `sentinel explain -c FILE [METHOD] URL [-H 'Name: value']... [--listener ID] [--client-ip IP] [--json]`
// Exit codes: 0 a route matched (or the front door / a probe / the ambiguous-query check answers), 1 no route matched
// (the report says whether a default-route or a 404 answers), 2 a config or usage error.
import { existsSync } from 'node:fs';
import { ConfigError, formatDiagnostic } from '../../config/diagnostics.ts';
import { loadAny } from '../../server/gateway.ts';
import { FEATURES } from '../../features.ts';
import { explain, type ExplainRequest } from './report.ts';
import { renderReport } from './render.ts';

const METHOD = /^[A-Za-z][A-Za-z-]*$/;

interface ExplainArgs extends ExplainRequest {
  config: string | undefined;
  json: boolean;
}

export function parseExplainArgs(argv: string[]): ExplainArgs {
  const positional: string[] = [];
  const headers: [string, string][] = [];
  let config: string | undefined;
  let json = false;
  let listener: string | undefined;
  let clientIp: string | undefined;
  const next = (i: number, flag: string): string => {
    const v = argv[i];
    if (v === undefined) throw new Error(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-c' || a === '--config') config = next(++i, a);
    else if (a.startsWith('--config=')) config = a.slice(9);
    else if (a === '-H' || a === '--header') {
      const h = next(++i, a);
      const colon = h.indexOf(':');
      if (colon <= 0) throw new Error(`${a} "${h}": expected "Name: value"`);
      headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()]);
    } else if (a === '--json') json = true;
    else if (a === '--listener') listener = next(++i, a);
    else if (a === '--client-ip') clientIp = next(++i, a);
    else if (a.startsWith('-') && a.length > 1) throw new Error(`unknown option "${a}" (see sentinel --help)`);
    else positional.push(a);
  }
  if (positional.length === 0) throw new Error('explain needs a URL: sentinel explain -c FILE [METHOD] URL');
  if (positional.length > 2) throw new Error(`unexpected argument "${positional[2]}": sentinel explain -c FILE [METHOD] URL`);
  const [method, target] = positional.length === 2 ? positional : ['GET', positional[0]!];
  if (!METHOD.test(method!)) throw new Error(`invalid method "${method}"`);
  if (config === undefined && process.env.SENTINEL_CONFIG) config = process.env.SENTINEL_CONFIG;
  return { config, json, method: method!, target: target!, headers, ...(listener ? { listener } : {}), ...(clientIp ? { clientIp } : {}) };
}

export function explainCommand(argv: string[]): number {
  let args: ExplainArgs;
  try {
    args = parseExplainArgs(argv);
  } catch (err) {
    console.error(`sentinel explain: ${(err as Error).message}`);
    return 2;
  }
  if (args.config !== undefined && !existsSync(args.config)) {
    console.error(`sentinel explain: configuration file not found: ${args.config}`);
    return 2;
  }
  let config;
  try {
    // exactly what `run` loads (same validators, same diagnostics)
    config = loadAny(args.config ? { configPath: args.config } : {});
  } catch (err) {
    if (err instanceof ConfigError) for (const d of err.diagnostics) console.error(formatDiagnostic(d));
    else console.error(`sentinel explain: ${(err as Error).message}`);
    return 2;
  }
  let report;
  try {
    report = explain(config, FEATURES, args, args.config ?? '(embedded default config)');
  } catch (err) {
    console.error(`sentinel explain: ${(err as Error).message}`);
    return 2;
  }
  process.stdout.write(args.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report));
  return report.front_door || report.probe || report.matched || report.ambiguous_query ? 0 : 1;
}
