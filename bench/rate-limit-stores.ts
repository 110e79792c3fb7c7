// Per-call cost of our LocalStore next to @fastify/rate-limit's LocalStore (the store its plugin
// uses in memory), same process, same keys, interleaved rounds: one hot key, and a flood of
// distinct keys through a 100,000-key bound. Informs docs/rate-limit.md; nothing is asserted.
//   node --import tsx bench/rate-limit-stores.ts [--ops N] [--rounds R]
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { LocalStore } from '../plugins/rate-limit/store-local.ts';
import { bucketParams } from '../plugins/rate-limit/limiter.ts';
import { createRateLimitFilter } from '../plugins/rate-limit/index.ts';
import { fakeCtx, fakeServices } from '../test/unit/rate-limit/fixtures.ts';

interface FastifyLocalStore {
  incr(key: string, cb: (err: Error | null, res: { current: number; ttl: number }) => void, timeWindow: number, max: number): void;
}
// @fastify/rate-limit ships CommonJS without types for its store modules.
const FastifyStore = createRequire(import.meta.url)('@fastify/rate-limit/store/LocalStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, cache: number) => FastifyLocalStore;

const { values } = parseArgs({ options: { ops: { type: 'string', default: '1000000' }, rounds: { type: 'string', default: '3' } } });
const ops = Number(values.ops);
const rounds = Number(values.rounds);
const MAX_KEYS = 100_000;
const keys = Array.from({ length: ops }, (_, i) => `i:10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}`);

function nsPerOp(fn: (i: number) => void): number {
  const t = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) fn(i);
  return Number(process.hrtime.bigint() - t) / ops;
}

const results: Record<string, number[]> = {};
const record = (name: string, ns: number) => (results[name] ??= []).push(ns);
let sink = 0;
for (let r = 0; r < rounds; r++) {
  const ours = new LocalStore({ params: bucketParams(1e9, 0), maxKeys: MAX_KEYS });
  const theirs = new FastifyStore(false, false, MAX_KEYS);
  record('ours: hot key', nsPerOp(() => (sink += ours.take('i:127.0.0.1').remaining)));
  record('@fastify/rate-limit: hot key', nsPerOp(() => theirs.incr('i:127.0.0.1', (_e, v) => (sink += v.current), 1000, 1e9)));
  const ours2 = new LocalStore({ params: bucketParams(1e9, 0), maxKeys: MAX_KEYS });
  const theirs2 = new FastifyStore(false, false, MAX_KEYS);
  record('ours: distinct keys', nsPerOp((i) => (sink += ours2.take(keys[i]!).remaining)));
  record('@fastify/rate-limit: distinct keys', nsPerOp((i) => theirs2.incr(keys[i]!, (_e, v) => (sink += v.current), 1000, 1e9)));
  // The whole filter as the core calls it: key, bucket, X-RateLimit-* headers (one hot key).
  const filter = createRateLimitFilter(`bench${r}`, { type: 'rate-limit', 'max-rps': 1e9 }, fakeServices());
  const ctx = fakeCtx();
  record('ours: filter onRequest, hot key', nsPerOp(() => (sink += filter.onRequest!(ctx) === undefined ? 0 : 1)));
  await filter.close!();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(`${ops.toLocaleString('en-US')} ops per run, ${rounds} rounds, median ns/op (checksum ${sink % 10})`);
for (const [name, xs] of Object.entries(results)) console.log(`${name.padEnd(40)} ${median(xs).toFixed(0).padStart(6)} ns/op`);
