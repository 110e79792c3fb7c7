// The agents feature's part of the config compiler (its manifest's `compile`): the references
// and shapes only this feature knows, and its entries in the config views. Run by every compile, with or without the manifests'
// validators, so `sentinel test` and a reload report them like the core's own references.
import type { CompiledRoute, ConfigCompileContext, ConfigCompileSteps } from '../../src/config/compile.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { didYouMean } from '../../src/config/diagnostics.ts';
import { defineAgent, defineAgentFilter, sendsRequestBodies, type AgentBlock } from './definition.ts';

export const agentsCompile: ConfigCompileSteps = {
  config(raw, routes, { filters, diagnostics, baseDir }) {
    const agents = (raw.agents ?? []) as AgentBlock[]; // Named() blocks carry their id
    const error = (path: string, message: string) => diagnostics.push({ severity: 'error', path, message });
    // filter -> agent
    const agentIds = new Set(agents.map((a) => a.id));
    for (const f of filters.values()) {
      if (f.type !== 'agent') continue;
      const agent = f.config.agent;
      if (typeof agent !== 'string') error(`filters > filter "${f.id}"`, 'an agent filter needs agent "<id>"');
      else if (!agentIds.has(agent)) error(`filters > filter "${f.id}" > agent`, `unknown agent "${agent}"${didYouMean(agent, agentIds)}`);
    }
    // one transport per agent
    for (const a of agents) {
      const n = [a['unix-socket'], a.grpc, a.http, a['in-process']].filter((x) => x !== undefined).length;
      if (n !== 1) error(`agents > agent "${a.id}"`, n === 0 ? 'needs a transport: unix-socket "/path", grpc "http://host:port", http "http://..." or in-process "sentinel-waf"' : 'give exactly one transport');
    }
    const warn = (path: string, message: string) => diagnostics.push({ severity: 'warning', path, message });
    overLimitWarnings(raw, routes, filters, agents, baseDir, warn);
    notActedOn(raw, agents, warn);
    return {};
  },
  view: (c) => ({ agents: c.raw.agents ?? [] }),
  // the /config builtin: which agents, not their settings
  dump: (c) => ({
    agents: ((c.raw.agents ?? []) as AgentBlock[]).map((a) => ({ id: a.id, type: a.type ?? null })),
    waf: c.raw.waf ? { mode: c.raw.waf.mode ?? 'prevention' } : null,
  }),
};

/**
 * A fail-open agent filter that inspects request bodies forwards a body over its limit uninspected
 * (the reference's behaviour): a client pads its attack past the limit. Said once per filter unless
 * the filter says `body-over-limit` itself (docs/security.md, "Session 19 audit").
 */
function overLimitWarnings(raw: RawConfig, routes: readonly CompiledRoute[], filters: ConfigCompileContext['filters'], agents: readonly AgentBlock[], baseDir: string, warn: (path: string, message: string) => void): void {
  if (raw.waf?.['body-inspection']?.['inspect-request-body'] === false) return;
  const warned = new Set<string>();
  for (const r of routes) {
    for (const id of r.filters) {
      const f = filters.get(id);
      if (f?.type !== 'agent' || warned.has(id) || typeof f.config.agent !== 'string') continue;
      let s;
      try {
        s = defineAgentFilter(id, f.config);
      } catch {
        continue; // reported as an error elsewhere
      }
      if (s.bodyOverLimit !== undefined || (s.failureMode ?? r.failureMode) !== 'open') continue;
      const block = agents.find((a) => a.id === s.agent);
      if (!block || !sendsRequestBodies(s, defineAgent(block, baseDir).definition)) continue;
      warned.add(id);
      warn(`filters > filter "${id}"`, `fail-open (route "${r.id}"): a request body over the agent's inspection limit is forwarded uninspected, so a client can pad an attack past it; add body-over-limit "reject" (413) or body-over-limit "forward" to keep this`);
    }
  }
}

/** Pool keys Sentinel reads and this version does not, with what happens instead (docs/agents.md, "Limits"). */
const POOL_NOT_READ: Readonly<Record<string, string>> = {
  'load-balance-strategy': 'connections are picked least-loaded first',
  'max-reconnect-attempts': 'reconnects never give up (backoff capped by reconnect-interval-ms)',
  'drain-timeout-ms': 'a reload drains nothing: unchanged agents keep their client',
  'max-concurrent-per-connection': 'concurrency is bounded per agent by max-concurrent-calls',
};

/**
 * Accepted keys that do nothing here say so (`sentinel lint`), as src/config/unimplemented.ts does
 * for the core's: the agent pool's, and the `waf` block's besides body-inspection (the gateway
 * embeds no WAF engine: sentinel-waf takes paranoia level, mode and exclusions from its own flags
 * or its agent block's `config { }`).
 */
function notActedOn(raw: RawConfig, agents: readonly AgentBlock[], warn: (path: string, message: string) => void): void {
  for (const a of agents) {
    const pool = (a.pool ?? {}) as Record<string, unknown>;
    for (const [key, instead] of Object.entries(POOL_NOT_READ)) if (pool[key] !== undefined) warn(`agents > agent "${a.id}" > pool > ${key}`, `not implemented: ${instead}`);
  }
  const waf = raw.waf;
  if (!waf) return;
  const engine = 'the gateway embeds no WAF engine: give sentinel-waf its paranoia-level, mode, thresholds and exclusions in its flags or its agent block\'s config { } (docs/waf.md)';
  // the decoder fills in the schema's defaults (engine coraza, mode prevention, audit-log #true): only another value asks for something
  const given = { engine: (waf.engine ?? 'coraza') !== 'coraza', mode: (waf.mode ?? 'prevention') !== 'prevention', 'audit-log': waf['audit-log'] === false, ruleset: waf.ruleset !== undefined };
  for (const [key, isGiven] of Object.entries(given)) if (isGiven) warn(`waf > ${key}`, `not acted on: ${engine}`);
  if (waf['body-inspection']?.['inspect-response-body'] === true) warn('waf > body-inspection > inspect-response-body', 'not implemented: response bodies go to the agents whose events include response_body');
}
