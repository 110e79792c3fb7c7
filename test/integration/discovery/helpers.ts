// Fixtures for discovery integration tests: a real dnsmasq on a loopback port, HTTP upstreams
// on several loopback addresses sharing one port (DNS A records carry no port), and polling.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nodeDns, { promises as dns, type LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../../helpers/upstream.ts';
import { freePort } from '../../helpers/ports.ts';
import { START_MS, until, UNTIL_MS } from '../../helpers/until.ts';

export const INSTALL_DNSMASQ = 'dnsmasq is required for the DNS discovery tests: apt-get install -y dnsmasq (scripts/setup.sh installs it)';

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port dnsmasq can take for both UDP and TCP. Not bind(0): that port comes from the ephemeral
 * range, where an outgoing TCP connection of another test may hold it as its source port, and
 * dnsmasq's TCP listener then failed with "Address already in use" (CI, session 15). freePort
 * picks outside that range and checks TCP; UDP is checked here.
 */
async function freeDnsPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if (await udpFree(port)) return port;
  }
  throw new Error('no loopback port free for both UDP and TCP after 20 attempts');
}

export interface Dnsmasq {
  /** "127.0.0.1:<port>" for `resolver` */
  server: string;
  /** replaces the A records (name -> addresses): rewrites the hosts file and SIGHUPs dnsmasq (clears its cache, re-reads it) */
  setHosts(records: Record<string, string[]>): void;
  /** restarts dnsmasq on the same port with other SRV records */
  setSrv(records: string[]): Promise<void>;
  /** SIGKILLs dnsmasq (a crash: queries go unanswered until `start`) */
  kill(): Promise<void>;
  /** starts it again on the same port with the current hosts file and SRV records */
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * dnsmasq answering for the zone "test" only (--local: unknown names are NXDOMAIN, missing
 * types NODATA), A records from a hosts directory, SRV records as `--srv-host` values
 * ("_http._tcp.svc.test,target.test,port,priority,weight").
 */
export async function startDnsmasq(hosts: Record<string, string[]>, srv: string[] = []): Promise<Dnsmasq> {
  if (spawnSync('dnsmasq', ['--version']).error) throw new Error(INSTALL_DNSMASQ);
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-dnsmasq-'));
  const hostsFile = join(dir, 'hosts');
  const port = await freeDnsPort();
  let child: ChildProcess | undefined;
  const writeHosts = (records: Record<string, string[]>) => {
    const text = Object.entries(records)
      .flatMap(([name, addrs]) => addrs.map((a) => `${a} ${name}`))
      .join('\n');
    writeFileSync(hostsFile, text + '\n');
    child?.kill('SIGHUP');
  };
  writeHosts(hosts);
  const resolver = new dns.Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  const start = async (records: string[]) => {
    child = spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--no-resolv',
        '--no-hosts',
        '--pid-file',
        '--user=root',
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        `--port=${port}`,
        '--local=/test/',
        `--addn-hosts=${hostsFile}`,
        '--log-facility=/dev/null',
        ...records.map((r) => `--srv-host=${r}`),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    // ready when it answers (NXDOMAIN for a name it does not know is an answer)
    await until(
      () => `dnsmasq to answer on port ${port}: ${stderr}`,
      async () => {
        if (child!.exitCode !== null) throw new Error(`dnsmasq exited: ${stderr}`);
        return resolver.resolve4('ready-probe.test').then(
          () => true,
          (e: NodeJS.ErrnoException) => e.code === 'ENOTFOUND' || e.code === 'ENODATA',
        );
      },
      START_MS,
      50,
    );
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGTERM');
    });
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((r) => {
      c.once('exit', () => r());
      c.kill('SIGKILL');
    });
  };
  let srvRecords = srv;
  await start(srv);
  return {
    server: `127.0.0.1:${port}`,
    setHosts: writeHosts,
    async setSrv(records) {
      srvRecords = records;
      await stop();
      await start(records);
    },
    kill,
    start: () => start(srvRecords),
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it returns true (bounded, 10 s unless told); fails with `what`. */
export function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = UNTIL_MS): Promise<void> {
  return until(what, check, timeoutMs, 50);
}

export interface NamedServer {
  host: string;
  port: number;
  address: string;
  hits: number;
  /** respond with this status (default 200) */
  status: number;
  server: Server;
}

/** HTTP servers on the given loopback hosts, all on one port; each answers its own host name. */
export async function serversOnOnePort(hosts: string[]): Promise<{ port: number; servers: NamedServer[]; close(): Promise<void> }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const servers: NamedServer[] = [];
    try {
      let port = 0;
      for (const host of hosts) {
        const s = { host, port, address: '', hits: 0, status: 200 } as NamedServer;
        s.server = createServer((_req, res) => {
          s.hits++;
          res.statusCode = s.status;
          res.end(host);
        });
        await new Promise<void>((resolve, reject) => {
          s.server.once('error', reject);
          s.server.listen(port, host, () => resolve());
        });
        servers.push(s);
        port = (s.server.address() as AddressInfo).port;
        s.port = port;
        s.address = `${host}:${port}`;
      }
      return { port, servers, close: () => closeAll(servers) };
    } catch {
      await closeAll(servers); // the port was taken on another address: try another one
    }
  }
  throw new Error('no common free port for the loopback servers');
}

async function closeAll(servers: NamedServer[]): Promise<void> {
  await Promise.all(servers.map((s) => closeServer(s.server)));
}

/** A file-discovery targets file rewritten atomically (write + rename), as the docs recommend. */
export function writeTargets(file: string, lines: string[]): void {
  writeFileSync(`${file}.tmp`, lines.join('\n') + '\n');
  renameSync(`${file}.tmp`, file);
}

/**
 * Names the system resolver answers without DNS or /etc/hosts: node:dns's `lookup` (getaddrinfo)
 * is replaced in this process for the names in `records`, every other name goes to the real one.
 * net.connect reads `dns.lookup` per connect, as does the gateway's checked lookup
 * (src/upstream/discovery/address-policy.ts checkedLookup), so a discovered host name can be made
 * to resolve to a loopback own listener or to 0.0.0.0 with no traffic leaving the machine.
 * Returns the restore function and the number of lookups per faked name.
 */
export function fakeSystemHosts(records: Record<string, string[]>): { restore(): void; calls: Map<string, number> } {
  const real = nodeDns.lookup;
  const calls = new Map<string, number>();
  type Cb = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
  const fake = (hostname: string, options: unknown, callback?: Cb): void => {
    const cb = (typeof options === 'function' ? options : callback) as Cb;
    const opts = (typeof options === 'object' && options !== null ? options : {}) as { all?: boolean };
    const addrs = records[hostname.toLowerCase()];
    if (!addrs) {
      (real as (h: string, o: unknown, c: Cb) => void)(hostname, typeof options === 'function' ? {} : options, cb);
      return;
    }
    calls.set(hostname.toLowerCase(), (calls.get(hostname.toLowerCase()) ?? 0) + 1);
    const list = addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    queueMicrotask(() => (opts.all ? cb(null, list) : cb(null, list[0]!.address, list[0]!.family)));
  };
  (nodeDns as { lookup: unknown }).lookup = fake;
  return {
    restore: () => {
      (nodeDns as { lookup: unknown }).lookup = real;
    },
    calls,
  };
}
