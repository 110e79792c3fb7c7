// The tls feature's compile step (plugins/tls/config-checks.ts): a listener's protocol and its
// tls block agree, checked by every config compile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configDiagnostics } from '../../helpers/config-diagnostics.ts';

const config = (listener: string) => `listeners { listener "web" { ${listener} } }
routes { route "r" { matches { path-prefix "/" }; builtin-handler "status" } }
`;

const diagnostics = (text: string) => configDiagnostics(text);

test('listener protocol and tls block', () => {
  const cases: Array<[string, string, string[], string[]]> = [
    ['plain http', 'address "127.0.0.1:0"', [], []],
    ['https without tls', 'address "127.0.0.1:0"; protocol "https"', ['listeners > listener "web": protocol "https" needs a tls { cert-file "..."; key-file "..." } block'], []],
    ['tls on http', 'address "127.0.0.1:0"; protocol "http"; tls { cert-file "a.crt"; key-file "a.key" }', [], ['listeners > listener "web": a tls block on a protocol "http" listener is ignored; set protocol "https"']],
  ];
  for (const [name, listener, errors, warnings] of cases) {
    const got = diagnostics(config(listener));
    assert.deepEqual(got.errors, errors, name);
    for (const w of warnings) assert.ok(got.warnings.includes(w), `${name}: ${JSON.stringify(got.warnings)}`);
    if (warnings.length === 0) assert.deepEqual(got.warnings.filter((w) => w.includes('tls')), [], name);
  }
});
