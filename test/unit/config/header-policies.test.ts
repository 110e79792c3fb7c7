// Route header policies may not write the headers the gateway owns (framing and connection-specific
// names, src/server/headers.ts GATEWAY_OWNED): set, add or rename-to is a config error naming the
// route, remove is allowed; ordinary names pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configErrors } from '../../helpers/config-diagnostics.ts';

const withPolicy = (policy: string) => `listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "r" { matches { path-prefix "/" }; upstream "u"; policies { ${policy} } } }
upstreams { upstream "u" { target "127.0.0.1:9" } }
`;

const errors = (text: string): string[] => configErrors(text);

const owned = (where: string, name: string) => `routes > route "r" > policies > ${where}: "${name}" is a framing or connection-specific header the gateway writes itself; a header policy may only remove it`;

test('route header policies: gateway-owned names refused for set, add and rename, allowed for remove', () => {
  const cases: Array<[string, string, string[]]> = [
    ['ordinary names', 'response-headers { set { X-Frame-Options "DENY" }; add { Vary "Accept" } }; request-headers { rename { X-A "X-B" } }', []],
    ['remove of an owned name', 'response-headers { remove "Connection" "Upgrade" }', []],
    ['set HTTP2-Settings (Node refuses it on HTTP/2)', 'response-headers { set { HTTP2-Settings "x" } }', [owned('response-headers', 'HTTP2-Settings')]],
    ['add Transfer-Encoding (a second framing)', 'response-headers { add { Transfer-Encoding "chunked" } }', [owned('response-headers', 'Transfer-Encoding')]],
    ['set Content-Length upstream', 'request-headers { set { content-length "5" } }', [owned('request-headers', 'content-length')]],
    ['rename to Connection', 'request-headers { rename { X-Conn "Connection" } }', [owned('request-headers', 'Connection')]],
  ];
  for (const [name, policy, want] of cases) assert.deepEqual(errors(withPolicy(policy)), want, name);
});
