// A throw-away PKI for TLS tests, made with the `openssl` CLI in a temp dir: CAs, server and
// client certificates (EC P-256, fast to make), and the index.txt an `openssl ocsp` responder reads.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, readFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { X509Certificate, randomBytes } from 'node:crypto';

const run = promisify(execFile);

export async function openssl(args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run('openssl', args, { cwd, maxBuffer: 1 << 20 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('the openssl CLI is needed by the TLS tests: apt-get install -y openssl', { cause: err });
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`, { cause: err });
  }
}

export interface Issued {
  name: string;
  /** leaf only */
  cert: string;
  key: string;
  /** leaf + issuing CA (what a server's cert-file should hold for OCSP) */
  chain: string;
  serialHex: string;
  subject: string;
}

export interface IssueOptions {
  cn: string;
  dns?: string[];
  ip?: string[];
  email?: string[];
  /** authorityInfoAccess OCSP responder URL */
  ocspUrl?: string;
  days?: number;
  usage?: 'server' | 'client' | 'ocsp';
}

export class TestCa {
  readonly cert: string;
  readonly key: string;
  private readonly index: string;

  constructor(
    readonly pki: Pki,
    readonly name: string,
  ) {
    this.cert = pki.path(`${name}.crt`);
    this.key = pki.path(`${name}.key`);
    this.index = pki.path(`${name}-index.txt`);
  }

  /** openssl ocsp's "CA database": one line per issued certificate. */
  get indexFile(): string {
    return this.index;
  }

  async init(cn: string): Promise<this> {
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', this.key, '-out', this.cert, '-subj', `/CN=${cn}`, '-days', '3650',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign,digitalSignature']);
    await writeFile(this.index, '');
    return this;
  }

  async issue(name: string, o: IssueOptions): Promise<Issued> {
    const cert = this.pki.path(`${name}.crt`);
    const key = this.pki.path(`${name}.key`);
    const csr = this.pki.path(`${name}.csr`);
    const ext = this.pki.path(`${name}.ext`);
    const sans = [...(o.dns ?? []).map((d) => `DNS:${d}`), ...(o.ip ?? []).map((i) => `IP:${i}`), ...(o.email ?? []).map((e) => `email:${e}`)];
    const usage = o.usage ?? 'server';
    const lines = [
      'basicConstraints=CA:FALSE',
      `extendedKeyUsage=${usage === 'server' ? 'serverAuth' : usage === 'client' ? 'clientAuth' : 'OCSPSigning'}`,
      'keyUsage=critical,digitalSignature',
      ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
      ...(o.ocspUrl ? [`authorityInfoAccess=OCSP;URI:${o.ocspUrl}`] : []),
    ];
    await writeFile(ext, lines.join('\n') + '\n');
    const serialHex = '1' + randomBytes(8).toString('hex').toUpperCase();
    await openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${o.cn}`]);
    await openssl(['x509', '-req', '-in', csr, '-CA', this.cert, '-CAkey', this.key, '-set_serial', `0x${serialHex}`, '-days', String(o.days ?? 30), '-extfile', ext, '-out', cert]);
    const chain = this.pki.path(`${name}-chain.crt`);
    await writeFile(chain, (await readFile(cert, 'utf8')) + (await readFile(this.cert, 'utf8')));
    const x = new X509Certificate(await readFile(cert));
    const expiry = new Date(x.validTo).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
    await appendFile(this.index, `V\t${expiry}\t\t${serialHex}\tunknown\t/CN=${o.cn}\n`);
    return { name, cert, key, chain, serialHex, subject: `CN=${o.cn}` };
  }

  /** Marks a certificate revoked in the OCSP index (the responder must be restarted to see it). */
  async revoke(serialHex: string): Promise<void> {
    const now = new Date().toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
    const text = await readFile(this.index, 'utf8');
    await writeFile(this.index, text.split('\n').map((l) => (l.split('\t')[3] === serialHex ? l.replace(/^V\t([^\t]+)\t\t/, `R\t$1\t${now}\t`) : l)).join('\n'));
  }
}

export class Pki {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Pki> {
    return new Pki(await mkdtemp(join(tmpdir(), 'sentinel-pki-')));
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  async ca(name: string, cn = `Sentinel Test ${name}`): Promise<TestCa> {
    return new TestCa(this, name).init(cn);
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
