// Starts the real gateway in-process from KDL text, on ephemeral ports.
import { startGateway, type Gateway } from '../../src/server/gateway.ts';

export async function gatewayFrom(kdl: string, opts: { baseDir?: string } = {}): Promise<{ gw: Gateway; url: (listener?: string) => string }> {
  const gw = await startGateway({ configText: kdl, logLevel: 'silent', ...opts });
  return {
    gw,
    url: (listener = 'http') => {
      const a = gw.address(listener);
      return `http://127.0.0.1:${a.port}`;
    },
  };
}

/** A minimal config: one listener on an ephemeral port, one catch-all route to `target`. */
export function simpleConfig(target: string, extra: { route?: string; upstream?: string; top?: string; listener?: string } = {}): string {
  return `
system { graceful-shutdown-timeout-secs 2 }
listeners { listener "http" { address "127.0.0.1:0"; ${extra.listener ?? ''} } }
routes {
  route "main" {
    matches { path-prefix "/" }
    upstream "backend"
    ${extra.route ?? ''}
  }
}
upstreams { upstream "backend" { target "${target}"; ${extra.upstream ?? ''} } }
${extra.top ?? ''}
`;
}
