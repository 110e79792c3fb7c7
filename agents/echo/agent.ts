// Echo agent (sentinel-reference.md §2.5): mirrors what it saw into headers, so tests and
// operators can check that the gateway talks to agents correctly.
import { allow, runAgent, type RunningAgent } from '../../src/agent-sdk/index.ts';

export async function startEchoAgent(socketPath: string, name = 'echo'): Promise<RunningAgent> {
  let requestNum = 0;
  return runAgent({
    socketPath,
    name,
    version: '1.0.0',
    onRequestHeaders(event) {
      requestNum += 1;
      const path = event.uri.split('?')[0] ?? event.uri;
      return allow()
        .setRequestHeader('X-Echo-Agent', name)
        .setRequestHeader('X-Echo-Correlation-Id', event.correlation_id)
        .setRequestHeader('X-Echo-Request-Num', String(requestNum))
        .setRequestHeader('X-Echo-Method', event.method)
        .setRequestHeader('X-Echo-Path', path)
        .tag('echo');
    },
    onResponseHeaders(event) {
      return allow()
        .setResponseHeader('X-Echo-Response-Status', String(event.status))
        .setResponseHeader('X-Echo-Response-Correlation-Id', event.correlation_id);
    },
  });
}
