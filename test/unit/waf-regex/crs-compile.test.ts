// Every @rx pattern in the CRS rule files must compile on RE2 (the engine
// runs all of them). Needs the CRS in ../shared/conformance/crs (or CRS_DIR).
// needs-data: crs (test/select.ts leaves this file out, loudly, where the data is missing)
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { compileRegex } from '../../../src/waf/regex/index.ts';
import { crsRxPatterns } from './crs-rules.ts';

describe('CRS @rx patterns', () => {
  const patterns = crsRxPatterns();

  it('finds the CRS patterns (CRS v4 has about 300)', () => {
    assert.ok(patterns.length > 250, `only ${patterns.length} @rx patterns found`);
  });

  it('compiles every one of them', () => {
    const failures: string[] = [];
    for (const p of patterns) {
      try {
        const re = compileRegex(p.pattern, { dotAll: true, multiline: true });
        // Running it once proves RE2 accepted the translated program, not only the parse.
        re.test('GET /index.php?id=1%27%20or%201=1 HTTP/1.1\r\n\xe9');
      } catch (e) {
        failures.push(`${p.file} id:${p.id}: ${(e as Error).message}`);
      }
    }
    console.log(`CRS @rx patterns compiled: ${patterns.length - failures.length}/${patterns.length}`);
    assert.deepEqual(failures, []);
  });

  it('keeps the meaning of a CRS byte-range rule (920272-style [\\x80-\\xff] on latin1 input)', () => {
    const re = compileRegex('[^\\x21-\\x7e]', { dotAll: true, multiline: true });
    assert.equal(re.test('plain'), false);
    assert.equal(re.test('caf\xc3\xa9'), true);
  });
});
