// The SDK agent's side of the hop, in instructions (issue #16 item 3): one process runs the SDK's
// allow-all agent (the agent bench/agent-hop.ts starts) and a raw client on a Unix socket that
// writes request_headers events in batches of --batch frames (one write per batch, as the
// gateway's FrameWriter sends a turn's events) and reads the replies. Run under callgrind twice
// with different --events; (instructions of the long run - the short run) / (difference in
// events) is what one event costs, the client's small constant share included (the same for
// every tree). --root DIR picks the checkout whose SDK is measured.
//   for n in 20000 40000; do valgrind --tool=callgrind --smc-check=all --callgrind-out-file=/tmp/sdk.$n \
//     node --import tsx bench/agent-sdk-instr.ts --root DIR --events $n; done
// Without valgrind it prints CPU µs per event (process.cpuUsage), a rough timing. --vary: each event of
// a batch differs from the one before in client address, route, timestamp, path and Host (the
// reader's kept strings all miss: its worst case).
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { RequestHeadersMessage, encodeRequestHeadersJson } from '../src/agent-protocol/messages.ts';
import { connectFrameClient, frame } from './lib/agent-socket-client.ts';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: '.' },
    events: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '0' },
    callgrind: { type: 'boolean', default: false },
    // every event of a batch differs from the one before in each member the SDK's reader keeps (its worst case)
    vary: { type: 'boolean', default: false },
  },
});
const root = resolve(values.root!);
const events = Number(values.events);
const batch = Number(values.batch);

const sdk = (await import(pathToFileURL(join(root, 'src', 'agent-sdk', 'index.ts')).href)) as typeof import('../src/agent-sdk/index.ts');
const socketPath = join(mkdtempSync(join(tmpdir(), 'sdk-instr-')), 'agent.sock');
const agent = await sdk.runAgent({ socketPath, name: 'bench-allow', onRequestHeaders: () => sdk.allow() });

// A request_headers event as the gateway writes it for the bench's GET (Host, Connection): the
// gateway's own encoder (this checkout's), so every tree's SDK reads the same bytes.
function event(i: number): string {
  const cid = `0af7651916cd43dd8448eb211c80319c-${String(i).padStart(4, '0')}`;
  // --vary: the i-th variant of a member, else the member as it always was
  const m = (usual: string, varied: (d: number) => string): string => (values.vary ? varied(i % 10) : usual);
  const metadata = {
    correlation_id: cid,
    request_id: cid,
    client_ip: m('127.0.0.1', (d) => `127.0.0.${d}`),
    client_port: 40000 + i,
    server_name: '127.0.0.1:8080',
    protocol: 'HTTP/1.1',
    tls_version: null,
    tls_cipher: null,
    route_id: m('agent', (d) => `agent${d}`),
    upstream_id: 'origin',
    timestamp: m('2026-12-06T04:00:00.000Z', (d) => `2026-12-06T04:00:00.00${d}Z`),
    traceparent: null,
  };
  return encodeRequestHeadersJson(new RequestHeadersMessage(cid, metadata, 'GET', m('/agent', (d) => `/agent${d}`), { host: m('127.0.0.1:8080', (d) => `127.0.0.1:808${d}`), connection: 'keep-alive' }));
}
const batchBuf = Buffer.concat(Array.from({ length: batch }, (_, i) => frame(0x10, event(i))));

const client = await connectFrameClient(socketPath);
const roundTrip = client.roundTrip;
for (let n = 0; n < Number(values.warmup); n += batch) await roundTrip(batchBuf, batch);
const control = (...args: string[]) => new Promise<void>((ok, fail) => execFile('callgrind_control', [...args, String(process.pid)], (err) => (err ? fail(err) : ok())));
if (values.callgrind) await control('-i', 'on');
const t0 = process.cpuUsage();
for (let n = 0; n < events; n += batch) await roundTrip(batchBuf, batch);
const t = process.cpuUsage(t0);
if (values.callgrind) await control('-d');
console.log(`${events} events in batches of ${batch}: ${((t.user + t.system) / events).toFixed(2)} µs CPU per event (client and agent, one process)`);
client.destroy();
await agent.close();
