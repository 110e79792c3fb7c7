// The audit log's syslog sink end to end: real rsyslogds (started here on free loopback ports:
// one with UDP and TCP inputs, one with a TLS input (gtls) whose certificate a test CA signed;
// test/helpers/rsyslog.ts), a real
// gateway whose audit events (a rate-limit rejection, a config reload) go to it, and the fields
// rsyslog parsed read back. Then a TCP sink with nobody listening: requests are still served and
// the drop counter counts what the bounded queue could not hold.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { request } from '../../helpers/http.ts';
import { freePort } from '../../helpers/redis.ts';
import { startRsyslog, type Rsyslog } from '../../helpers/rsyslog.ts';
import { Pki } from '../../helpers/pki.ts';

let up: TestUpstream;
let plain: Rsyslog;
let secure: Rsyslog;
let pki: Pki;
let caFile: string;
const ports = { udp: 0, tcp: 0, tls: 0 };

before(async () => {
  up = await startUpstream();
  ports.udp = await freePort();
  ports.tcp = await freePort();
  ports.tls = await freePort();
  plain = await startRsyslog(
    () => `module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="${ports.udp}" ruleset="audit")
input(type="imtcp" address="127.0.0.1" port="${ports.tcp}" ruleset="audit")`,
    ports.tcp,
  );
  pki = await Pki.create();
  const ca = await pki.ca('syslog-ca');
  caFile = ca.cert;
  const server = await ca.issue('syslog-server', { cn: 'syslog.test', dns: ['syslog.test'], usage: 'server' });
  // TLS without client certificates (anon auth mode): the gateway verifies rsyslog, not the reverse.
  secure = await startRsyslog(
    () => `global(DefaultNetstreamDriver="gtls" DefaultNetstreamDriverCAFile="${ca.cert}" DefaultNetstreamDriverCertFile="${server.cert}" DefaultNetstreamDriverKeyFile="${server.key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" address="127.0.0.1" port="${ports.tls}" ruleset="audit")`,
    ports.tls,
  );
});

after(async () => {
  await plain?.stop();
  await secure?.stop();
  await pki?.close();
  await up?.close();
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

for (const protocol of ['udp', 'tcp', 'tls'] as const) {
  test(`audit events reach rsyslog over ${protocol} as RFC 5424 with the event type as MSGID and JSON as MSG`, async () => {
    const host = `sentinel-${protocol}-test`;
    const port = ports[protocol];
    const tlsOptions = protocol === 'tls' ? `; ca-file "${caFile}"; server-name "syslog.test"` : '';
    const sink = protocol === 'tls' ? secure : plain;
    const startedAt = Date.now();
    const { gw, url } = await gatewayFrom(config(`address "127.0.0.1:${port}"; protocol "${protocol}"; facility "local3"; hostname "${host}"${tlsOptions}`));
    try {
      assert.equal((await request(`${url()}/a`)).status, 200);
      assert.equal((await request(`${url()}/b?x=1`)).status, 429);
      await gw.reload();
      const rows = await sink.received(host, 3);
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

test('a TLS sink that does not trust the receiver sends nothing: the handshake fails, requests are served, events are dropped', async () => {
  const host = 'sentinel-untrusted-test';
  // No ca-file: the system CAs do not know the test CA.
  const { gw, url } = await gatewayFrom(config(`address "127.0.0.1:${ports.tls}"; protocol "tls"; server-name "syslog.test"; queue-size 1; hostname "${host}"`));
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await request(`${url()}/u`)).status);
    assert.deepEqual(statuses, [200, 429, 429, 429, 429, 429]);
    assert.match(await gw.metrics.render(), /sentinel_audit_dropped_total\{sink="syslog"\} 4\n/);
  } finally {
    await gw.close();
  }
  assert.deepEqual(await secure.received(host, 1).then((rows) => rows.length), 0);
});
