// Route `policies { forward-method-override "PUT" ... }` (docs/security.md, "Identity headers"):
// the config's checks, and forwardMethodOverride (src/server/headers.ts), which puts the override
// headers of a POST naming a listed method back into the upstream headers and nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configErrors } from '../../helpers/config-diagnostics.ts';
import { loadConfigText } from '../../../src/config/load.ts';
import { forwardMethodOverride } from '../../../src/server/headers.ts';

const withPolicy = (policy: string) => `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; policies { ${policy} } } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;
const key = 'routes > route "r" > policies > forward-method-override';

test('forward-method-override: accepted values and errors', () => {
  const cases: Array<[string, string, string[]]> = [
    ['methods', 'forward-method-override "PUT" "PATCH" "DELETE"', []],
    ['lower case', 'forward-method-override "delete"', []],
    ['GET', 'forward-method-override "GET"', []],
    ['POST: the overridden method itself', 'forward-method-override "PUT" "POST"', [`${key}: "POST" cannot be an override: the headers are only forwarded on POST`]],
    ['CONNECT', 'forward-method-override "CONNECT"', [`${key}: "CONNECT" cannot be an override: the gateway is not a forward proxy`]],
    ['not a token', 'forward-method-override "PU T"', [`${key}: "PU T" is not a method name`]],
    ['empty string', 'forward-method-override ""', [`${key}: "" is not a method name`]],
    ['a list', 'forward-method-override "PUT,DELETE"', [`${key}: "PUT,DELETE" is not a method name`]],
    ['a boolean', 'forward-method-override #true', [`${key}: expected a string, got boolean true`]],
    ['no argument', 'forward-method-override', [`${key}: expected one or more arguments`]],
  ];
  for (const [name, policy, want] of cases) assert.deepEqual(configErrors(withPolicy(policy)), want, name);
});

test('forward-method-override: compiled upper-cased; unset leaves the headers removed', () => {
  const pick = (policy: string) => loadConfigText(withPolicy(policy)).routesById.get('r')!.methodOverrides;
  assert.deepEqual([...pick('forward-method-override "put" "DELETE"')!], ['PUT', 'DELETE']);
  assert.equal(pick('timeout-secs 5'), undefined);
});

test('forwardMethodOverride: which override headers go upstream', () => {
  const allowed = new Set(['PUT', 'DELETE']);
  type H = Record<string, string | string[] | undefined>;
  const cases: Array<[string, string, H, H]> = [
    ['POST naming a listed method', 'POST', { 'x-http-method-override': 'DELETE' }, { 'x-http-method-override': 'DELETE' }],
    ['each of the three names', 'POST', { 'x-http-method': 'PUT', 'x-method-override': 'DELETE' }, { 'x-http-method': 'PUT', 'x-method-override': 'DELETE' }],
    ['lower case value, forwarded as sent', 'POST', { 'x-http-method-override': 'delete' }, { 'x-http-method-override': 'delete' }],
    ['a method not listed', 'POST', { 'x-http-method-override': 'PATCH' }, {}],
    ['listed and unlisted: only the listed one', 'POST', { 'x-http-method-override': 'PUT', 'x-http-method': 'TRACE' }, { 'x-http-method-override': 'PUT' }],
    ['a GET (cached and keyed as a GET)', 'GET', { 'x-http-method-override': 'DELETE' }, {}],
    ['a PUT', 'PUT', { 'x-http-method-override': 'DELETE' }, {}],
    ['repeated header, joined by Node', 'POST', { 'x-http-method-override': 'PUT, DELETE' }, {}],
    ['an array value', 'POST', { 'x-http-method-override': ['PUT', 'DELETE'] }, {}],
    ['a padded value', 'POST', { 'x-http-method-override': 'DELETE ' }, {}],
    ['named in Connection: hop-by-hop', 'POST', { 'x-http-method-override': 'DELETE', connection: 'keep-alive, X-HTTP-Method-Override' }, {}],
    ['other override-like names are not touched', 'POST', { 'x-original-method': 'DELETE' }, {}],
  ];
  for (const [name, method, headers, want] of cases) {
    const out = {};
    forwardMethodOverride(out, method, headers, allowed);
    assert.deepEqual(out, want, name);
  }
});
