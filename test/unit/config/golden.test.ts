// Golden config tests: each test/conformance/kdl/NAME.kdl has NAME.json (the normalised view it
// must produce) or NAME.err (lines that must appear in the error text). Adding a case is adding
// two files. UPDATE_GOLDEN=1 rewrites the .json files from the current output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigFile } from '../../../src/config/load.ts';
import { configView } from '../../../src/config/view.ts';
import { ConfigError, formatDiagnostic } from '../../../src/config/diagnostics.ts';
import { pluginValidators } from '../../../src/server/validators.ts';

const dir = fileURLToPath(new URL('../../conformance/kdl/', import.meta.url));

for (const file of readdirSync(dir).filter((f) => f.endsWith('.kdl')).sort()) {
  const name = file.slice(0, -4);
  test(`golden config: ${name}`, () => {
    const jsonPath = join(dir, `${name}.json`);
    const errPath = join(dir, `${name}.err`);
    let view: unknown;
    let error: string | undefined;
    try {
      view = JSON.parse(JSON.stringify(configView(loadConfigFile(join(dir, file), { validators: pluginValidators }))).replaceAll(dir, '<dir>/'));
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      error = err.diagnostics.map(formatDiagnostic).join('\n').replaceAll(dir, '<dir>/');
    }
    if (existsSync(errPath)) {
      assert.ok(error, `expected ${file} to fail`);
      for (const line of readFileSync(errPath, 'utf8').split('\n').filter(Boolean)) assert.ok(error.includes(line), `error text lacks:\n  ${line}\ngot:\n${error}`);
      return;
    }
    assert.equal(error, undefined, `unexpected error: ${error}`);
    if (process.env.UPDATE_GOLDEN) writeFileSync(jsonPath, JSON.stringify(view, null, 2) + '\n');
    assert.ok(existsSync(jsonPath), `missing ${name}.json (run with UPDATE_GOLDEN=1 and review it)`);
    assert.deepEqual(view, JSON.parse(readFileSync(jsonPath, 'utf8')));
  });
}
