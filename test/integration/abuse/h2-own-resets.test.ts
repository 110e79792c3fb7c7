// The HTTP/2 rapid-reset guard counts only streams the client resets (docs/security.md, "Session
// 27 audit"). Streams the gateway resets itself (request-timeout-secs, the chunk budgets) were
// counted too (Node emits 'aborted' on a local close before the response as on a peer's
// RST_STREAM): 250 uploads that timed out together closed their client's session as `rapid_reset`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { startUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { notHung } from '../../helpers/until.ts';
import { startGateway, type Gateway } from '../../../src/server/gateway.ts';
import { HTTP2_ABUSE_LIMITS } from '../../../src/server/http2-abuse.ts';
import { h2Request } from '../../helpers/http.ts';

let up: TestUpstream;
let gw: Gateway;
/** more than the guard's limit, all reset by the gateway at one request timeout */
const STALLED = HTTP2_ABUSE_LIMITS.maxPeerResets + 50;

before(async () => {
  up = await startUpstream();
  gw = await startGateway({
    logLevel: 'silent',
    configText: `
system { graceful-shutdown-timeout-secs 1 }
listeners {
  listener "h2c" { address "127.0.0.1:0"; protocol "h2"; request-timeout-secs 1; max-concurrent-streams 400 }
}
routes { route "main" { matches { path-prefix "/" }; upstream "backend" } }
upstreams { upstream "backend" { target "${up.address}" } }
`,
  });
});

after(async () => {
  await gw?.close();
  await up?.close();
});

async function metric(name: string, labels: Record<string, string>): Promise<number> {
  const m = gw.metrics.registry.getSingleMetric(name);
  const v = (await m?.get())?.values.find((x) => Object.entries(labels).every(([k, want]) => x.labels[k] === want));
  return v?.value ?? 0;
}

/** A GET's status (undefined: the stream was reset). */
const get = async (client: http2.ClientHttp2Session, path: string): Promise<number | undefined> => (await h2Request(client, { ':path': path })).status;

test('uploads the gateway resets at its request timeout are not rapid-reset abuse: the session goes on', async () => {
  const client = http2.connect(`http://127.0.0.1:${gw.address('h2c').port}`, { settings: { maxConcurrentStreams: 1000 } });
  client.on('error', () => undefined);
  try {
    assert.equal(await get(client, '/before'), 200);
    // Each upload sends its headers and one byte, then stalls: the listener's request timeout resets it.
    const resets = Array.from({ length: STALLED }, (_, i) => {
      const s = client.request({ ':method': 'POST', ':path': `/upload/${i}` });
      s.on('error', () => undefined);
      s.write('x');
      return new Promise<number>((resolve) => s.once('close', () => resolve(s.rstCode ?? -1)));
    });
    const codes = await notHung('the stalled uploads reset by the gateway', Promise.all(resets));
    assert.equal(await metric('sentinel_http2_abuse_sessions_closed_total', { kind: 'rapid_reset' }), 0, 'the gateway\'s own resets are not counted as the client\'s');
    assert.equal(codes.filter((c) => c === http2.constants.NGHTTP2_CANCEL).length, STALLED, 'every stalled upload was reset by the request timeout (CANCEL)');
    assert.equal(await metric('sentinel_connections_closed_total', { reason: 'h2_request_timeout' }), STALLED);
    assert.ok(!client.closed && !client.destroyed, 'the session is still open');
    assert.equal(await notHung('a request on the same session', get(client, '/after')), 200);
  } finally {
    client.destroy();
  }
});
