// The gateway's request_headers event encoder (src/agent-protocol/messages.ts
// encodeRequestHeadersJson) in instructions per event (issue #16 item 3). Events are built as the
// agent filter builds them (plugins/agents/filter.ts requestHeadersEvent) with the strings a
// request brings: a new correlation id, port, URI and header values per request (Node's parser
// makes new strings), the same client address per connection, the same method, route and
// timestamp string (context.ts shares it per millisecond). --headers bench: the bench's GET (Host
// only, as wrk sends); browser: 7 browser headers; distinct: the same 7 with every value different
// from the previous request's (no two consecutive requests share a header). --root DIR picks the
// checkout measured.
//   valgrind --tool=callgrind --smc-check=all --instr-atstart=no --callgrind-out-file=/tmp/ej.%p \
//     node --import tsx bench/event-json-instr.ts --root DIR --callgrind [--headers bench|browser|distinct]
// Two dumps: .1 builds and encodes --events events, .2 only builds as many; the encoder is
// (.1 - .2) / --events, best without V8's GC (bench/lib/callgrind-split.ts: `rest`).
// Without --callgrind it prints ns per event (a rough timing).
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const { values } = parseArgs({
  options: {
    root: { type: 'string', default: '.' },
    events: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '40000' },
    headers: { type: 'string', default: 'bench' },
    callgrind: { type: 'boolean', default: false },
  },
});
const root = resolve(values.root!);
const m = (await import(pathToFileURL(join(root, 'src', 'agent-protocol', 'messages.ts')).href)) as typeof import('../src/agent-protocol/messages.ts');

// a new string with the same text (what the HTTP parser gives each request)
const fresh = (s: string): string => Buffer.from(s, 'latin1').toString('latin1');
const BROWSER: [string, string][] = [
  ['host', 'shop.example.com'],
  ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'],
  ['accept', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'],
  ['accept-language', 'en-US,en;q=0.5'],
  ['accept-encoding', 'gzip, deflate, br'],
  ['cookie', 'session=3f2a9c1e7b; theme=dark'],
  ['referer', 'https://shop.example.com/'],
];
const pairs: [string, string][] = values.headers === 'browser' || values.headers === 'distinct' ? BROWSER : [['host', '127.0.0.1:8080']];
const distinct = values.headers === 'distinct';
const clientIp = fresh('127.0.0.1');
let timestamp = new Date(0).toISOString();

function event(i: number): InstanceType<typeof m.RequestHeadersMessage> {
  const cid = fresh(`0af7651916c${(i % 100000).toString(36)}`);
  if (i % 8 === 0) timestamp = new Date(i).toISOString(); // a new millisecond every few requests
  const raw: Record<string, string> = {};
  for (const [k, v] of pairs) raw[k] = fresh(distinct ? `${v}${i % 97}` : v);
  const metadata = {
    correlation_id: cid,
    request_id: cid,
    client_ip: clientIp,
    client_port: 40000 + (i % 20000),
    server_name: pairs[0]![1],
    protocol: 'HTTP/1.1',
    tls_version: null,
    tls_cipher: null,
    route_id: 'agent',
    upstream_id: 'origin',
    timestamp,
    traceparent: null,
  };
  return new m.RequestHeadersMessage(cid, metadata, 'GET', fresh('/agent'), raw);
}

let sink = 0;
function run(n: number, from: number): void {
  for (let i = 0; i < n; i++) sink += m.encodeRequestHeadersJson(event(from + i)).length;
}
// the events alone (built, not encoded), to subtract: printed so the encoder's share can be taken
function build(n: number, from: number): void {
  for (let i = 0; i < n; i++) sink += event(from + i).uri.length;
}

const events = Number(values.events);
run(Number(values.warmup), 0);
build(Number(values.warmup), 0);
const control = (...args: string[]) => new Promise<void>((ok, fail) => execFile('callgrind_control', [...args, String(process.pid)], (err) => (err ? fail(err) : ok())));
if (values.callgrind) await control('-i', 'on');
const t0 = process.hrtime.bigint();
run(events, 1_000_000);
const t1 = process.hrtime.bigint();
if (values.callgrind) {
  await control('-d'); // dump 1: build + encode
  build(events, 2_000_000);
  await control('-d'); // dump 2: build only
} else {
  build(events, 2_000_000);
  const t2 = process.hrtime.bigint();
  console.log(`build+encode ${(Number(t1 - t0) / events).toFixed(0)} ns/event, build ${(Number(t2 - t1) / events).toFixed(0)} ns/event`);
}
if (sink === 0) console.log('');
