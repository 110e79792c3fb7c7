// The tls feature's compile step (plugins/tls/config-checks.ts): a listener's protocol and its
// tls block agree, checked by every config compile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../../src/config/load.ts';
import { ConfigError } from '../../../src/config/diagnostics.ts';

const config = (listener: string) => `listeners { listener "web" { ${listener} } }
routes { route "r" { matches { path-prefix "/" }; builtin-handler "status" } }
`;

function diagnostics(text: string): { errors: string[]; warnings: string[] } {
  try {
    const c = loadConfigText(text);
    return { errors: [], warnings: c.warnings.map((w) => `${w.path}: ${w.message}`) };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const pick = (s: 'error' | 'warning') => err.diagnostics.filter((d) => d.severity === s).map((d) => `${d.path}: ${d.message}`);
    return { errors: pick('error'), warnings: pick('warning') };
  }
}

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
