// The audit log's syslog sink end to end: a real rsyslogd (started here on free loopback ports,
// UDP and TCP inputs, one file output with a template that prints each RFC 5424 field), a real
// gateway whose audit events (a rate-limit rejection, a config reload) go to it, and the fields
// rsyslog parsed read back. Then a TCP sink with nobody listening: requests are still served and
// the drop counter counts what the bounded queue could not hold.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { freePort } from '../../helpers/redis.ts';

const dir = mkdtempSync(join(tmpdir(), 'sentinel-syslog-'));
const outFile = join(dir, 'audit.out');
let up: TestUpstream;
let rsyslog: ChildProcess;
let udpPort: number;
let tcpPort: number;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rsyslogBinary(): string {
  for (const bin of ['rsyslogd', '/usr/sbin/rsyslogd']) if (!spawnSync(bin, ['-v'], { stdio: 'ignore' }).error) return bin;
  throw new Error('rsyslogd is not installed; install it with: apt-get install -y rsyslog (scripts/setup.sh does)');
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => (s.destroy(), resolve(true)));
    s.on('error', () => resolve(false));
  });
}

before(async () => {
  const bin = rsyslogBinary();
  up = await startUpstream();
  udpPort = await freePort();
  tcpPort = await freePort();
  // One field per tab: what rsyslog's RFC 5424 parser made of each part of the message.
  writeFileSync(
    join(dir, 'rsyslog.conf'),
    `global(workDirectory="${dir}")
module(load="imudp")
module(load="imtcp")
template(name="fields" type="string" string="%pri%\\t%timereported:::date-rfc3339%\\t%hostname%\\t%app-name%\\t%procid%\\t%msgid%\\t%structured-data%\\t%msg%\\n")
ruleset(name="audit") { action(type="omfile" file="${outFile}" template="fields") }
input(type="imudp" address="127.0.0.1" port="${udpPort}" ruleset="audit")
input(type="imtcp" address="127.0.0.1" port="${tcpPort}" ruleset="audit")
`,
  );
  rsyslog = spawn(bin, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  rsyslog.stderr!.on('data', (d) => (stderr += String(d)));
  for (let i = 0; i < 100 && !(await tcpOpen(tcpPort)); i++) {
    if (rsyslog.exitCode !== null) throw new Error(`rsyslogd exited: ${stderr}`);
    await sleep(100);
  }
  assert.ok(await tcpOpen(tcpPort), `rsyslogd did not listen on ${tcpPort}: ${stderr}`);
});

after(async () => {
  rsyslog?.kill('SIGTERM');
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

function config(syslog: string): string {
  return `
system { graceful-shutdown-timeout-secs 1 }
listeners { listener "http" { address "127.0.0.1:0" } }
routes { route "limited" { matches { path-prefix "/" }; upstream "backend"; filters "rl" } }
upstreams { upstream "backend" { target "${up.address}" } }
filters { filter "rl" { type "rate-limit"; max-rps 0.1; burst 1 } }
observability { logging { audit-log { syslog { ${syslog} } } } }
`;
}

interface Received {
  pri: number;
  time: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  sd: string;
  event: Record<string, unknown>;
}

/** The lines rsyslog wrote for `host`, waiting (bounded) until `want` of them are there. */
async function received(host: string, want: number): Promise<Received[]> {
  let rows: Received[] = [];
  for (let i = 0; i < 100; i++) {
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
    if (rows.length >= want) return rows;
    await sleep(100);
  }
  return rows;
}

for (const protocol of ['udp', 'tcp'] as const) {
  test(`audit events reach rsyslog over ${protocol} as RFC 5424 with the event type as MSGID and JSON as MSG`, async () => {
    const host = `sentinel-${protocol}-test`;
    const port = protocol === 'udp' ? udpPort : tcpPort;
    const startedAt = Date.now();
    const { gw, url } = await gatewayFrom(config(`address "127.0.0.1:${port}"; protocol "${protocol}"; facility "local3"; hostname "${host}"`));
    try {
      assert.equal((await request(`${url()}/a`)).status, 200);
      assert.equal((await request(`${url()}/b?x=1`)).status, 429);
      await gw.reload();
      const rows = await received(host, 3);
      assert.deepEqual(
        rows.map((r) => r.msgId),
        ['rate_limit_exceeded', 'config_change', 'config_change'],
      );
      for (const [i, r] of rows.entries()) {
        assert.equal(r.pri, 19 * 8 + 5, 'local3.notice');
        assert.equal(r.appName, 'sentinel');
        assert.equal(r.procId, String(process.pid));
        assert.equal(r.sd, `[meta sequenceId="${i + 1}"][origin software="sentinel" swVersion="0.1.0"]`);
        const t = Date.parse(r.time);
        assert.ok(t >= startedAt - 1000 && t <= Date.now() + 1000, `timestamp ${r.time}`);
        assert.equal(r.event.event_type, r.msgId);
        // (rate_limit_exceeded carries the filter's own timestamp, taken a moment earlier)
        if (r.msgId === 'config_change') assert.equal(Date.parse(String(r.event.timestamp)), t, 'the JSON timestamp is the header one');
      }
      assert.equal(rows[0]!.event.route_id, 'limited');
      assert.equal(rows[0]!.event.path, '/b');
      assert.equal(rows[0]!.event.client_ip, '127.0.0.1');
      assert.deepEqual(
        rows.slice(1).map((r) => r.event.action),
        ['reload_started', 'reload_success'],
      );
      assert.doesNotMatch(await gw.metrics.render(), /sentinel_audit_dropped_total\{sink="syslog"\} [1-9]/);
    } finally {
      await gw.close();
    }
  });
}

test('a TCP sink nobody listens on: requests are served, the bounded queue drops and counts', async () => {
  const closedPort = await freePort();
  const { gw, url } = await gatewayFrom(config(`address "127.0.0.1:${closedPort}"; protocol "tcp"; queue-size 2`));
  let closed = false;
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await request(`${url()}/x`)).status);
    // One token, then five rejections: five audit events, two held in the queue, three dropped.
    assert.deepEqual(statuses, [200, 429, 429, 429, 429, 429]);
    assert.match(await gw.metrics.render(), /sentinel_audit_dropped_total\{sink="syslog"\} 3\n/);
    await gw.close();
    closed = true;
    // Closing with nowhere to send them drops (and counts) the two queued events too.
    assert.match(await gw.metrics.render(), /sentinel_audit_dropped_total\{sink="syslog"\} 5\n/);
  } finally {
    if (!closed) await gw.close();
  }
});
