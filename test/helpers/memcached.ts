// Starts a real memcached on a free loopback port for a test. A missing binary is a failure
// that says how to install it.
import { freePort, managedService, requireBinary, type ManagedService } from './redis.ts';

export interface MemcachedServer extends ManagedService {
  /** host:port, as memcached-url takes it */
  readonly url: string;
}

export async function startMemcached(): Promise<MemcachedServer> {
  requireBinary('memcached', 'memcached');
  const port = await freePort();
  // -U 0: no UDP; -u root: memcached refuses to run as root without it (CI runs as root).
  const args = ['-p', String(port), '-l', '127.0.0.1', '-U', '0', '-m', '64', ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])];
  const svc = managedService('memcached', port, 'memcached', args, 'version\r\n', 'VERSION');
  await svc.start();
  return Object.assign(svc, { url: `127.0.0.1:${port}` });
}
