// Starts a real rsyslogd for a test: a config written to a temp dir (the caller gives the
// modules and inputs; every input uses ruleset "audit"), one omfile output whose template prints
// each RFC 5424 field tab-separated, and a reader for what it wrote.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { START_MS, until, UNTIL_MS } from './until.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Received {
  pri: number;
  time: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: string;
  event: Record<string, unknown>;
}

export interface Rsyslog {
  dir: string;
  /** the lines written for HOSTNAME `host`, waiting (bounded, 10 s) until `want` of them are there */
  received(host: string, want: number): Promise<Received[]>;
  stop(): Promise<void>;
}

function rsyslogBinary(): string {
  for (const bin of ['rsyslogd', '/usr/sbin/rsyslogd']) if (!spawnSync(bin, ['-v'], { stdio: 'ignore' }).error) return bin;
  throw new Error('rsyslogd is not installed; install it with: apt-get install -y rsyslog rsyslog-gnutls (scripts/setup.sh does)');
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

/** `inputs(dir)` returns the config lines for modules and inputs; `readyPort` is a TCP input to wait for. */
export async function startRsyslog(inputs: (dir: string) => string, readyPort: number): Promise<Rsyslog> {
  const bin = rsyslogBinary();
  const dir = mkdtempSync(join(tmpdir(), 'sentinel-rsyslog-'));
  const outFile = join(dir, 'audit.out');
  writeFileSync(
    join(dir, 'rsyslog.conf'),
    `global(workDirectory="${dir}")
${inputs(dir)}
template(name="fields" type="string" string="%pri%\\t%timereported:::date-rfc3339%\\t%hostname%\\t%app-name%\\t%procid%\\t%msgid%\\t%structured-data%\\t%msg%\\n")
ruleset(name="audit") { action(type="omfile" file="${outFile}" template="fields") }
`,
  );
  const proc: ChildProcess = spawn(bin, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += String(d)));
  try {
    await until(`rsyslogd to listen on ${readyPort}`, async () => {
      if (proc.exitCode !== null) throw new Error(`rsyslogd exited (${proc.exitCode}) before it listened on ${readyPort}: ${stderr}`);
      return tcpOpen(readyPort);
    }, START_MS, 100);
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}: ${stderr}`, { cause: err });
  }
  return {
    dir,
    async received(host, want) {
      let rows: Received[] = [];
      const read = () => {
        const lines = existsSync(outFile) ? readFileSync(outFile, 'utf8').split('\n').filter((l) => l !== '') : [];
        rows = lines
          .map((l) => l.split('\t'))
          .filter((f) => f[2] === host)
          .map(([pri, time, hostname, appName, procId, msgId, sd, msg]) => ({
            pri: Number(pri),
            time: time!,
            hostname: hostname!,
            appName: appName!,
            procId: procId!,
            msgId: msgId!,
            sd: sd!,
            event: JSON.parse(msg!.replace(/^\s*\uFEFF/, '')) as Record<string, unknown>,
          }));
        return rows.length >= want;
      };
      // what arrived by the bound is returned all the same: the caller's assertion shows it
      await until(`${want} rows from ${host}`, read, UNTIL_MS, 100).catch(() => undefined);
      return rows;
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, sleep(3000)]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
