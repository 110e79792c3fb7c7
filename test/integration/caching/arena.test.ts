// The memory tier's arena through a real gateway: a body being written to a slow client keeps its
// chunks while its entry is evicted and the arena is refilled with other bodies; a client that
// leaves mid-body gives them back. Origin and clients on 127.0.0.1.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { gatewayFrom } from '../../helpers/gateway.ts';
import { cacheConfig, get, scriptedOrigin, type Script } from './origin.ts';
import { until } from '../../helpers/until.ts';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** Larger than what loopback socket buffers take from a client that does not read. */
const BODY_BYTES = 6 * 1024 * 1024;
const BUDGET = 16 * 1024 * 1024;

/** The body of /big/<n>: bytes that differ per key and per position. */
function bodyOf(n: number): Buffer {
  const b = Buffer.allocUnsafe(BODY_BYTES);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE(((i * 2654435761) ^ (n * 40503)) >>> 0, i);
  return b;
}

async function setup() {
  const scripts: Record<string, Script> = {};
  for (let n = 0; n < 8; n++) {
    const body = bodyOf(n);
    scripts[`/big/${n}`] = (_q, r) => {
      r.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), 'cache-control': 'max-age=600' });
      r.end(body);
    };
  }
  const origin = await scriptedOrigin(scripts);
  const { gw, url } = await gatewayFrom(cacheConfig(origin.up, { top: `max-size ${BUDGET}`, route: `max-size-bytes ${BODY_BYTES}` }));
  cleanup.push(async () => {
    await gw.close();
    await origin.up.close();
  });
  const base = url();
  const stats = async () => JSON.parse((await get(`${base}/admin/cache/stats`)).body) as { entries: number; size_bytes: number; stores: number; hits: number };
  /** GETs /big/<n> in full (bounded wait for its store to land) and checks its bytes */
  const fetchWhole = async (n: number) => {
    const before = (await stats()).stores;
    const r = await fetch(`${base}/big/${n}`);
    const got = Buffer.from(await r.arrayBuffer());
    assert.ok(got.equals(bodyOf(n)), `/big/${n} intact`);
    const status = r.headers.get('cache-status') ?? '';
    // the store lands after the response: wait for it (bounded)
    if (status.includes('stored')) await until(`the store of /big/${n}`, async () => (await stats()).stores !== before);
    return status;
  };
  return { base, hits: origin.hits, stats, fetchWhole };
}

/** A raw HTTP/1.1 client that sends one GET and reads only what it is told to. */
function slowClient(base: string, path: string) {
  const { hostname, port } = new URL(base);
  const sock: Socket = connect(Number(port), hostname);
  const parts: Buffer[] = [];
  let received = 0;
  sock.on('data', (d: Buffer) => {
    parts.push(d);
    received += d.length;
    // stop reading at once: a receive buffer that never grew keeps most of the body in the gateway
    if (!resumed) sock.pause();
  });
  let resumed = false;
  sock.write(`GET ${path} HTTP/1.1\r\nhost: ${hostname}:${port}\r\nconnection: close\r\n\r\n`);
  return {
    sock,
    received: () => received,
    /** reads the rest; the body after the headers */
    async rest(): Promise<{ head: string; body: Buffer }> {
      resumed = true;
      sock.resume();
      await new Promise<void>((resolve, reject) => {
        sock.once('end', resolve);
        sock.once('error', reject);
      });
      const all = Buffer.concat(parts);
      const at = all.indexOf('\r\n\r\n');
      return { head: all.subarray(0, at).toString('latin1'), body: all.subarray(at + 4) };
    },
  };
}

test('a hit being written to a slow client keeps its bytes while its entry is evicted and the arena refilled', async () => {
  const { base, hits, stats, fetchWhole } = await setup();
  assert.match(await fetchWhole(0), /stored/);
  const slow = slowClient(base, '/big/0');
  // the hit has begun (its head is here): the rest waits in the gateway, read from the arena chunks
  await until('the head of the slow hit', () => slow.received() > 0);
  assert.ok(slow.received() < BODY_BYTES, 'the hit is still being written');
  // four more 6 MiB bodies through a 16 MiB budget: /big/0 is evicted, the others evict each other
  for (const n of [1, 2, 3, 4]) await fetchWhole(n);
  const st = await stats();
  assert.ok(st.size_bytes <= BUDGET, `${st.size_bytes} > ${BUDGET}`);
  // the stores went on around the chunks still in use: at most one entry fits beside them
  assert.equal(st.entries, 1, `entries beside the lingering body: ${st.entries}`);
  const { head, body } = await slow.rest();
  assert.match(head, /^HTTP\/1\.1 200/);
  assert.match(head, /cache-status: sentinel; hit/i);
  assert.equal(body.length, BODY_BYTES);
  assert.ok(body.equals(bodyOf(0)), 'the slow client got the bytes of /big/0, not of a body stored since');
  // its chunks are back: the budget holds two entries again
  for (const n of [5, 6]) await fetchWhole(n);
  assert.equal((await stats()).entries, 2);
  // the evicted /big/0 is fetched again from the origin, intact
  assert.match(await fetchWhole(0), /fwd=uri-miss/);
  assert.equal(hits('/big/0'), 2);
});

test('a slow client that leaves mid-body gives the chunks back', async () => {
  const { base, stats, fetchWhole } = await setup();
  await fetchWhole(0);
  const slow = slowClient(base, '/big/0');
  await until('the head of the slow hit', () => slow.received() > 0);
  assert.ok(slow.received() < BODY_BYTES, 'the hit is still being written');
  for (const n of [1, 2]) await fetchWhole(n);
  assert.equal((await stats()).entries, 1, 'the evicted body still holds its chunks');
  slow.sock.destroy();
  // once the gateway sees the connection close, the chunks are free: two entries fit again
  let i = 0;
  await until('two entries once the slow client left', async () => {
    await fetchWhole(3 + (i++ % 5));
    return (await stats()).entries === 2;
  });
});
