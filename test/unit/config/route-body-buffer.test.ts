// Route `policies { max-body-buffer-bytes }` (docs/security.md, "Request buffering"): an integer of
// at least 0, at most the route's body size limit; the compiled route carries it (undefined when
// unset: the limits' value applies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configErrors } from '../../helpers/config-diagnostics.ts';
import { loadConfigText } from '../../../src/config/load.ts';

const withPolicy = (policy: string, limits = '') => `listeners { listener "http" { address "127.0.0.1:0" } }
${limits}
routes { route "r" { matches { path-prefix "/" }; upstream "u"; policies { ${policy} } } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;

const key = 'routes > route "r" > policies > max-body-buffer-bytes';

test('route max-body-buffer-bytes: accepted values and errors', () => {
  const cases: Array<[string, string, string, string[]]> = [
    ['0 streams every body', 'max-body-buffer-bytes 0', '', []],
    ['a threshold', 'max-body-buffer-bytes 65536', '', []],
    ['above the limits value (the route may read more first)', 'max-body-buffer-bytes 4096', 'limits { max-body-buffer-bytes 1024 }', []],
    ['equal to the route body limit', 'max-body-buffer-bytes 1024; max-body-size "1KB"', '', []],
    ['negative', 'max-body-buffer-bytes -1', '', [`${key}: must be >= 0, got -1`]],
    ['a string', 'max-body-buffer-bytes "0"', '', [`${key}: expected an integer, got string "0"`]],
    ['a size string', 'max-body-buffer-bytes "1MB"', '', [`${key}: expected an integer, got string "1MB"`]],
    ['a fraction', 'max-body-buffer-bytes 1.5', '', [`${key}: expected an integer, got number 1.5`]],
    ['a boolean', 'max-body-buffer-bytes #false', '', [`${key}: expected an integer, got boolean false`]],
    ['above limits max-body-size-bytes', 'max-body-buffer-bytes 2048', 'limits { max-body-size-bytes 1024 }', [`${key}: must not exceed the route's body size limit (1024 bytes: limits max-body-size-bytes)`]],
    ['above the route max-body-size', 'max-body-buffer-bytes 2048; max-body-size "1KB"', '', [`${key}: must not exceed the route's body size limit (1024 bytes: limits max-body-size-bytes, policies max-body-size)`]],
  ];
  for (const [name, policy, limits, want] of cases) assert.deepEqual(configErrors(withPolicy(policy, limits)), want, name);
});

test('route max-body-buffer-bytes: compiled onto the route, undefined when unset', () => {
  const pick = (policy: string) => loadConfigText(withPolicy(policy)).routesById.get('r')!.bodyBufferBytes;
  assert.equal(pick('max-body-buffer-bytes 0'), 0);
  assert.equal(pick('max-body-buffer-bytes 100'), 100);
  assert.equal(pick('timeout-secs 5'), undefined);
});

test('a policies key written in the route itself warns where it belongs (session 18: `max-body-size` beside policies limited nothing)', async () => {
  const { configDiagnostics } = await import('../../helpers/config-diagnostics.ts');
  const text = `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; max-body-size "1KB"; forward-method-override "PUT" } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;
  const { errors, warnings } = configDiagnostics(text);
  assert.deepEqual(errors, []);
  assert.ok(warnings.includes('routes > route "r": unknown key "max-body-size": it belongs in policies { max-body-size ... } (ignored)'), warnings.join('\n'));
  assert.ok(warnings.includes('routes > route "r": unknown key "forward-method-override": it belongs in policies { forward-method-override ... } (ignored)'), warnings.join('\n'));
  assert.equal(loadConfigText(text).routesById.get('r')!.maxBodyBytes, undefined, 'still ignored: a warning, as other unknown keys');
});
