// Route `policies { get-body "refuse" | "forward" }` (docs/security.md, "Bodies on GET and other bodiless methods"):
// accepted values, errors, and the default (refuse). The behaviour: integration/hardening/get-body.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configErrors } from '../../helpers/config-diagnostics.ts';
import { loadConfigText } from '../../../src/config/load.ts';

const withPolicy = (policy: string) => `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; policies { ${policy} } } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;
const key = 'routes > route "r" > policies > get-body';

test('get-body: accepted values and errors', () => {
  const cases: Array<[string, string[]]> = [
    ['get-body "forward"', []],
    ['get-body "refuse"', []],
    ['get-body "allow"', [`${key}: invalid value "allow": expected one of refuse, forward`]],
    ['get-body #true', [`${key}: expected "refuse" or "forward", got boolean true`]],
    ['get-body', [`${key}: expected a value ("refuse" or "forward") as the first argument`]],
  ];
  for (const [policy, want] of cases) assert.deepEqual(configErrors(withPolicy(policy)), want, policy);
});

test('get-body: compiled, refuse by default', () => {
  const pick = (policy: string) => loadConfigText(withPolicy(policy)).routesById.get('r')!.getBody;
  assert.equal(pick('get-body "forward"'), 'forward');
  assert.equal(pick('timeout-secs 5'), 'refuse');
});
