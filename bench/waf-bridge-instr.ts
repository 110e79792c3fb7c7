// The WAF path outside the engine, in instructions (issue #16 item 2, "nineteenth session"): the
// bench GET's request_headers event through the in-process bridge (`--side inproc`: the agent
// filter's transport call, InProcessAgent -> WafService -> the reply the filter reads) or through
// the sentinel-waf agent's side of the socket (`--side agent`: a raw client writes the frames the
// gateway writes, in batches of --batch per write, to the SDK's runAgent serving WafService, and
// reads the replies), with the engine replaced by a stub transaction that matches nothing (it reads
// the header list once, as the engine's setRequest does). What is left is what this bench counts:
// event handling, the service's own work, the transaction input, the reply.
// Run under callgrind twice with different --events: (instructions of the long run - the short
// run) / (difference in events) is one event's cost (the loader and warm-up cancel out). --root DIR
// picks the checkout measured (its bridge, service and SDK; the events are this checkout's bytes).
//   for n in 20000 40000; do valgrind --tool=callgrind --smc-check=all --callgrind-out-file=/tmp/br.$n \
//     node --import tsx bench/waf-bridge-instr.ts --root DIR --side inproc --events $n; done
// Without valgrind it prints CPU µs per event (process.cpuUsage), a rough timing.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { RequestHeadersMessage, encodeRequestHeadersJson, type RequestMetadata } from '../src/agent-protocol/messages.ts';
import { BROWSER_HEADERS, getPath } from './lib/waf-requests.ts';
import { connectFrameClient, frame } from './lib/agent-socket-client.ts';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: '.' },
    side: { type: 'string', default: 'inproc' },
    events: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '20' },
  },
});
const root = resolve(values.root!);
const events = Number(values.events);
const batch = Number(values.batch);
const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(join(root, rel)).href)) as T;

type Messages = typeof import('../src/agent-protocol/messages.ts');
type Service = typeof import('../src/waf/agent/service.ts');
type Config = typeof import('../src/waf/agent/config.ts');
type InProcess = typeof import('../plugins/agents/in-process.ts');
type WafHandlers = typeof import('../src/waf/agent/in-process.ts');
type Sdk = typeof import('../src/agent-sdk/index.ts');

// The root's own message class for the in-process side (the bridge recognises its own class).
const messages = await load<Messages>('src/agent-protocol/messages.ts');
const { WafService } = await load<Service>('src/waf/agent/service.ts');
const { defaultConfig } = await load<Config>('src/waf/agent/config.ts');
const { wafHandlers } = await load<WafHandlers>('src/waf/agent/in-process.ts');

/** A transaction that matches nothing; it reads its input once, as the engine's constructor does. */
class StubTx {
  readonly engineMode = 'On';
  readonly inspectsResponseBody = false;
  seen = 0;
  constructor(input: { headers: [string, string][]; uri: string }) {
    for (const [k, v] of input.headers) this.seen += k.length + v.length;
    this.seen += input.uri.length;
  }
  processRequestHeaders(): undefined {
    return undefined;
  }
  processRequestBody(): undefined {
    return undefined;
  }
  processLogging(): void {}
  matchedRules(): never[] {
    return [];
  }
  getTx(): undefined {
    return undefined;
  }
}
const stubWaf = { newTransaction: (input: { headers: [string, string][]; uri: string }) => new StubTx(input) };
const config = defaultConfig();
config.requestSideOnly = true;
const service = new WafService(stubWaf as never, config, () => {});

// The bench GET as the gateway's filter builds its event (Node's lower-cased header names, Host first).
const raw: Record<string, string> = { host: 'shop.example.com' };
for (const [k, v] of BROWSER_HEADERS) raw[k.toLowerCase()] = v;
function metadata(cid: string, i: number): RequestMetadata {
  return {
    correlation_id: cid,
    request_id: cid,
    client_ip: '127.0.0.1',
    client_port: 40000 + (i % 20000),
    server_name: 'shop.example.com',
    protocol: 'HTTP/1.1',
    tls_version: null,
    tls_cipher: null,
    route_id: 'waf',
    upstream_id: 'origin',
    timestamp: '2026-12-06T13:00:00.000Z',
    traceparent: null,
  };
}
const cidOf = (i: number): string => `0af7651916cd43dd8448eb211c80319c-${i}`;

let run: (n: number) => Promise<void>;
let close = async (): Promise<void> => {};
if (values.side === 'inproc') {
  const { InProcessAgent } = await load<InProcess>('plugins/agents/in-process.ts');
  const agent = new InProcessAgent('waf', 'sentinel-waf', {}, new Set(['request_headers', 'request_body']));
  // the built engine replaced by the stub service: what start() would set
  (agent as unknown as { handlers: unknown }).handlers = wafHandlers(service);
  const opts = { timeoutMs: 10_000 };
  let i = 0;
  run = async (n) => {
    // 50 in flight, as the bench's connections
    for (let done = 0; done < n; done += 50) {
      const calls: Promise<unknown>[] = [];
      for (let k = 0; k < 50; k++, i++) {
        const cid = cidOf(i);
        const ev = new messages.RequestHeadersMessage(cid, metadata(cid, i), 'GET', getPath(String(i)), raw);
        calls.push(agent.call(0x10, cid, ev, opts));
      }
      await Promise.all(calls);
    }
  };
} else if (values.side === 'agent') {
  const sdk = await load<Sdk>('src/agent-sdk/index.ts');
  const socketPath = join(mkdtempSync(join(tmpdir(), 'waf-bridge-')), 'agent.sock');
  const agent = await sdk.runAgent({ socketPath, name: 'bench-waf', ...wafHandlers(service) });
  close = () => agent.close();
  // this checkout's encoder: every root's agent reads the same bytes
  const batchBuf = Buffer.concat(
    Array.from({ length: batch }, (_, i) => {
      const cid = cidOf(i);
      return frame(0x10, encodeRequestHeadersJson(new RequestHeadersMessage(cid, metadata(cid, i), 'GET', getPath(String(i)), raw)));
    }),
  );
  const client = await connectFrameClient(socketPath);
  const roundTrip = client.roundTrip;
  run = async (n) => {
    for (let done = 0; done < n; done += batch) await roundTrip(batchBuf, batch);
  };
  const prev = close;
  close = async () => {
    client.destroy();
    await prev();
  };
} else throw new Error(`--side inproc|agent, not ${values.side}`);

await run(Number(values.warmup));
const t0 = process.cpuUsage();
await run(events);
const t = process.cpuUsage(t0);
console.log(`${values.side} ${root}: ${events} events: ${((t.user + t.system) / events).toFixed(2)} µs CPU per event`);
await close();
