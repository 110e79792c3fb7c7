// The agents feature's part of the config compiler (its manifest's `compile`): the references
// and shapes only this feature knows, and its entries in the config views. Run by every compile, with or without the manifests'
// validators, so `sentinel test` and a reload report them like the core's own references.
import type { ConfigCompileSteps } from '../../src/config/compile.ts';
import { didYouMean } from '../../src/config/diagnostics.ts';
import type { AgentBlock } from './definition.ts';

export const agentsCompile: ConfigCompileSteps = {
  config(raw, _routes, { filters, diagnostics }) {
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
    return {};
  },
  view: (c) => ({ agents: c.raw.agents ?? [] }),
  // the /config builtin: which agents, not their settings
  dump: (c) => ({
    agents: ((c.raw.agents ?? []) as AgentBlock[]).map((a) => ({ id: a.id, type: a.type ?? null })),
    waf: c.raw.waf ? { mode: c.raw.waf.mode ?? 'prevention' } : null,
  }),
};
