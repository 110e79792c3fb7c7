// MessagePack codec micro-bench: our agent-protocol codec (src/agent-protocol/msgpack.ts) next to
// @msgpack/msgpack, on the messages the agent protocol carries, in the same process, interleaved
// rounds (per-round ratios and their median; the machine may be shared). Not a test.
//   node --import tsx bench/msgpack.ts [--rounds 7] [--iterations 20000]
import { parseArgs } from 'node:util';
import { isDeepStrictEqual } from 'node:util';
import { decode as theirDecode, encode as theirEncode } from '@msgpack/msgpack';
import { decodeMsgpack, encodeMsgpack } from '../src/agent-protocol/msgpack.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' }, iterations: { type: 'string', default: '20000' } } });
const rounds = Number(values.rounds);
const iterations = Number(values.iterations);

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

const MESSAGES: Record<string, unknown> = {
  request_headers: {
    correlation_id: '01HF8Z3K4Q5R6S7T8U9V0W1X2Y',
    metadata: { correlation_id: '01HF8Z3K4Q5R6S7T8U9V0W1X2Y', request_id: 'zHvJocM77Ky', client_ip: '203.0.113.7', client_port: 51234, server_name: 'api.example.com', protocol: 'HTTP/1.1', tls_version: null, route_id: 'api', upstream_id: 'backend', timestamp: '2026-12-04T15:00:00.000Z' },
    method: 'POST',
    uri: '/v1/orders?expand=items&limit=50',
    headers,
  },
  agent_reply: { version: 2, decision: 'allow', request_headers: [{ op: 'set', name: 'x-agent', value: 'waf' }], response_headers: [], audit: { tags: ['waf', 'pl1'], rule_ids: [], confidence: 0.98 }, needs_more: false },
  body_chunk_4k: { correlation_id: '01HF8Z3K4Q5R6S7T8U9V0W1X2Y', chunk_index: 3, is_last: false, data: Buffer.alloc(4096, 0x61) },
};

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations; // ns per op
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const [name, msg] of Object.entries(MESSAGES)) {
  const ours = encodeMsgpack(msg);
  const theirs = Buffer.from(theirEncode(msg));
  // both decoders read both encodings to the same value (binary comes back as bytes)
  const norm = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? Buffer.from(x).toString('base64') : x && (x as { type?: string }).type === 'Buffer' ? x : x)));
  if (!isDeepStrictEqual(norm(decodeMsgpack(theirs)), norm(theirDecode(ours)))) throw new Error(`${name}: the codecs disagree`);
  const enc: number[] = [];
  const dec: number[] = [];
  const rows: string[] = [];
  for (let r = 0; r < rounds; r++) {
    // alternate who goes first so drift hits both
    const a = r % 2 === 0;
    const oursEnc = a ? time(() => encodeMsgpack(msg)) : 0;
    const theirsEnc = time(() => theirEncode(msg));
    const oursEnc2 = a ? oursEnc : time(() => encodeMsgpack(msg));
    const oursDec = time(() => decodeMsgpack(ours));
    const theirsDec = time(() => theirDecode(theirs));
    enc.push(theirsEnc / oursEnc2);
    dec.push(theirsDec / oursDec);
    rows.push(`round ${r + 1}: encode ours ${oursEnc2.toFixed(0)} ns, theirs ${theirsEnc.toFixed(0)} ns (×${(theirsEnc / oursEnc2).toFixed(2)}); decode ours ${oursDec.toFixed(0)} ns, theirs ${theirsDec.toFixed(0)} ns (×${(theirsDec / oursDec).toFixed(2)})`);
  }
  console.log(`${name} (${ours.length} B ours, ${theirs.length} B @msgpack/msgpack):`);
  for (const row of rows) console.log(`  ${row}`);
  console.log(`  median theirs/ours: encode ×${median(enc).toFixed(2)}, decode ×${median(dec).toFixed(2)} (above 1: ours is faster)`);
}
