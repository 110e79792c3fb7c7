// The tls feature's part of the config compiler (its manifest's `compile`): a listener's
// protocol and its `tls { }` block (the key this feature adds) must agree. The files themselves
// are read by `check` and when the listener starts (validateTlsConfig).
import type { ConfigCompileSteps } from '../../src/config/compile.ts';
import type { RawListener } from '../../src/config/schema.ts';

export const tlsCompile: ConfigCompileSteps = {
  config(raw, _routes, { diagnostics }) {
    for (const l of (raw.listeners ?? []) as (RawListener & { id: string })[]) {
      const path = `listeners > listener "${l.id}"`;
      const protocol = l.protocol ?? 'http';
      if (protocol === 'https' && !l.tls) diagnostics.push({ severity: 'error', path, message: 'protocol "https" needs a tls { cert-file "..."; key-file "..." } block' });
      if (l.tls && protocol === 'http') diagnostics.push({ severity: 'warning', path, message: 'a tls block on a protocol "http" listener is ignored; set protocol "https"' });
    }
    return {};
  },
};
