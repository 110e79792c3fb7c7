// The body-inspection feature: the request/response body policy of the agents (what is buffered
// for them, which content types, decompression bounds; from `waf { body-inspection }` and
// `limits`). Registered when an agent filter reads bodies (its agent subscribes to request_body
// or response_body, or the filter has `inspect-body #true`). For now a thin plugin over
// plugins/agents/body-inspection.ts (the buffering and decompression code stays there until the
// agents module stops being edited in parallel; see docs/architecture.md, "Follow-ups").
import type { CompiledConfig } from '../../src/config/compile.ts';
import { defineFeature } from '../../src/pipeline/feature.ts';
import { defineAgent, defineBodyPolicy, type AgentBlock } from '../agents/definition.ts';
import { BODY_POLICY_DECORATION } from '../agents/index.ts';

function readsBodies(config: CompiledConfig): boolean {
  const agents = (config.raw.agents ?? []) as AgentBlock[];
  for (const f of config.filters.values()) {
    if (f.type !== 'agent') continue;
    if (f.config['inspect-body'] === true) return true;
    const block = agents.find((a) => a.id === f.config.agent);
    if (!block) continue;
    const events = defineAgent(block, config.baseDir).definition.events;
    if (events.has('request_body') || events.has('response_body')) return true;
  }
  return false;
}

export const bodyInspectionFeature = defineFeature({
  name: 'body-inspection',
  dependencies: ['agents'],
  uses: readsBodies,
  explainRoute(config, route) {
    if (!readsBodies(config) || !route.filters.some((id) => config.filters.get(id)?.type === 'agent')) return [];
    const p = defineBodyPolicy(config.raw.waf, config.limits);
    return [{ title: 'body inspection (for the agent filters that read bodies)', settings: { enabled: p.enabled, 'max-inspection-bytes': p.maxInspectionBytes, 'content-types': [...p.contentTypes], decompress: p.decompress } }];
  },
  register(app, host) {
    app.decorate(BODY_POLICY_DECORATION, defineBodyPolicy(host.config.raw.waf, host.config.limits));
  },
});

export default bodyInspectionFeature;
