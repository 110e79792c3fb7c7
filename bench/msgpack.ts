// Agent-protocol payload encodings side by side, in the same process, interleaved rounds (per-round
// ratios and their median; the machine may be shared). Not a test.
//   node --import tsx bench/msgpack.ts [--rounds 7] [--iterations 20000] [--baseline path/to/old-msgpack.ts]
// Measures, per real agent message, encoding a whole frame and decoding its payload with
//  * json:    encodeFrame(..., 'json') / JSON.parse (the default encoding),
//  * msgpack: encodeFrame(..., 'msgpack') / decodeMsgpack (src/agent-protocol/msgpack.ts, on @msgpack/msgpack),
//  * baseline (optional): another codec module exporting encodeMsgpack/decodeMsgpack, e.g. the
//    hand-written codec it replaced (`git show <commit>:src/agent-protocol/msgpack.ts > /tmp/old.ts`);
//    it is first checked to write the same bytes.
import { parseArgs } from 'node:util';
import { isDeepStrictEqual } from 'node:util';
import { resolve } from 'node:path';
import { MessageType, encodeFrame, parseJsonPayload } from '../src/agent-protocol/frames.ts';
import { decodeMsgpack, encodeMsgpack } from '../src/agent-protocol/msgpack.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, iterations: { type: 'string', default: '20000' }, baseline: { type: 'string' } } });
const rounds = Number(values.rounds);
const iterations = Number(values.iterations);

interface Codec {
  encode: (v: unknown) => Uint8Array;
  decode: (b: Buffer) => unknown;
}
const baselineModule = values.baseline ? ((await import(resolve(values.baseline))) as { encodeMsgpack: Codec['encode']; decodeMsgpack: Codec['decode'] }) : undefined;
const baseline: Codec | undefined = baselineModule && { encode: baselineModule.encodeMsgpack, decode: baselineModule.decodeMsgpack };

const headers: Record<string, string[]> = {};
for (const [k, v] of [
  ['host', 'api.example.com'],
  ['user-agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'],
  ['accept', 'application/json, text/plain, */*'],
  ['accept-encoding', 'gzip, deflate, br'],
  ['accept-language', 'en-GB,en;q=0.9'],
  ['content-type', 'application/json'],
  ['cookie', 'session=8f1c2a7e9b; theme=dark; consent=1'],
  ['x-forwarded-for', '203.0.113.7'],
  ['x-request-id', '01HF8Z3K4Q5R6S7T8U9V0W1X2Y'],
  ['authorization', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig'],
]) headers[k!] = [v!];

// Shapes as the gateway (src/agent-protocol/messages.ts) and the SDK build them.
const MESSAGES: Record<string, unknown> = {
  request_headers: {
    correlation_id: '01HF8Z3K4Q5R6S7T8U9V0W1X2Y',
    metadata: { correlation_id: '01HF8Z3K4Q5R6S7T8U9V0W1X2Y', request_id: 'zHvJocM77Ky', client_ip: '203.0.113.7', client_port: 51234, server_name: 'api.example.com', protocol: 'HTTP/1.1', tls_version: null, route_id: 'api', upstream_id: 'backend', timestamp: '2026-12-04T15:00:00.000Z' },
    method: 'POST',
    uri: '/v1/orders?expand=items&limit=50',
    headers,
  },
  agent_reply: { version: 2, decision: 'allow', request_headers: [{ op: 'set', name: 'x-agent', value: 'waf' }], response_headers: [], audit: { tags: ['waf', 'pl1'], rule_ids: [], confidence: 0.98, custom: { correlation_id: '01HF8Z3K4Q5R6S7T8U9V0W1X2Y' } }, needs_more: false },
  body_chunk_4k: { correlation_id: '01HF8Z3K4Q5R6S7T8U9V0W1X2Y', chunk_index: 3, is_last: false, data: Buffer.alloc(3072, 0x61).toString('base64') },
};

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations; // ns per op
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (x: number) => x.toFixed(2);

for (const [name, msg] of Object.entries(MESSAGES)) {
  const jsonFrame = encodeFrame(MessageType.RequestHeaders, msg, 'json');
  const mpFrame = encodeFrame(MessageType.RequestHeaders, msg, 'msgpack');
  const jsonPayload = jsonFrame.subarray(5);
  const mpPayload = mpFrame.subarray(5);
  if (!isDeepStrictEqual(decodeMsgpack(mpPayload), parseJsonPayload(jsonPayload))) throw new Error(`${name}: the encodings disagree`);
  if (baseline && !Buffer.from(baseline.encode(msg)).equals(encodeMsgpack(msg))) throw new Error(`${name}: the baseline codec writes other bytes`);
  const cols = ['json', 'msgpack', ...(baseline ? ['baseline'] : [])];
  const enc: Record<string, number[]> = Object.fromEntries(cols.map((c) => [c, []]));
  const dec: Record<string, number[]> = Object.fromEntries(cols.map((c) => [c, []]));
  const run: Record<string, [() => void, () => void]> = {
    json: [() => encodeFrame(MessageType.RequestHeaders, msg, 'json'), () => parseJsonPayload(jsonPayload)],
    msgpack: [() => encodeFrame(MessageType.RequestHeaders, msg, 'msgpack'), () => decodeMsgpack(mpPayload)],
    ...(baseline ? { baseline: [() => baseline.encode(msg), () => baseline.decode(mpPayload)] as [() => void, () => void] } : {}),
  };
  for (let r = 0; r < rounds; r++) {
    // rotate who goes first so drift hits all
    const order = cols.map((_, i) => cols[(i + r) % cols.length]!);
    for (const c of order) enc[c]!.push(time(run[c]![0]));
    for (const c of order) dec[c]!.push(time(run[c]![1]));
  }
  console.log(`${name} (json ${jsonPayload.length} B, msgpack ${mpPayload.length} B):`);
  for (const c of cols) console.log(`  ${c.padEnd(8)} encode median ${median(enc[c]!).toFixed(0)} ns, decode median ${median(dec[c]!).toFixed(0)} ns`);
  const ratio = (a: number[], b: number[]) => median(a.map((x, i) => x / b[i]!));
  const spread = (a: number[], b: number[]) => {
    const rs = a.map((x, i) => x / b[i]!).sort((p, q) => p - q);
    return `${f(rs[0]!)}-${f(rs[rs.length - 1]!)}`;
  };
  console.log(`  msgpack/json time per round, median (range): encode ×${f(ratio(enc.msgpack!, enc.json!))} (${spread(enc.msgpack!, enc.json!)}), decode ×${f(ratio(dec.msgpack!, dec.json!))} (${spread(dec.msgpack!, dec.json!)})`);
  if (baseline) console.log(`  msgpack/baseline time per round, median (range): encode ×${f(ratio(enc.msgpack!, enc.baseline!))} (${spread(enc.msgpack!, enc.baseline!)}), decode ×${f(ratio(dec.msgpack!, dec.baseline!))} (${spread(dec.msgpack!, dec.baseline!)})`);
}
