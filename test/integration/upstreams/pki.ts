// A throwaway PKI for upstream TLS tests, generated with the `openssl` CLI: a CA, a server
// certificate for "backend.test" + 127.0.0.1, and a client certificate for mTLS.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pki {
  dir: string;
  /** file names inside dir */
  files: { ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCa: string };
  read(name: keyof Pki['files']): Buffer;
  cleanup(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: 'pipe' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new Error('openssl not found: install it (apt-get install openssl) to run the upstream TLS tests', { cause: e });
    }
    throw new Error(`openssl ${args.join(' ')} failed: ${String((e as { stderr?: Buffer }).stderr ?? e)}`, { cause: e });
  }
}

export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-upstream-pki-'));
  const ca = (name: string) => {
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`], dir);
  };
  const leaf = (name: string, cn: string, ext: string) => {
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`], dir);
  };
  ca('ca');
  ca('other-ca');
  leaf('server', 'backend.test', 'subjectAltName=DNS:backend.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'sentinel-gateway', 'extendedKeyUsage=clientAuth\n');
  const files = { ca: 'ca.crt', serverCert: 'server.crt', serverKey: 'server.key', clientCert: 'client.crt', clientKey: 'client.key', otherCa: 'other-ca.crt' };
  return {
    dir,
    files,
    read: (name) => readFileSync(join(dir, files[name])),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
