// Where sentinel-waf looks for the CRS: --crs-dir / CRS_DIR, else /usr/share/sentinel/crs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { locateCrs } from '../../../src/waf/agent/crs-location.ts';

const tree = (...paths: string[]) => (p: string) => paths.includes(p);

describe('locateCrs', () => {
  const cases: { name: string; config: { crsDir?: string; rulesDir?: string }; files: string[]; want: string | RegExp }[] = [
    { name: 'the given dir', config: { crsDir: '/x/crs' }, files: ['/x/crs/rules', '/x/crs/crs-setup.conf.example'], want: '/x/crs' },
    { name: 'crs-setup.conf instead of the example', config: { crsDir: '/x/crs' }, files: ['/x/crs/rules', '/x/crs/crs-setup.conf'], want: '/x/crs' },
    { name: 'the install location by default', config: {}, files: ['/usr/share/sentinel/crs/rules', '/usr/share/sentinel/crs/crs-setup.conf.example'], want: '/usr/share/sentinel/crs' },
    { name: 'a separate rules dir', config: { crsDir: '/x/crs', rulesDir: '/r' }, files: ['/r', '/x/crs/crs-setup.conf.example'], want: '/x/crs' },
    { name: 'nothing at the default', config: {}, files: [], want: /no OWASP CRS found at \/usr\/share\/sentinel\/crs \(the default location\)/ },
    { name: 'no rules in the given dir', config: { crsDir: '/x/crs' }, files: ['/x/crs/crs-setup.conf.example'], want: /\/x\/crs\/rules does not exist/ },
    { name: 'no setup file', config: { crsDir: '/x/crs' }, files: ['/x/crs/rules'], want: /has no crs-setup\.conf/ },
    { name: 'never beside the checkout', config: {}, files: ['../shared/conformance/crs/rules', '../shared/conformance/crs/crs-setup.conf.example'], want: /no OWASP CRS found/ },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const got = locateCrs(c.config, tree(...c.files));
      if (typeof c.want === 'string') assert.deepEqual(got, { ok: true, crsDir: c.want });
      else {
        assert.equal(got.ok, false);
        if (!got.ok) {
          assert.match(got.message, c.want);
          for (const hint of ['--crs-dir', 'CRS_DIR', 'scripts/fetch-crs.sh']) assert.ok(got.message.includes(hint), hint);
        }
      }
    });
  }
});
