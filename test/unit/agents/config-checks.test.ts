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

test('a fail-open filter that inspects request bodies warns that bodies over the limit go uninspected, unless it says body-over-limit (session 19 audit)', async () => {
  const { loadConfigText } = await import('../../../src/config/load.ts');
  const { formatDiagnostic } = await import('../../../src/config/diagnostics.ts');
  const text = (filter: string, policies = '') => `listeners { listener "http" { address "127.0.0.1:0" } }
agents { agent "waf" { unix-socket "/tmp/waf.sock"; events "request_headers" "request_body" }; agent "hdr" { unix-socket "/tmp/h.sock" } }
filters { ${filter} }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; filters "f"; ${policies} } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;
  const warnings = (t: string) => loadConfigText(t, { name: 'gw.kdl' }).warnings.filter((w) => w.message.includes('over the agent')).map(formatDiagnostic);
  const open = warnings(text('filter "f" { type "agent"; agent "waf"; failure-mode "open" }'));
  assert.equal(open.length, 1, open.join('\n'));
  assert.match(open[0]!, /gw\.kdl:3.*filter "f".*fail-open \(route "r"\).*body-over-limit "reject"/);
  // the route's failure mode when the filter has none
  assert.equal(warnings(text('filter "f" { type "agent"; agent "waf" }', 'policies { failure-mode "open" }')).length, 1);
  // said explicitly, fail-closed, no body events, or body inspection off: nothing to say
  assert.deepEqual(warnings(text('filter "f" { type "agent"; agent "waf"; failure-mode "open"; body-over-limit "forward" }')), []);
  assert.deepEqual(warnings(text('filter "f" { type "agent"; agent "waf" }')), []);
  assert.deepEqual(warnings(text('filter "f" { type "agent"; agent "hdr"; failure-mode "open" }')), []);
  assert.deepEqual(warnings(text('filter "f" { type "agent"; agent "waf"; failure-mode "open" }').replace('upstreams', 'waf { body-inspection { inspect-request-body #false } }\nupstreams')), []);
});
