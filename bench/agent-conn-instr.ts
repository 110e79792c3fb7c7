// The gateway's side of the hop below the filter, in instructions (issue #16 item 3): one
// AgentConnection (--root's checkout) sends request_headers events to that checkout's SDK
// allow-all agent, which runs in a child process (so callgrind counts the gateway's side only), in
// lock-step batches of --batch calls made in one turn (one write each way per batch, as under
// load). Each call has its own sink object, as the client's PendingCall. The warm-up runs
// uninstrumented; the dump holds exactly --calls calls: its total (or the `rest` of
// bench/lib/callgrind-split.ts, without GC and TurboFan) / --calls is the connection's cost a call:
// the frame writer and event encoding, the read, the reply match and the pending bookkeeping.
//   valgrind --tool=callgrind --smc-check=all --instr-atstart=no --callgrind-out-file=DIR/conn.%p \
//     node --import tsx bench/agent-conn-instr.ts --root TREE --callgrind [--warmup 30000] [--calls 8000] [--batch 16]
// Without valgrind it prints CPU µs a call (the gateway side's process only), a rough timing.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: '.' },
    calls: { type: 'string', default: '8000' },
    batch: { type: 'string', default: '16' },
    warmup: { type: 'string', default: '30000' },
    callgrind: { type: 'boolean', default: false },
  },
});
const root = resolve(values.root!);
const calls = Number(values.calls);
const batch = Number(values.batch);
const src = (p: string) => pathToFileURL(join(root, 'src', p)).href;
const { AgentConnection } = (await import(src('agent-protocol/connection.ts'))) as typeof import('../src/agent-protocol/connection.ts');
const { RequestHeadersMessage } = (await import(src('agent-protocol/messages.ts'))) as typeof import('../src/agent-protocol/messages.ts');
const { MessageType } = (await import(src('agent-protocol/frames.ts'))) as typeof import('../src/agent-protocol/frames.ts');

const dir = mkdtempSync(join(tmpdir(), 'conn-instr-'));
const socketPath = join(dir, 'agent.sock');
const agentFile = join(dir, 'agent.mts');
writeFileSync(
  agentFile,
  `import { runAgent, allow } from ${JSON.stringify(src('agent-sdk/index.ts'))};
await runAgent({ socketPath: ${JSON.stringify(socketPath)}, name: 'bench-allow', onRequestHeaders: () => allow() });
process.stdout.write('listening\\n');
`,
);
const agent = spawn(process.execPath, ['--import', 'tsx', agentFile], { stdio: ['ignore', 'pipe', 'inherit'], cwd: root });
await new Promise<void>((ok) => agent.stdout.on('data', (c: Buffer) => c.toString().includes('listening') && ok()));

const conn = new AgentConnection({
  socketPath,
  connectTimeoutMs: 60_000,
  handshake: { supported_versions: [2], proxy_id: 'bench', proxy_version: '0', config: null, supported_encodings: ['json'] },
});
await conn.open();

// ids as the gateway makes them (tinyflake: 11 printable characters, a new string each request)
let seq = 0;
const nextId = () => `0Ab${(seq++).toString(36).padStart(8, 'x')}`;
const metadata = (cid: string, i: number) => ({
  correlation_id: cid,
  request_id: cid,
  client_ip: '127.0.0.1',
  client_port: 40000 + (i % 50),
  server_name: '127.0.0.1:8080',
  protocol: 'HTTP/1.1',
  tls_version: null,
  tls_cipher: null,
  route_id: 'agent',
  upstream_id: 'origin',
  timestamp: '2026-12-07T04:00:00.000Z',
  traceparent: null,
});
const headers = { host: '127.0.0.1:8080', connection: 'keep-alive' };

let left = 0;
let done: () => void = () => undefined;
class Sink {
  resolve(): void {
    if (--left === 0) done();
  }
  reject(err: Error): void {
    throw err;
  }
}
function round(): Promise<void> {
  left = batch;
  const p = new Promise<void>((r) => (done = r));
  for (let i = 0; i < batch; i++) {
    const cid = nextId();
    conn.sendTo!(MessageType.RequestHeaders, cid, new RequestHeadersMessage(cid, metadata(cid, i), 'GET', '/agent', headers), new Sink());
  }
  return p;
}

for (let n = 0; n < Number(values.warmup); n += batch) await round();
const control = (...args: string[]) => new Promise<void>((ok, fail) => execFile('callgrind_control', [...args, String(process.pid)], (err) => (err ? fail(err) : ok())));
if (values.callgrind) await control('-i', 'on');
const t0 = process.cpuUsage();
for (let n = 0; n < calls; n += batch) await round();
const t = process.cpuUsage(t0);
if (values.callgrind) await control('-d');
console.log(`${calls} calls in batches of ${batch}: ${((t.user + t.system) / calls).toFixed(2)} µs CPU a call (the connection's side)`);
conn.close();
agent.kill();
