// Denylist agent: blocks by path prefix, header or client ip (rules.ts). Rules come from the
// constructor and may be replaced by the gateway's Configure event (the agent's `config {}`).
import { allow, block, runAgent, type RunningAgent } from '../../src/agent-sdk/index.ts';
import { Denylist, parseDenylistConfig } from './rules.ts';

export async function startDenylistAgent(socketPath: string, initial: unknown = {}): Promise<RunningAgent> {
  let rules = new Denylist(parseDenylistConfig(initial));
  return runAgent({
    socketPath,
    name: 'denylist',
    version: '1.0.0',
    onConfigure(config) {
      rules = new Denylist(parseDenylistConfig(config));
    },
    onRequestHeaders(event) {
      const path = event.uri.split('?')[0] ?? event.uri;
      const hit = rules.check({ path, clientIp: event.metadata.client_ip, headers: event.headers });
      if (!hit) return allow();
      return block(rules.config.status, rules.config.message, { 'X-Denylist-Rule': hit.rule }).tag('denylist', `denylist:${hit.rule}`).ruleId(`denylist-${hit.rule}`);
    },
  });
}
