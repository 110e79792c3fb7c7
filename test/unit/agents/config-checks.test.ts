// The agents feature's compile step (plugins/agents/config-checks.ts): filter -> agent references
// and one transport per agent, reported by every config compile (no validators needed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configErrors } from '../../helpers/config-diagnostics.ts';

const base = (agents: string, filter: string) => `listeners { listener "http" { address "127.0.0.1:0" } }
agents { ${agents} }
filters { ${filter} }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; filters "f" } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;

const errors = (text: string): string[] => configErrors(text);

test('agent references and transports are checked by the agents feature', () => {
  const cases: Array<[string, string, string[]]> = [
    ['ok', base('agent "waf" { unix-socket "/tmp/waf.sock" }', 'filter "f" { type "agent"; agent "waf" }'), []],
    [
      'unknown agent, with a suggestion',
      base('agent "waf" { unix-socket "/tmp/waf.sock" }', 'filter "f" { type "agent"; agent "wa" }'),
      ['filters > filter "f" > agent: unknown agent "wa" (did you mean "waf"?)'],
    ],
    ['agent filter without agent', base('agent "waf" { unix-socket "/tmp/waf.sock" }', 'filter "f" { type "agent" }'), ['filters > filter "f": an agent filter needs agent "<id>"']],
    [
      'two transports',
      base('agent "waf" { unix-socket "/tmp/waf.sock"; in-process "sentinel-waf" }', 'filter "f" { type "agent"; agent "waf" }'),
      ['agents > agent "waf": give exactly one transport'],
    ],
  ];
  for (const [name, text, want] of cases) {
    const got = errors(text).filter((e) => e.startsWith('filters') || e.startsWith('agents > agent "waf":'));
    // the feature's own validator may add its wording for the same block; the compile step's lines must be there
    for (const w of want) assert.ok(got.includes(w), `${name}: missing "${w}" in ${JSON.stringify(got)}`);
    if (want.length === 0) assert.deepEqual(errors(text), [], name);
  }
});

test('an agent block with no transport is an error even without the manifests\' validators', () => {
  const got = errors(base('agent "waf" { events "request_headers" }', 'filter "f" { type "agent"; agent "waf" }'));
  assert.ok(
    got.includes('agents > agent "waf": needs a transport: unix-socket "/path", grpc "http://host:port", http "http://..." or in-process "sentinel-waf"'),
    JSON.stringify(got),
  );
});
