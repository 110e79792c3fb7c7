// auto-reload's watch set: folders (never files), the names in them that matter, `..data`.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../../src/config/load.ts';
import { reloadSources, watchTargets } from '../../../src/config/watch.ts';

const sets = (m: Map<string, Set<string>>) => Object.fromEntries([...m].map(([d, n]) => [d, [...n].sort()]));

describe('watchTargets', () => {
  it('a mounted ConfigMap: the mount folder (config.kdl, ..data) and the current target folder', () => {
    const real = (p: string) => (p === '/etc/sentinel/config/config.kdl' ? '/etc/sentinel/config/..2026_12_04_10_00_00.1/config.kdl' : p);
    assert.deepEqual(sets(watchTargets(['/etc/sentinel/config/config.kdl'], real)), {
      '/etc/sentinel/config': ['..data', 'config.kdl'],
      '/etc/sentinel/config/..2026_12_04_10_00_00.1': ['..data', 'config.kdl'],
    });
  });
  it('plain files share their folder entry; a missing file still has its folder watched', () => {
    const real = (p: string) => {
      if (p.endsWith('gone.crt')) throw new Error('ENOENT');
      return p;
    };
    assert.deepEqual(sets(watchTargets(['/srv/a.kdl', '/srv/tls/x.crt', '/srv/tls/gone.crt'], real)), {
      '/srv': ['..data', 'a.kdl'],
      '/srv/tls': ['..data', 'gone.crt', 'x.crt'],
    });
  });
});

describe('reloadSources', () => {
  it('the config file and every tls *-file, resolved against the config folder', () => {
    const config = loadConfigText(
      `listeners {
    listener "h" { address "127.0.0.1:0"; protocol "http" }
    listener "s" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "tls/a.crt"; key-file "/abs/a.key"; ca-file "ca.pem"
        sni { hostnames "b.test"; cert-file "b.crt"; key-file "b.key" } } }
}
routes { route "r" { matches { path-prefix "/" }; builtin-handler "health" } }`,
      { baseDir: '/etc/sentinel' },
    );
    assert.deepEqual([...reloadSources(config).files].sort(), ['/abs/a.key', '/etc/sentinel/b.crt', '/etc/sentinel/b.key', '/etc/sentinel/ca.pem', '/etc/sentinel/tls/a.crt']);
  });
});
