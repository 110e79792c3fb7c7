// The static-files block in the config: defaults, relative roots, value checks, and what it
// means for the rest of the route (no upstream needed, cache ignored, builtin conflict).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../../src/config/load.ts';
import { configErrors } from '../../helpers/config-diagnostics.ts';

const wrap = (route: string) => `
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "s" {
  matches { path-prefix "/" }
  ${route}
} }
upstreams { upstream "u" { target "127.0.0.1:1" } }
`;

const errors = (text: string): string[] => configErrors(text, { baseDir: '/srv/conf' });

test('defaults follow Sentinel; a relative root is resolved against the config folder; no upstream needed', () => {
  const c = loadConfigText(wrap('static-files { root "www" }'), { baseDir: '/srv/conf' });
  const r = c.routesById.get('s')!;
  assert.deepEqual(r.staticFiles, {
    root: '/srv/conf/www',
    index: 'index.html',
    directoryListing: false,
    cacheControl: 'public, max-age=3600',
    compress: true,
    fallback: undefined,
    serveDotfiles: false,
  });
  assert.equal(r.serviceType, 'static');
  assert.ok(!c.warnings.some((w) => /not implemented/.test(w.message)), 'no "not implemented" warning any more');
});

test('every key is read', () => {
  const c = loadConfigText(wrap('static-files { root "/var/www"; index "home.htm"; directory-listing #true; cache-control ""; compress #false; fallback "/app/shell.html"; serve-dotfiles #true }'), { baseDir: '/x' });
  assert.deepEqual(c.routesById.get('s')!.staticFiles, {
    root: '/var/www',
    index: 'home.htm',
    directoryListing: true,
    cacheControl: '',
    compress: false,
    fallback: 'app/shell.html',
    serveDotfiles: true,
  });
});

test('bad values are errors naming the node', () => {
  assert.match(errors(wrap('static-files { index "home.html" }')).join('\n'), /static-files/);
  assert.match(errors(wrap('static-files { root "/w"; fallback "../etc/passwd" }')).join('\n'), /static-files > fallback/);
  assert.match(errors(wrap('static-files { root "/w"; index "a/b.html" }')).join('\n'), /static-files > index/);
  assert.match(errors(wrap('static-files { root "/w"; compress "yes" }')).join('\n'), /compress/);
  assert.match(errors(wrap('service-type "static"')).join('\n'), /needs a static-files/);
  assert.match(errors(wrap('builtin-handler "health"\nstatic-files { root "/w" }')).join('\n'), /either a builtin-handler or serves static files/);
});

test('an upstream or a cache block on a static-files route is ignored, with a warning', () => {
  const c = loadConfigText(wrap('upstream "u"\nstatic-files { root "/w" }\ncache { enabled #true }'), { baseDir: '/x' });
  const r = c.routesById.get('s')!;
  assert.equal(r.cache, undefined);
  assert.ok(c.warnings.some((w) => w.path.endsWith('> upstream') && /serves static files/.test(w.message)));
  assert.ok(c.warnings.some((w) => w.path.endsWith('> cache') && /static-files/.test(w.message)));
});
