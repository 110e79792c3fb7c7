// TLS cost through the real gateway, as ratios against plain HTTP measured in the same run on the
// same machine (not a test: run it by hand).
//
//   node --import tsx test/integration/tls/bench.ts [--seconds 6]
//
// Processes: the gateway (one http, one https and one h2c listener, same route), an upstream,
// and the load generators (autocannon in this process; h2load from nghttp2-client if present).
// Scenarios:
//   handshakes  new connection per request (own client loop: autocannon's reconnectRate 1 sends
//               nothing), one HTTP/1.1 request with Connection: close; TLS = full handshakes
//   keep-alive  small (100 B) and large (64 KiB) responses over persistent HTTP/1.1: http vs https
//   h2          h2load, 10 streams per connection: h2c vs h2 over TLS
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import http from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { Pki } from '../../helpers/pki.ts';
import { exec } from './harness.ts';

// autocannon ships no type declarations: describe the part used here
interface CannonResult {
  requests: { average: number };
  throughput: { average: number };
  errors: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (o: Record<string, unknown>) => Promise<CannonResult>;

const self = fileURLToPath(import.meta.url);
const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 6;

async function serveUpstream(): Promise<void> {
  const small = Buffer.alloc(100, 97);
  const large = Buffer.alloc(64 * 1024, 98);
  const server = http.createServer((req, res) => {
    const body = req.url === '/large' ? large : small;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }));
}

async function serveGateway(configFile: string): Promise<void> {
  const { startGateway } = await import('../../../src/server/gateway.ts');
  const gw = await startGateway({ configPath: configFile, logLevel: 'silent' });
  console.log(JSON.stringify({ http: gw.address('http').port, https: gw.address('https').port, h2c: gw.address('h2c').port }));
}

function child(args: string[]): Promise<{ proc: ChildProcess; info: Record<string, number> }> {
  // stdin is a pipe the child watches: when this process dies, the child exits too
  const proc = spawn(process.execPath, ['--import', 'tsx', self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    // keep draining stdout (access logs): a full pipe would stall the child
    proc.stdout!.on('data', (c: Buffer) => {
      if (out.length > 65536) return;
      out += c.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve({ proc, info: JSON.parse(line) as Record<string, number> });
    });
    proc.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}: ${out}`)));
  });
}

interface Result {
  rps: number;
  bytesPerSec: number;
  errors: number;
}

async function cannon(url: string, o: { connections: number }): Promise<Result> {
  const r = await autocannon({ url, connections: o.connections, duration: seconds, servername: 'bench.test' });
  return { rps: r.requests.average, bytesPerSec: r.throughput.average, errors: r.errors + r.non2xx };
}

/** `connections` loops of connect -> one request -> read to EOF -> close, for `seconds`. */
async function connectionLoop(port: number, useTls: boolean, connections: number): Promise<Result> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  let bytes = 0;
  let errors = 0;
  const once = () =>
    new Promise<void>((resolve) => {
      const sock: Socket = useTls ? tlsConnect({ host: '127.0.0.1', port, servername: 'bench.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }) : netConnect({ host: '127.0.0.1', port });
      let got = 0;
      sock.once(useTls ? 'secureConnect' : 'connect', () => sock.write('GET /small HTTP/1.1\r\nHost: bench.test\r\nConnection: close\r\n\r\n'));
      sock.on('data', (c: Buffer) => (got += c.length));
      sock.on('error', () => undefined);
      sock.on('close', (hadError) => {
        if (hadError || got === 0) errors++;
        else {
          done++;
          bytes += got;
        }
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) await once();
    }),
  );
  return { rps: done / seconds, bytesPerSec: bytes / seconds, errors };
}

async function h2load(url: string): Promise<Result | undefined> {
  const r = await exec('h2load', ['-D', String(seconds), '-c', '16', '-m', '10', url], { timeoutMs: (seconds + 30) * 1000 });
  if (r.code !== 0 && !r.stdout) return undefined;
  const rps = /finished in [^,]+, ([\d.]+) req\/s, ([\d.]+)([KMG]?B)\/s/.exec(r.stdout);
  const failed = /(\d+) failed/.exec(r.stdout);
  if (!rps) return undefined;
  const mult = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }[rps[3] as 'B' | 'KB' | 'MB' | 'GB'];
  return { rps: Number(rps[1]), bytesPerSec: Number(rps[2]) * mult, errors: Number(failed?.[1] ?? 0) };
}

/** Runs plain, TLS, TLS, plain and averages each side, so load drift on a shared machine hits both. */
async function pair(plain: () => Promise<Result>, tls: () => Promise<Result>): Promise<[Result, Result]> {
  const p1 = await plain();
  const t1 = await tls();
  const t2 = await tls();
  const p2 = await plain();
  const avg = (a: Result, b: Result): Result => ({ rps: (a.rps + b.rps) / 2, bytesPerSec: (a.bytesPerSec + b.bytesPerSec) / 2, errors: a.errors + b.errors });
  return [avg(p1, p2), avg(t1, t2)];
}

async function main(): Promise<void> {
  const pki = await Pki.create();
  const ca = await pki.ca('ca');
  await ca.issue('bench', { cn: 'bench.test', dns: ['bench.test'] });
  const up = await child(['--upstream']);
  const config = pki.path('bench.kdl');
  await writeFile(
    config,
    `system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "http" { address "127.0.0.1:0" }
  listener "https" { address "127.0.0.1:0"; protocol "https"; tls { cert-file "bench.crt"; key-file "bench.key" } }
  listener "h2c" { address "127.0.0.1:0"; protocol "h2" }
}
routes { route "all" { matches { path-prefix "/" }; upstream "u" } }
upstreams { upstream "u" { target "127.0.0.1:${up.info.port}" } }
observability { logging { access-log { enabled #false } } }
`,
  );
  const gw = await child(['--gateway', config]);
  const { http: hp, https: sp, h2c } = gw.info as { http: number; https: number; h2c: number };
  const rows: [string, Result | undefined, Result | undefined][] = [];
  try {
    // warm up both paths (JIT, upstream pools)
    await cannon(`http://127.0.0.1:${hp}/small`, { connections: 8 });
    await cannon(`https://127.0.0.1:${sp}/small`, { connections: 8 });
    rows.push(['handshakes: new connection per request (c=16)', ...(await pair(() => connectionLoop(hp, false, 16), () => connectionLoop(sp, true, 16)))]);
    rows.push(['keep-alive HTTP/1.1, 100 B (c=32)', ...(await pair(() => cannon(`http://127.0.0.1:${hp}/small`, { connections: 32 }), () => cannon(`https://127.0.0.1:${sp}/small`, { connections: 32 })))]);
    rows.push(['keep-alive HTTP/1.1, 64 KiB (c=32)', ...(await pair(() => cannon(`http://127.0.0.1:${hp}/large`, { connections: 32 }), () => cannon(`https://127.0.0.1:${sp}/large`, { connections: 32 })))]);
    const hasH2load = (await exec('sh', ['-c', 'command -v h2load'])).code === 0;
    if (hasH2load) {
      const h2 = async (url: string) => (await h2load(url)) ?? { rps: NaN, bytesPerSec: NaN, errors: -1 };
      rows.push(['HTTP/2 h2c vs h2+TLS, 100 B (c=16, m=10)', ...(await pair(() => h2(`http://127.0.0.1:${h2c}/small`), () => h2(`https://127.0.0.1:${sp}/small`)))]);
      rows.push(['HTTP/2 h2c vs h2+TLS, 64 KiB (c=16, m=10)', ...(await pair(() => h2(`http://127.0.0.1:${h2c}/large`), () => h2(`https://127.0.0.1:${sp}/large`)))]);
    } else {
      console.log('(h2load not found: apt-get install -y nghttp2-client for the HTTP/2 rows)');
    }
  } finally {
    gw.proc.kill('SIGTERM');
    up.proc.kill('SIGTERM');
    await pki.close();
  }
  const f = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0));
  console.log(`\nTLS through the gateway vs plain, ${seconds}s per run (plain, TLS, TLS, plain; averaged), load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)}, node ${process.version}, ${(await import('node:os')).cpus().length} CPUs`);
  console.log('scenario | plain req/s | TLS req/s | TLS/plain | plain B/s | TLS B/s | errors plain/TLS');
  for (const [name, plain, tls] of rows) {
    if (!plain || !tls) {
      console.log(`${name} | (failed)`);
      continue;
    }
    console.log(`${name} | ${f(plain.rps)} | ${f(tls.rps)} | ${(tls.rps / plain.rps).toFixed(2)} | ${f(plain.bytesPerSec)} | ${f(tls.bytesPerSec)} | ${plain.errors}/${tls.errors}`);
  }
}

if (process.argv.includes('--upstream') || process.argv.includes('--gateway')) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}
if (process.argv.includes('--upstream')) await serveUpstream();
else if (process.argv.includes('--gateway')) await serveGateway(process.argv[process.argv.indexOf('--gateway') + 1]!);
else await main();
