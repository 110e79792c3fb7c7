// sentinel-waf inside the gateway process (`agent "waf" { in-process "sentinel-waf" }`): the same
// WafService as the socket agent, built from the agent block's `config {}` (the keys of the
// Configure event, docs/waf.md), answering the same events without the socket hop. Loaded lazily
// by plugins/agents/in-process.ts, so a gateway without it never loads the engine.
import { existsSync } from 'node:fs';

import type { AgentHandlers } from '../../agent-sdk/index.ts';
import { ConfigError, configFromJson, defaultConfig } from './config.ts';
import { locateCrs } from './crs-location.ts';
import { buildWaf, WafService } from './service.ts';

/** Events after the request-side decision: when none is subscribed, the decision ends the transaction. */
const LATER_EVENTS = ['response_headers', 'response_body', 'request_complete'];

/** True when the gateway sends nothing after the request-side decision (unknown subscriptions: false). */
export function requestSideOnly(events: ReadonlySet<string> | undefined): boolean {
  return events !== undefined && !LATER_EVENTS.some((e) => events.has(e));
}

/**
 * Builds the engine (1-2 s: the CRS is parsed and compiled) and returns its event handlers.
 * `events`: what the agent block subscribes to (the gateway sends nothing else).
 */
export function createWafHandlers(
  configJson: unknown,
  opts: { events?: ReadonlySet<string> } = {},
  env: Record<string, string | undefined> = process.env,
): AgentHandlers {
  const base = defaultConfig();
  if (env.CRS_DIR) base.crsDir = env.CRS_DIR;
  const config = configFromJson(base, configJson ?? {});
  const crs = locateCrs(config, existsSync);
  if (!crs.ok) throw new ConfigError(crs.message);
  config.crsDir = crs.crsDir;
  // In-process the subscriptions are known exactly: they decide, whatever the key says.
  if (opts.events !== undefined) config.requestSideOnly = requestSideOnly(opts.events);
  return wafHandlers(new WafService(buildWaf(config), config));
}

/** The protocol events -> the service (shared with the socket agent's main.ts). */
export function wafHandlers(service: WafService): AgentHandlers {
  return {
    onRequestHeaders: (ev) => service.onRequestHeaders(ev),
    onRequestBodyChunk: (ev) => service.onRequestBodyChunk(ev),
    onResponseHeaders: (ev) => service.onResponseHeaders(ev),
    onResponseBodyChunk: (ev) => service.onResponseBodyChunk(ev),
    onRequestComplete: (ev) => service.onRequestComplete(ev),
  };
}
