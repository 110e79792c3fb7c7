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
    overLimitWarnings(raw, routes, filters, agents, baseDir, (path, message) => diagnostics.push({ severity: 'warning', path, message }));
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
